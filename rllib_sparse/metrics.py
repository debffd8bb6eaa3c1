"""The names of every metric the project reports, in one place (only the standard library: any layer may use it).

A trial reports these keys per iteration (Tune results, MLflow metrics of the trial's child run); the
report reads them back. Keeping them here means a rename cannot leave one layer behind. Also here: which
of them must stay finite (``nonfinite``), how a return reads on a progress line, and the tracking-store
names that the sweep writes and the report reads (tags, the gradient-cosine artifacts).
"""

from __future__ import annotations

import math

#: Mean return of the episodes finished in the iteration's window. For env families that report a
#: full-episode return (Atari: the whole game, unclipped, all lives) this is that one.
EPISODE_RETURN = "episode_return_mean"
EPISODE_RETURN_MAX = "episode_return_max"
EPISODE_LENGTH = "episode_len_mean"
#: RLlib's own return where the env family replaced it (Atari: per life, clipped rewards).
TRAINING_EPISODE_RETURN = "training_episode_return_mean"
#: Mean return of the deterministic policy's evaluation episodes (the paper's number on DMC), in the
#: iterations that evaluate (``evaluation:`` in a sweep file). Same full-episode rule as above.
EVALUATION_RETURN = "evaluation_return_mean"
ENV_STEPS = "env_steps"
ITERATION = "iteration"
TIME_TOTAL = "time_total_s"
TIME_THIS_ITERATION = "time_this_iter_s"
ENV_STEPS_PER_S = "env_steps_per_s"
#: Whether the trial reached its stop condition with this result (a Tune result key, not logged).
DONE = "done_training"

#: Learner statistics: ``learner/<name>``.
LEARNER_PREFIX = "learner/"
#: Largest |weight| at a pruned place over learners and env runners; 0.0 while the masks hold.
MAX_MASKED_WEIGHT = "mask/max_masked_weight"
MASK_PREFIX = "mask/"
#: The paper's diagnostics: ``diag/<network>/<metric>``.
DIAGNOSTICS = "diag"
DIAGNOSTICS_PREFIX = DIAGNOSTICS + "/"

#: The per-iteration keys logged to MLflow besides the prefixed families above.
TRACKED = (EPISODE_RETURN, EPISODE_RETURN_MAX, EPISODE_LENGTH, TRAINING_EPISODE_RETURN, EVALUATION_RETURN, ENV_STEPS,
           ITERATION, TIME_TOTAL, TIME_THIS_ITERATION, ENV_STEPS_PER_S)
#: The prefixed families logged to MLflow with every key under them.
TRACKED_PREFIXES = (LEARNER_PREFIX, MASK_PREFIX, DIAGNOSTICS_PREFIX)

#: The returns a trial's non-finite check covers (besides every learner loss and TD error): a NaN here,
#: once episodes have finished, means the env's rewards were not finite.
RETURNS = (EPISODE_RETURN, EPISODE_RETURN_MAX, TRAINING_EPISODE_RETURN, EVALUATION_RETURN)
#: Learner statistics the non-finite check covers, matched as substrings of the name after ``learner/``.
CHECKED_LEARNER_KEYS = ("loss", "td_error")


def study_return(results: dict) -> float | None:
    """The return a study compares: the evaluation return where the trial evaluates, else the training one."""
    for key in (EVALUATION_RETURN, EPISODE_RETURN):
        value = results.get(key)
        if isinstance(value, (int, float)) and value == value:
            return float(value)
    return None


def no_episode_yet(results: dict, key: str = EPISODE_RETURN) -> bool:
    """Whether ``key`` (a return) is missing because no episode has finished yet.

    RLlib (2.60) and the streaming runner leave the return out until the first episode ends. A runner that
    reports NaN instead says so with an episode length of NaN (or 0) next to it; a NaN return next to a
    finite episode length, or without one, comes from finished episodes: their rewards were not finite.
    """
    value = results.get(key)
    if value is None:
        return True
    if value == value:
        return False
    length = results.get(EPISODE_LENGTH)
    return isinstance(length, (int, float)) and not length > 0


def nonfinite(results: dict) -> dict[str, float]:
    """The returns, learner losses and TD errors of one iteration that are NaN or infinite (returns first,
    in ``RETURNS`` order; a return not yet reported because no episode has finished is not one of them)."""
    found = {key: float(results[key]) for key in RETURNS
             if isinstance(results.get(key), (int, float)) and not math.isfinite(results[key])
             and not no_episode_yet(results, key)}
    for key, value in results.items():
        if (key.startswith(LEARNER_PREFIX) and any(k in key[len(LEARNER_PREFIX):] for k in CHECKED_LEARNER_KEYS)
                and isinstance(value, (int, float)) and not math.isfinite(value)):
            found[key] = float(value)
    return found


def format_return(value: float | None, finished: bool = True) -> str:
    """A return for a progress line; before any episode has finished (``value`` None, or ``finished``
    False: see ``no_episode_yet``), words instead of a number. Finished episodes' non-finite return
    shows as ``nan``/``inf``."""
    if value is None or not finished:
        return "no episode finished yet"
    return f"{value:.2f}"


def return_text(results: dict, key: str = EPISODE_RETURN) -> str:
    """``format_return`` of ``results[key]``, telling a missing return from finished episodes' NaN."""
    return format_return(results.get(key), not no_episode_yet(results, key))


def diagnostic(network: str, name: str) -> str:
    """``diag/<network>/<name>``."""
    return f"{DIAGNOSTICS}/{network}/{name}"


# Tracking-store names: written by the sweep's tracker, read back by the report.

#: Tag of a trial's child run: the trial name, by which a resumed sweep or a retried trial finds its run.
TRIAL_TAG = "rllib_sparse.trial"
#: Tag of a sweep's parent run: the sweep (study) name.
SWEEP_TAG = "rllib_sparse.sweep"
#: Child-run artifact folder of the gradient-cosine matrices, one JSON file per diagnosed iteration
#: (``interference_artifact``): ``{COSINES_KEY: {network: matrix}, "iteration": i, "env_steps": n}``.
INTERFERENCE_DIR = "interference"
COSINES_KEY = "cosines"


def interference_artifact(iteration: int) -> str:
    """The artifact path of one iteration's gradient-cosine matrices (sorted by name = by iteration)."""
    return f"{INTERFERENCE_DIR}/iter_{iteration:06d}.json"
