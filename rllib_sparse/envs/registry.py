"""The env-family registry: how each family of environments is named, made, configured and reported.

A family (Atari, DeepMind Control) owns a pattern of env ids (``ALE/<Game>-v5``), how to make one
env and, if it has one, a faster vectorised env, the pydantic model of its ``env_config`` options,
which episode-end ``info`` keys carry full-episode numbers worth reporting, and its listing for
``rllib-sparse envs``. ``with_sparse_model``, sweep planning, result curation and the CLI all ask
``env_family(env_id)`` and nothing else, so adding a family is one module in ``envs/`` plus one
``register_env_family`` call (docs/extending.md). Env ids that no family claims are plain gymnasium
ids. ``make_env`` makes one env outside RLlib; ``env_spaces`` finds an env's spaces once per process,
for planning. No Ray import here.
"""

from __future__ import annotations

import difflib
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


def unknown_env_message(env_id: str, allowed: str) -> str:
    """The one refusal of an env id that gymnasium does not know, with a "did you mean" of gymnasium's
    nearest id; ``allowed`` says what else the caller takes (e.g. an env family's id)."""
    close = difflib.get_close_matches(env_id, list(gym.registry), n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    return f"env={env_id!r} is not a known env{hint}; allowed: {allowed}"


def make_env(env_id: str, env_config: dict | None = None, source: str = "env") -> gym.Env:
    """One env outside RLlib (streaming RL's trainer): the family's ``make`` with its checked options,
    or ``gymnasium.make`` for a plain id; any failure is one ValueError line naming the id. Float
    observations are checked for NaN and infinities (``rllib_sparse.envs.finite``)."""
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
            allowed = "a gymnasium id (e.g. Walker2d-v5) or an id of an env family (`rllib-sparse envs`)"
            raise ValueError(f"{source}: {unknown_env_message(env_id, allowed)}") from None
        first = next((line.strip() for line in str(error).splitlines() if line.strip()), type(error).__name__)
        raise ValueError(f"{source}: env={env_id!r} cannot be created: {first}") from None


def _made_spaces(env_id: str, env_config: dict, source: str) -> tuple[gym.Space, gym.Space]:
    env = make_env(env_id, env_config, source)
    try:
        return env.observation_space, env.action_space
    finally:
        env.close()


#: ``spaces_of(env_id, env_config, source)``: how ``env_spaces`` finds an env's spaces the first time.
_SpacesOf = Callable[[str, dict, str], tuple[gym.Space, gym.Space]]
#: What ``env_spaces`` found: (env id, env_config as text, spaces_of) -> (observation, action). The
#: text, as the dict is not hashable; ``source`` is left out: it only names the file in a refusal.
_SPACES: dict[tuple, tuple[gym.Space, gym.Space]] = {}


def env_spaces(env_id: str, env_config: dict | None = None, source: str = "env",
               spaces_of: _SpacesOf = _made_spaces) -> tuple[gym.Space, gym.Space]:
    """(observation_space, action_space) of ``env_id`` made with ``env_config``, found once per process
    per (id, env_config): planning a 240-trial grid makes one env, not 240 (a DMC dog model takes ~0.3 s
    to compile). ``spaces_of(env_id, env_config, source)`` finds them on the first call: by default
    ``make_env`` makes the env (its one-line refusals name ``source``); RLlib's trial runner passes RLlib's
    own way (which also knows ``tune.register_env`` names). A refusal is not remembered."""
    config = dict(env_config or {})
    key = (env_id, repr(sorted(config.items())), spaces_of)
    if key not in _SPACES:
        _SPACES[key] = spaces_of(env_id, config, source)
    return _SPACES[key]
