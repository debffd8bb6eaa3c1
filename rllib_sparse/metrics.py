"""The names of every metric the project reports, in one place (no imports: any layer may use it).

A trial reports these keys per iteration (Tune results, MLflow metrics of the trial's child run); the
report reads them back. Keeping them here means a rename cannot leave one layer behind.
"""

from __future__ import annotations

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


def study_return(results: dict) -> float | None:
    """The return a study compares: the evaluation return where the trial evaluates, else the training one."""
    for key in (EVALUATION_RETURN, EPISODE_RETURN):
        value = results.get(key)
        if isinstance(value, (int, float)) and value == value:
            return float(value)
    return None


def format_return(value: float | None) -> str:
    """A return for a progress line; before any episode has finished, words instead of ``nan``."""
    if value is None or value != value:
        return "no episode finished yet"
    return f"{value:.2f}"
TRACKED_PREFIXES = (LEARNER_PREFIX, MASK_PREFIX, DIAGNOSTICS_PREFIX)


def diagnostic(network: str, name: str) -> str:
    """``diag/<network>/<name>``."""
    return f"{DIAGNOSTICS}/{network}/{name}"
