"""Sweep files: one YAML file describes one scaling study (a grid of trials).

Validated with pydantic before anything starts; every error is one line that names the file, the field
path, the bad value and what is allowed (unknown keys get a "did you mean"). Pure data: no Ray import.
"""

from __future__ import annotations

import difflib
import importlib
import itertools
import json
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from rllib_sparse.algorithms import algorithm_names, get_algorithm
from rllib_sparse.errors import validate
from rllib_sparse.networks import SparseModelConfig

#: Grid axes on the sparse model, as dotted paths into ``model``.
MODEL_AXES = ("width", "depth", "sparsity", "allocation",
              "actor.width", "actor.width_scale", "actor.depth", "actor.sparsity", "actor.allocation",
              "critic.width", "critic.width_scale", "critic.depth", "critic.sparsity", "critic.allocation")
#: Grid axes on the run itself.
RUN_AXES = ("seed", "env")
#: Any ``training.<name>`` (an argument of the algorithm's ``config.training(...)``) is an axis too.
TRAINING_PREFIX = "training."

# Strict: ``width: true`` is not 1 and ``lr: "fast"`` is not a number; non-finite numbers are refused.
_Strict = ConfigDict(extra="forbid", frozen=True, strict=True, allow_inf_nan=False)
SMOKE_ITERATIONS = 2
Positive = Annotated[int, Field(ge=1)]


class StopSpec(BaseModel):
    """When a trial ends: the first of these reached (at least one is required)."""

    model_config = _Strict
    env_steps: Positive | None = Field(
        None, description="Stop after this many env steps (agent decisions, as RLlib counts them); null: no limit.")
    iterations: Positive | None = Field(
        None, description="Stop after this many training iterations; null: no iteration limit.")
    time_s: Annotated[float, Field(gt=0)] | None = Field(
        None, description="Stop after this many seconds of the trial's training time; null: no time limit.")

    @model_validator(mode="after")
    def _one_at_least(self) -> StopSpec:
        if self.env_steps is None and self.iterations is None and self.time_s is None:
            raise ValueError("set at least one of env_steps, iterations, time_s")
        return self


class ResourcesSpec(BaseModel):
    model_config = _Strict
    cpus_per_trial: Annotated[float, Field(gt=0)] = Field(
        1.0, description="CPUs of the trial's main process (the learner); env runners add their own.")
    gpus_per_trial: Annotated[float, Field(ge=0)] = Field(
        0.0, description="GPUs of the trial's learner (fractions allowed); 0: the learner runs on CPU.")
    num_env_runners: Annotated[int, Field(ge=0)] = Field(
        0, description="Remote env runners per trial, each with its own CPU; 0: the trial's own process samples.")
    num_envs_per_env_runner: Positive = Field(1, description="Vectorised env copies stepped by each env runner.")
    max_concurrent_trials: Positive | None = Field(
        None, description="Most trials running at once; null: as many as the cluster fits.")


class CheckpointSpec(BaseModel):
    model_config = _Strict
    frequency: Annotated[int, Field(ge=0)] = Field(
        0, description="Checkpoint every N iterations (the last iteration always is); 0: only at the end.")
    keep: Positive | None = Field(None, description="Newest checkpoints kept per trial; null: all of them.")


class FailureSpec(BaseModel):
    """What a crash or a non-finite iteration does to a trial."""

    model_config = _Strict
    max_retries: Annotated[int, Field(ge=0)] = Field(
        1, description="Times a crashed trial is restarted from its last checkpoint; 0: never.")
    on_nonfinite: Literal["fail", "warn"] = Field(
        "fail", description="On a NaN or infinite return, learner loss or TD error: fail the trial (one line "
        "naming metric, value, iteration and trial), or warn once per metric and go on training.")


class TrackingSpec(BaseModel):
    model_config = _Strict
    tracking_uri: str | None = Field(
        None, description="MLflow tracking URI, e.g. http://HOST:PORT; null: sqlite:///<cwd>/mlruns/mlflow.db.")
    experiment: str | None = Field(None, description="MLflow experiment name; null: the study name.")


