"""Turn pydantic validation errors into the project's one-line ``ValueError`` messages.

Every message names where the value came from, the field path, the bad value and what is allowed,
e.g. ``sparse model config: actor.sparsity=1.5 is invalid: Input should be less than 1``.
"""

from __future__ import annotations

import difflib
import typing
from collections.abc import Iterable

from pydantic import BaseModel, ValidationError


def _field_path(loc: Iterable) -> str:
    return ".".join(str(part) for part in loc)


def _allowed_keys(model: type[BaseModel], loc: tuple) -> list[str]:
    """Field names of the (nested) model that owns the unknown key at ``loc``."""
    current: type[BaseModel] | None = model
    for part in loc[:-1]:
        field = current.model_fields.get(str(part)) if current else None
        current = _model_in(field.annotation) if field else None
    return sorted(current.model_fields) if current else []


def _model_in(annotation) -> type[BaseModel] | None:
    """The pydantic model an annotation holds: ``Spec`` itself, or inside ``Spec | None``."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    return next(filter(None, (_model_in(arg) for arg in typing.get_args(annotation))), None)


def one_line_error(error: ValidationError, model: type[BaseModel], source: str) -> ValueError:
    """The first validation problem as a one-line ValueError (the rest are counted)."""
    problems = error.errors()
    first = problems[0]
    loc = tuple(first["loc"])
    path = _field_path(loc) or "(top level)"
    more = f" (and {len(problems) - 1} more problem(s))" if len(problems) > 1 else ""
    if first["type"] == "extra_forbidden":
        allowed = _allowed_keys(model, loc)
        close = difflib.get_close_matches(str(loc[-1]), allowed, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ";"
        return ValueError(f"{source}: unknown key {path!r}{hint} allowed: {', '.join(allowed)}{more}")
    message = first["msg"].removeprefix("Value error, ")
    if not loc or message.startswith((f"{path}.", f"{path}[")):
        return ValueError(f"{source}: {message}{more}")  # the validator already named field and value
    value = first.get("input")
    return ValueError(f"{source}: {path}={value!r} is invalid: {message}{more}")


def validate(model: type[BaseModel], data: object, source: str):
    """``model.model_validate(data)`` with the one-line error on failure."""
    try:
        return model.model_validate(data)
    except ValidationError as error:
        raise one_line_error(error, model, source) from None
