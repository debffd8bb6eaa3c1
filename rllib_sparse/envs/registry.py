"""The env-family registry: how each family of environments is named, made, configured and reported.

A family (Atari; DeepMind Control next) owns a pattern of env ids (``ALE/<Game>-v5``), how to make one
env and, if it has one, a faster vectorised env, the pydantic model of its ``env_config`` options,
which episode-end ``info`` keys carry full-episode numbers worth reporting, and its listing for
``rllib-sparse envs``. ``with_sparse_model``, sweep planning, result curation and the CLI all ask
``env_family(env_id)`` and nothing else, so adding a family is one module in ``envs/`` plus one
``register_env_family`` call (docs/extending.md). Env ids that no family claims are plain gymnasium
ids. No Ray import here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import gymnasium as gym
from pydantic import BaseModel


@dataclass(frozen=True)
class EnvFamily:
    """One family of environments."""

    name: str
    #: Whether an env id belongs to this family.
    matches: Callable[[str], bool]
    #: ``make(env_id, **options)``: one env with the family's preprocessing.
    make: Callable[..., gym.Env]
    #: The ``env_config`` options (validated; unknown keys refused). None: the family takes none.
    options: type[BaseModel] | None = None
    #: ``make_vector(env_id, num_envs, **options)``: a vectorised env, if the family has a faster one.
    make_vector: Callable[..., gym.vector.VectorEnv] | None = None
    #: Episode-end ``info`` key -> env-runner metric (mean over the last 100 episodes), e.g. Atari's
    #: ``game_return`` (the whole game, unclipped) -> ``game_return_mean``.
    episode_info_metrics: dict[str, str] = field(default_factory=dict)
    #: The metrics above that replace RLlib's episode return and length in a trial's results (the
    #: paper's number), RLlib's own return moving to ``training_episode_return_mean``. None: keep RLlib's.
    full_episode_return: str | None = None
    full_episode_length: str | None = None
    #: ``check_id(env_id)``: a one-line ValueError for an id of the family's pattern that does not
    #: exist (with a "did you mean"). None: every matching id is valid.
    check_id: Callable[[str], Any] | None = None
    #: The ids to list in ``rllib-sparse envs`` (id -> short description).
    list_ids: Callable[[], dict[str, str]] = dict
    summary: str = ""

    def validate_options(self, env_config: dict | None, source: str) -> dict[str, Any]:
        """The options as a dict, or a one-line ValueError naming the key (RLlib's own keys ignored)."""
        from rllib_sparse.errors import validate

        if self.options is None:
            return {}
        known = {k: v for k, v in (env_config or {}).items() if k not in RLLIB_CONTEXT_KEYS}
        return validate(self.options, known, source).model_dump()


#: Keys RLlib adds to an ``env_config`` itself (the vector entry point's env count).
RLLIB_CONTEXT_KEYS = frozenset({"num_envs"})

_FAMILIES: dict[str, EnvFamily] = {}


def register_env_family(family: EnvFamily) -> EnvFamily:
    """Add (or replace) a family. Families are asked in registration order."""
    _FAMILIES[family.name] = family
    return family


def env_families() -> dict[str, EnvFamily]:
    return dict(_FAMILIES)


def env_family(env_id: Any) -> EnvFamily | None:
    """The family that claims ``env_id``; None for a plain gymnasium id (or a non-string env)."""
    if not isinstance(env_id, str):
        return None
    return next((family for family in _FAMILIES.values() if family.matches(env_id)), None)


def make_env(env_id: str, env_config: dict | None = None, source: str = "env") -> gym.Env:
    """One env outside RLlib (streaming RL's trainer): the family's ``make`` with its checked options,
    or ``gymnasium.make`` for a plain id; any failure is one ValueError line naming the id. Float
    observations are checked for NaN and infinities (``rllib_sparse.envs.finite``)."""
    import difflib

    from rllib_sparse.envs.finite import check_observations

    family = env_family(env_id)
    try:
        if family is not None:
            if family.check_id is not None:
                family.check_id(env_id)
            env = family.make(env_id, **family.validate_options(env_config, source))
        else:
            env = gym.make(env_id, **dict(env_config or {}))
        return check_observations(env, env_id)
    except ValueError as error:
        if family is not None:
            raise ValueError(f"{source}: {error}") from None
        first = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise ValueError(f"{source}: env={env_id!r} cannot be created: {first}") from None
    except Exception as error:  # gymnasium's NameNotFound, missing extras, bad keyword arguments
        if isinstance(env_id, str) and env_id not in gym.registry:
            close = difflib.get_close_matches(env_id, list(gym.registry), n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise ValueError(f"{source}: env={env_id!r} is not a known env{hint}; allowed: a gymnasium id "
                             "(e.g. Walker2d-v5) or an id of an env family (`rllib-sparse envs`)") from None
        first = next((line.strip() for line in str(error).splitlines() if line.strip()), type(error).__name__)
        raise ValueError(f"{source}: env={env_id!r} cannot be created: {first}") from None