class DiagnosticsSpec(BaseModel):
    """The paper's network diagnostics, computed on the learner during training (absent: off).

    Every ``every`` iterations and at a trial's last one, on the newest ``batch_size`` training rows:
    srank, dormant ratios at each τ, parameter/gradient/feature norms per network, gradient
    interference over ``interference_samples`` per-sample gradients; the cosine matrix is saved as
    an artifact at the iterations listed in ``save_matrix_at`` and at the last one.
    """

    model_config = _Strict
    every: Positive = Field(
        10, description="Iterations between diagnostics computations; a trial's last iteration always computes them.")
    batch_size: Annotated[int, Field(ge=2)] = Field(
        1024, description="Newest training rows used (rows); srank cannot exceed it, so keep it >= the widest "
        "feature layer.")
    delta: Annotated[float, Field(gt=0, lt=1)] = Field(
        0.01, description="srank threshold δ: the top singular values kept hold 1 - δ of their sum (Kumar et al. "
        "2021).")
    dormant: Literal["pre_activation", "post_activation"] = Field(
        "pre_activation", description="Dormant-neuron convention: pre_activation is the paper's code (percent, "
        "τ 0.1/0.2); post_activation the usual one (fraction of activation outputs, τ 0/0.1).")
    taus: Annotated[list[Annotated[float, Field(ge=0, lt=1)]], Field(min_length=1)] | None = Field(
        None, description="Dormant-neuron thresholds τ, as a fraction of the layer's mean; null: the convention's own.")
    interference_samples: Annotated[int, Field(ge=0, le=1024)] = Field(
        32, description="Per-sample gradients in the gradient-interference (cosine) matrix; 0: no interference matrix.")
    save_matrix_at: list[Positive] = Field(
        [], description="Iterations whose cosine matrix is saved as an MLflow artifact, besides the last one.")

    def due(self, iteration: int, last: bool) -> bool:
        return last or iteration % self.every == 0

    def learner_settings(self) -> dict[str, Any]:
        return {"delta": self.delta, "dormant": self.dormant, "taus": None if self.taus is None else tuple(self.taus),
                "interference_samples": self.interference_samples}


class EvaluationSpec(BaseModel):
    """Evaluation as the paper does it: the deterministic policy, ``episodes`` episodes every
    ``every_iterations`` iterations, on separate env runners' episodes (never the training ones).

    Reported as ``evaluation_return_mean``; a study's scaling curves and report use it when present.
    Make an iteration a fixed number of env steps (``reporting.min_sample_timesteps_per_iteration``)
    to evaluate every N env steps.
    """

    model_config = _Strict
    every_iterations: Positive = Field(description="Evaluate the deterministic policy every N training iterations.")
    episodes: Positive = Field(10, description="Episodes played per evaluation.")

    def rllib_settings(self) -> dict[str, Any]:
        return {"evaluation_interval": self.every_iterations, "evaluation_duration": self.episodes,
                "evaluation_duration_unit": "episodes", "evaluation_config": {"explore": False}}


class LearnerSpec(BaseModel):
    """The Learner's fast path: RLlib's ``torch.compile`` of the update (docs/design.md says when).

    ``compile: forward_train`` compiles the RL module's training forward (the networks); ``update``
    compiles RLlib's whole update step (forward, losses, backward, optimizer step); ``off`` is eager.
    ``backend`` and ``mode`` are ``torch.compile``'s (``mode: reduce-overhead`` captures CUDA graphs on
    a GPU). Masks stay exact either way (tests/test_fast_learner.py). The fields are the arguments of
    ``with_fast_learner`` (``rllib_sparse.rllib.core.learner``).
    """

    model_config = _Strict
    compile: Literal["off", "forward_train", "update"] = Field(
        "off", description="What torch.compile compiles: off (eager), forward_train (the networks' training "
        "forward) or update (RLlib's whole update step).")
    backend: Literal["inductor", "aot_eager", "eager", "cudagraphs"] = Field(
        "inductor", description="torch.compile's backend; only with compile set.")
    mode: Literal["default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs"] | None = Field(
        None, description="torch.compile's mode (reduce-overhead captures CUDA graphs on a GPU); null: torch's "
        "default; only with compile set.")

    @field_validator("compile", mode="before")
    @classmethod
    def _yaml_off(cls, value: Any) -> Any:
        return "off" if value is False else value  # YAML 1.1 reads a bare ``off`` as false

    @model_validator(mode="after")
    def _settings_need_compile(self) -> LearnerSpec:
        if self.compile == "off" and (self.mode is not None or self.backend != "inductor"):
            raise ValueError("learner.compile='off' ignores backend/mode; allowed: set learner.compile to "
                             "forward_train or update to use them")
        return self


class ModuleOptions(BaseModel):
    """RLlib model_config keys our modules honour besides the sparse model itself."""

    model_config = _Strict
    vf_share_layers: bool = Field(
        False, description="PPO/APPO/IMPALA only: one trunk for policy and value (usual on Atari); false: two "
        "networks.")


class SweepSpec(BaseModel):
    """One scaling study."""

    model_config = _Strict

    name: Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$", max_length=100)] = Field(
        description="Study name: the MLflow experiment (unless tracking.experiment is set) and the runs/ folder.")
    plugins: list[str] = Field(
        [], description="Python modules imported first, on the driver and in every trial, where your own models, "
        "env families, algorithms and trial runners register themselves (docs/extending.md).")
    algorithm: str = Field(description="A row of the algorithm table (PPO, APPO, IMPALA, SAC, DQN, DDPG, StreamAC, "
                           "or a registered one); case-insensitive.")
    env: str = Field(description="A gymnasium id, an env family's id (ALE/Pong-v5, dmc/humanoid-run) or a "
                     "tune.register_env name.")
    env_config: dict[str, Any] = Field({}, description="Keyword options passed to the env creator.")
    model: SparseModelConfig = Field(SparseModelConfig(), description="The sparse network shared by every trial; "
                                     "grid axes change its fields per trial.")
    module: ModuleOptions = Field(ModuleOptions(), description="RLlib model_config options besides the sparse model.")
    learner: LearnerSpec = Field(LearnerSpec(), description="The Learner's fast path (torch.compile); off by default.")
    diagnostics: DiagnosticsSpec | None = Field(
        None, description="The paper's network diagnostics during training; null: none computed.")
    grid: dict[str, list[Any]] = Field(
        {}, description="Axes (model fields, seed, env, training.<name>), each a non-empty list; the trials are "
        "their Cartesian product; empty: one trial.")
    training: dict[str, Any] = Field(
        {}, description="Keyword arguments of the algorithm's config.training(...), e.g. lr.")
    reporting: dict[str, Any] = Field(
        {}, description="Arguments of RLlib's config.reporting(...), e.g. min_sample_timesteps_per_iteration.")
    evaluation: EvaluationSpec | None = Field(
        None, description="Periodic deterministic evaluation; null: only training returns are reported.")
    stop: StopSpec = Field(description="When each trial ends: the first limit reached.")
    resources: ResourcesSpec = Field(ResourcesSpec(), description="CPUs, GPUs and env runners per trial.")
    checkpoint: CheckpointSpec = Field(CheckpointSpec(), description="How often checkpoints are written and how "
                                       "many are kept.")
    failure: FailureSpec = Field(FailureSpec(), description="Retries after a crash and what a non-finite metric does.")
    tracking: TrackingSpec = Field(TrackingSpec(), description="Where runs are tracked in MLflow.")
    smoke: bool = Field(
        False, description="A seconds-long check (the ends of each grid axis, one seed, tiny batches, 2 "
        "iterations), as --smoke sets it.")

    @field_validator("algorithm", mode="before")
    @classmethod
    def _upper(cls, value: Any) -> Any:
        return value.upper() if isinstance(value, str) else value

    @field_validator("algorithm")
    @classmethod
    def _known_algorithm(cls, value: str) -> str:
        names = [repr(name) for name in algorithm_names()]
        if value not in algorithm_names():  # worded as pydantic words a Literal, listing the table's rows
            raise ValueError(f"Input should be {', '.join(names[:-1])} or {names[-1]}" if len(names) > 1
                             else f"Input should be {names[0]}")
        return value

    @field_validator("grid")
    @classmethod
    def _known_axes(cls, grid: dict[str, list[Any]]) -> dict[str, list[Any]]:
        allowed = MODEL_AXES + RUN_AXES
        for axis, values in grid.items():
            if axis.startswith(TRAINING_PREFIX) and len(axis) > len(TRAINING_PREFIX):
                pass
            elif axis not in allowed:
                close = difflib.get_close_matches(axis, allowed, n=1)
                hint = f" (did you mean {close[0]!r}?)" if close else ""
                raise ValueError(f"grid.{axis} is not a known axis{hint}; allowed: {', '.join(allowed)}, "
                                 f"or training.<hyper-parameter>")
            if not values:
                raise ValueError(f"grid.{axis}=[] has no values; allowed: a non-empty list")
            seen: dict[str, Any] = {}
            for value in values:
                key = json.dumps(value, sort_keys=True, default=str)
                if key in seen:
                    raise ValueError(f"grid.{axis}={values!r} repeats {value!r}; allowed: each value once "
                                     "(two trials of one grid point would share one MLflow run)")
                seen[key] = value
            for value in values:
                _check_finite(value, f"grid.{axis}")
        return grid

    @field_validator("training", "env_config", "reporting")
    @classmethod
    def _finite(cls, values: dict[str, Any], info) -> dict[str, Any]:
        for key, value in values.items():
            _check_finite(value, f"{info.field_name}.{key}")
        return values

    @model_validator(mode="after")
    def _grid_values_are_valid_models(self) -> SweepSpec:
        base = self.model.model_dump()
        for axis in MODEL_AXES:
            for index, value in enumerate(self.grid.get(axis, [])):
                try:
                    SparseModelConfig.parse(_set_path(base, axis, value), source="model")
                except ValueError as error:
                    raise ValueError(f"grid.{axis}[{index}]={value!r}: {str(error).split(': ', 1)[-1]}") from None
        for role in ("actor", "critic"):
            if f"{role}.width" in self.grid and f"{role}.width_scale" in self.grid:
                raise ValueError(f"grid.{role}.width and grid.{role}.width_scale are both axes; allowed: one of them")
        for index, seed in enumerate(self.grid.get("seed", [])):
            if not isinstance(seed, int) or isinstance(seed, bool):
                raise ValueError(f"grid.seed[{index}]={seed!r} is invalid; allowed: integers")
        return self

    @property
    def experiment_name(self) -> str:
        return self.tracking.experiment or (f"{self.name}-smoke" if self.smoke else self.name)

    @model_validator(mode="after")
    def _module_fits_algorithm(self) -> SweepSpec:
        if self.module.vf_share_layers and not get_algorithm(self.algorithm).shared_trunk:
            allowed = ", ".join(name for name in algorithm_names() if get_algorithm(name).shared_trunk)
            raise ValueError(f"module.vf_share_layers=True does not apply to {self.algorithm}; allowed with: {allowed}")
        roles = get_algorithm(self.algorithm).roles
        for role in ("actor", "critic"):
            overridden = getattr(self.model, role).model_dump(exclude_none=True)
            axes = [axis for axis in self.grid if axis.startswith(f"{role}.")]
            if role not in roles and (overridden or axes):
                where = f"model.{role}" if overridden else f"grid.{axes[0]}"
                raise ValueError(f"{where} is set, but {self.algorithm} has no {role} network; allowed: "
                                 f"{', '.join(roles)} (or the shared width/depth/sparsity)")
        return self

    @model_validator(mode="after")
    def _smoke_stops_early(self) -> SweepSpec:
        if self.smoke:
            # The ends of every axis (one seed) still exercise each env, model size and density path.
            grid = {axis: values[:1] if axis == "seed" else list(dict.fromkeys([values[0], values[-1]]))
                    for axis, values in self.grid.items()}
            object.__setattr__(self, "grid", grid)
            object.__setattr__(self, "stop", StopSpec(iterations=SMOKE_ITERATIONS))
            object.__setattr__(self, "checkpoint", CheckpointSpec(frequency=1, keep=self.checkpoint.keep))
        return self

    @model_validator(mode="after")
    def _trial_names_unique(self) -> SweepSpec:
        # Each trial's name keys its MLflow child run and its Tune folder: two alike would overwrite.
        seen: dict[str, dict] = {}
        for point in self.points():
            if point.name in seen:
                raise ValueError(f"grid: the points {seen[point.name]} and {point.axes} are the same trial "
                                 f"{point.name!r}; allowed: grid values that give distinct trials")
            seen[point.name] = point.axes
        return self

    def points(self) -> list[GridPoint]:
        """Every trial of the grid, in a stable order (the Cartesian product of the axes)."""
        axes = list(self.grid)
        combos = itertools.product(*(self.grid[a] for a in axes)) if axes else [()]
        return [self._point(dict(zip(axes, combo))) for combo in combos]

    def fingerprint(self) -> dict[str, Any]:
        """What makes two sweeps the same study, for ``--resume``: all but where it is tracked and how fast
        its Learner runs (``learner`` changes speed, not results)."""
        return self.model_dump(mode="json", exclude={"tracking", "learner"})

    def point(self, index: int) -> GridPoint:
        """The ``index``-th trial of ``points()``, without expanding the grid (a trial finds its own)."""
        axes = list(self.grid)
        sizes = [len(self.grid[axis]) for axis in axes]
        total = math.prod(sizes)
        if not 0 <= index < total:
            raise IndexError(f"grid point {index} of {total}")
        values = {}
        for axis, size in zip(reversed(axes), reversed(sizes)):
            index, position = divmod(index, size)
            values[axis] = self.grid[axis][position]
        return self._point({axis: values[axis] for axis in axes})

    def _point(self, values: dict[str, Any]) -> GridPoint:
        # Typed all the way: each model axis is a validated copy of the file's model (every grid value
        # was checked against it when the file was read), not a dump and a re-parse.
        model = self.model
        training = dict(self.training)
        for axis, value in values.items():
            if axis in MODEL_AXES:
                model = _with_axis(model, axis, value)
            elif axis.startswith(TRAINING_PREFIX):
                training[axis[len(TRAINING_PREFIX):]] = value
        seed = int(values.get("seed", self.model.seed))
        return GridPoint(
            axes=values,
            env=values.get("env", self.env),
            seed=seed,
            model=model.model_copy(update={"seed": seed}),  # the run seed also draws the masks
            training=training,
        )


def _with_axis(model: SparseModelConfig, axis: str, value: Any) -> SparseModelConfig:
    """``model`` with one grid axis (``width``, ``actor.sparsity``, ...) set."""
    role, _, field_name = axis.rpartition(".")
    if not role:
        return model.model_copy(update={field_name: value})
    return model.model_copy(update={role: getattr(model, role).model_copy(update={field_name: value})})


@dataclass(frozen=True)
class GridPoint:
    """One trial: the axis values that define it and the resolved settings."""

    axes: dict[str, Any]
    env: str
    seed: int
    model: SparseModelConfig
    training: dict[str, Any]

    @property
    def name(self) -> str:
        """e.g. ``simba-w1024-d2-s0.9-seed0`` (plus any other axis that varies)."""
        actor, critic = self.model.network("actor"), self.model.network("critic")
        parts = [self.model.name, f"w{actor.width}", f"d{actor.depth}", f"s{actor.sparsity:g}"]
        if (critic.width, critic.depth, critic.sparsity) != (actor.width, actor.depth, actor.sparsity):
            parts += [f"cw{critic.width}", f"cd{critic.depth}", f"cs{critic.sparsity:g}"]
        for axis, value in self.axes.items():
            if axis.endswith("allocation"):
                parts.append(f"{axis.split('.')[0]}-{value}" if "." in axis else str(value))
            elif axis == "env":
                parts.append(re.sub(r"[^A-Za-z0-9]+", "", str(value).split("/")[-1]))
            elif axis.startswith(TRAINING_PREFIX):
                parts.append(f"{axis[len(TRAINING_PREFIX):]}{value:g}" if isinstance(value, float)
                             else f"{axis[len(TRAINING_PREFIX):]}{value}")
        parts.append(f"seed{self.seed}")
        return "-".join(parts)


def _check_finite(value: Any, where: str) -> None:
    """Refuse NaN and infinities anywhere inside a value (YAML's ``.inf``, ``.nan``)."""
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError(f"{where}={value!r} is invalid; allowed: finite numbers")
    if isinstance(value, dict):
        for key, item in value.items():
            _check_finite(item, f"{where}.{key}")
    elif isinstance(value, (list, tuple)):
        for index, item in enumerate(value):
            _check_finite(item, f"{where}[{index}]")


def _set_path(data: dict, path: str, value: Any, _done: str = "") -> dict:
    """A copy of ``data`` with ``a.b`` set to ``value``; a ValueError if ``a`` is not a section."""
    head, _, rest = path.partition(".")
    out = dict(data)
    if rest:
        inner = out.get(head)
        here = f"{_done}{head}"
        if inner is not None and not isinstance(inner, dict):
            raise ValueError(f"{here}={inner!r} is a value, not a section, so {here}.{rest} cannot be set; "
                             f"allowed: set {here} itself")
        out[head] = _set_path(dict(inner or {}), rest, value, f"{here}.")
    else:
        out[head] = value
    return out


class _UniqueKeyLoader(yaml.SafeLoader):
    """YAML's safe loader, but a key given twice in one mapping is an error rather than "last wins"."""

    def construct_mapping(self, node, deep=False):
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)
            line = key_node.start_mark.line + 1
            if key in seen:
                raise ValueError(f"duplicate key {key!r} at line {line} (first at line {seen[key]}); "
                                 "allowed: each key once per mapping")
            seen[key] = line
        return super().construct_mapping(node, deep)


def parse_assignment(text: str) -> tuple[str, Any]:
    """``key.path=value`` from ``--set``; the value is read as YAML (``3``, ``[1, 2]``, ``true``)."""
    key, sep, raw = text.partition("=")
    if not sep or not key.strip():
        raise ValueError(f"--set {text!r} is invalid; allowed: key.path=value, e.g. stop.iterations=3")
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError:
        value = raw
    return key.strip(), value


def import_plugins(names: Any, source: str = "sweep file") -> None:
    """Import the ``plugins`` modules (they register models, env families, algorithms, runners)."""
    if not names:
        return
    if not isinstance(names, list) or not all(isinstance(n, str) and n for n in names):
        raise ValueError(f"{source}: plugins={names!r} is invalid; allowed: a list of module names")
    for name in names:
        try:
            importlib.import_module(name)
        except ImportError as error:
            raise ValueError(f"{source}: plugins: module {name!r} cannot be imported ({error}); allowed: "
                             "modules on the Python path of the driver and of every Ray worker") from None


def load_sweep(path: str | Path, overrides: list[str] = ()) -> SweepSpec:
    """Read, override (``--set``) and validate a sweep file; one-line ValueError on any problem."""
    path = Path(path)
    try:
        text = path.read_bytes().decode("utf-8")
    except OSError as error:
        raise ValueError(f"{path}: cannot read the sweep file ({error.strerror})") from None
    except UnicodeDecodeError as error:
        raise ValueError(f"{path}: not UTF-8 text (byte 0x{error.object[error.start]:02x} at offset "
                         f"{error.start}); allowed: a UTF-8 YAML file") from None
    try:
        data = yaml.load(text, Loader=_UniqueKeyLoader)  # noqa: S506 - a SafeLoader subclass
    except ValueError as error:
        raise ValueError(f"{path}: {error}") from None
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(error, "problem", None) or "malformed YAML"
        raise ValueError(f"{path}: not valid YAML{where}: {problem}") from None
    if not isinstance(data, dict):
        raise ValueError(f"{path}: the top level must be a mapping of keys (name, algorithm, env, ...), "
                         f"got {type(data).__name__}")
    for assignment in overrides:
        key, value = parse_assignment(assignment)
        try:
            if key.startswith("grid.") and isinstance(data.get("grid", {}), dict):
                # Axis names hold dots themselves (``grid.training.lr``, ``grid.actor.width``).
                data = {**data, "grid": {**(data.get("grid") or {}), key[len("grid."):]: value}}
            else:
                data = _set_path(data, key, value)
        except ValueError as error:
            raise ValueError(f"--set {assignment!r}: {error}") from None
    import_plugins(data.get("plugins"), source=str(path))
    return validate(SweepSpec, data, source=str(path))


def sweep_schema() -> dict:
    """The JSON Schema (draft 2020-12) of a sweep file: ``SweepSpec``'s, plus the shorthands its
    validators take before validation (which pydantic's schema cannot know): the ``model`` key of the
    ``model`` section (an alias of ``name``) and ``learner.compile: off`` (YAML 1.1 reads it as false).
    The schema checks names and kinds of fields; ``rllib-sparse validate`` checks the rest (algorithm,
    env, grid axes, hyper-parameters)."""
    from pydantic import AliasChoices

    schema = SweepSpec.model_json_schema(mode="validation")
    defs = schema.get("$defs", {})

    def models(cls: type[BaseModel], seen: dict[str, type[BaseModel]]) -> dict[str, type[BaseModel]]:
        seen[cls.__name__] = cls
        for field in cls.model_fields.values():
            stack = [field.annotation]
            while stack:
                kind = stack.pop()
                if isinstance(kind, type) and issubclass(kind, BaseModel) and kind.__name__ not in seen:
                    models(kind, seen)
                stack.extend(getattr(kind, "__args__", ()) or ())
        return seen

    for name, cls in models(SweepSpec, {}).items():
        section = schema if cls is SweepSpec else defs.get(name)
        properties = (section or {}).get("properties", {})
        for field_name, field in cls.model_fields.items():
            alias = field.validation_alias
            if isinstance(alias, AliasChoices) and field_name in properties:
                for choice in alias.choices:
                    if isinstance(choice, str) and choice not in properties:
                        properties[choice] = {**properties[field_name],
                                              "description": f"The same as {field_name} (read as its alias)."}
    compile_field = defs.get(LearnerSpec.__name__, {}).get("properties", {}).get("compile")
    if compile_field is not None:  # LearnerSpec._yaml_off: a bare ``off`` (YAML's false) is "off"
        defs[LearnerSpec.__name__]["properties"]["compile"] = {
            "anyOf": [{k: v for k, v in compile_field.items() if k not in ("default", "title", "description")},
                      {"const": False, "description": "off, as YAML 1.1 reads a bare off"}],
            **{k: v for k, v in compile_field.items() if k in ("default", "title", "description")}}
    schema.pop("title", None)
    schema.pop("description", None)
    return {"$schema": "https://json-schema.org/draft/2020-12/schema",
            "title": "rllib-sparse sweep file",
            "description": "One scaling study of rllib-sparse (docs/sweeps.md); `rllib-sparse validate FILE` "
                           "checks what a schema cannot (algorithm, env, grid axes, hyper-parameters).",
            **schema}
