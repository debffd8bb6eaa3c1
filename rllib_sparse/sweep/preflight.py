"""Everything a sweep checks before Ray starts and before it writes anything: the file, the sweep to
resume (and that it is the same study), the address, Tune's storage, the tracking store, the grid and
its envs, and (once Ray is up) whether a node can host a trial.

Kept apart from the Tune loop so that a refusal imports neither Ray Tune nor RLlib: a mistyped flag is
answered in about 2 s instead of about 5.
"""

from __future__ import annotations

import json
import os
import socket
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlparse

from rllib_sparse.sweep.plan import format_bytes, plan, too_big
from rllib_sparse.sweep.spec import SweepSpec, load_sweep
from rllib_sparse.sweep.tracking import CONNECT_BUDGET_ENV, check_tracking_uri, default_tracking_uri
from rllib_sparse.sweep.trial import PlannedTrial

RUNS_DIR = "runs"  # Tune's storage, under the working directory: runs/<study>/<timestamp>/


class SweepInputError(ValueError):
    """Bad input found before any trial started (exit code 2)."""


@dataclass
class SweepOptions:
    file: Path
    overrides: list[str] = field(default_factory=list)
    address: str | None = None
    tracking_uri: str | None = None
    resume: bool = False
    smoke: bool = False
    tracking: bool = True
    num_cpus: int | None = None
    runs_dir: Path = Path(RUNS_DIR)
    #: Tune's storage: None for ``runs_dir`` (this machine), else a URI every node reaches (``s3://...``).
    #: The sweep's own record, log and tracking journal stay in ``runs_dir`` on the driver's machine.
    storage: str | None = None
    verbose: bool = False  # Ray's, Tune's and MLflow's log lines on the terminal too (they always go to the log file)
    extra_callbacks: list = field(default_factory=list)  # more Tune callbacks (e.g. another tracker)
    #: Seconds the end of a sweep waits for an unreachable tracking store before leaving the unsent
    #: records in the journal for ``--resume``.
    tracking_flush_timeout: float = float(os.environ.get("RLLIB_SPARSE_TRACKING_FLUSH_TIMEOUT", "300"))
    #: Seconds the pre-flight keeps asking a tracking server that takes connections but is slow to answer
    #: (one that is starting up), before refusing the sweep.
    tracking_connect_budget: float = field(default_factory=lambda: _seconds(CONNECT_BUDGET_ENV, 60.0))


def _seconds(variable: str, default: float) -> float:
    text = os.environ.get(variable)
    try:
        value = float(text) if text else default
    except ValueError:
        value = -1.0
    if not value >= 0:
        raise SweepInputError(f"{variable}={text!r} is invalid; allowed: a number of seconds >= 0")
    return value


@dataclass
class Prepared:
    """A sweep whose input has been checked: nothing has been started or written yet."""

    spec: SweepSpec
    trials: list[PlannedTrial]
    uri: str | None
    study_dir: Path  # runs/<study>/
    meta_path: Path | None  # the record of the sweep to resume
    meta: dict | None
    storage: str | None = None  # Tune's storage when not study_dir (checked; the resumed sweep's own)


def prepare(options: SweepOptions) -> Prepared:
    """Everything that can fail on input, before Ray starts and before anything is written: file, the
    sweep to resume (and that it is the same study), address, storage, tracking store, then the grid and
    its envs (planning: the slowest check, so a mistyped flag is refused without waiting for it)."""
    overrides = list(options.overrides) + (["smoke=true"] if options.smoke else [])
    try:
        spec = load_sweep(options.file, overrides)
    except ValueError as error:
        raise SweepInputError(str(error)) from None
    if options.num_cpus is not None and options.num_cpus < 1:
        raise SweepInputError(f"--num-cpus={options.num_cpus} is invalid; allowed: an integer >= 1")
    study_dir = options.runs_dir.resolve() / spec.name
    for folder in (options.runs_dir.resolve(), study_dir):
        if folder.exists() and not folder.is_dir():
            raise SweepInputError(f"{folder} is a file, but sweeps keep their Tune folders there; allowed: "
                                  "move the file away, or run the sweep from another folder")
    meta_path = meta = None
    if options.resume:
        meta_path = latest_sweep(study_dir)
        if meta_path is None:
            raise SweepInputError(f"--resume: no earlier sweep of study {spec.name!r} under {study_dir}; "
                                  "allowed: --resume after a sweep of the same file was started")
        meta = _read_meta(meta_path)
        _check_same_study(meta, spec, meta_path)
    if options.address:
        _check_address(options.address)
    storage = check_storage(options.storage) if options.storage else None
    if meta is not None and meta.get("storage") != storage and (meta.get("storage") or storage):
        if storage is None:
            storage = check_storage(meta["storage"])  # the interrupted sweep's storage, recorded
        else:
            raise SweepInputError(f"--resume: the interrupted sweep kept its trials in {meta.get('storage') or 'runs/'}"
                                  f", not --storage={options.storage!r}; allowed: the same --storage as then")
    uri = None
    if options.tracking:
        uri = options.tracking_uri or (meta or {}).get("tracking_uri") or spec.tracking.tracking_uri \
            or default_tracking_uri()
        try:
            check_tracking_uri(uri, budget=options.tracking_connect_budget)
        except ValueError as error:
            hint = (f" (the tracking URI the interrupted sweep used, from {meta_path}; pass --tracking-uri to "
                    "send it elsewhere)") if meta and not options.tracking_uri else ""
            raise SweepInputError(f"{error}{hint}") from None
    try:  # last: planning builds every trial's RLlib config and env spaces (seconds), the checks above do not
        trials = plan(spec, source=str(options.file))
    except ValueError as error:
        raise SweepInputError(str(error)) from None
    return Prepared(spec, trials, uri, study_dir, meta_path, meta, storage)


def check_storage(storage: str) -> str:
    """``--storage`` as Tune will use it (a folder made absolute), or a one-line refusal of one that Tune
    could not reach, before anything starts."""
    allowed = ("allowed: a folder (an NFS mount on a cluster), or a URI every node can write: s3://BUCKET/PATH "
               "(credentials and AWS_ENDPOINT_URL in the environment), gs://BUCKET/PATH")
    if "://" not in storage:
        folder = Path(storage).expanduser().resolve()
        if folder.exists() and not folder.is_dir():
            raise SweepInputError(f"--storage={storage!r} is a file; {allowed}")
        return str(folder)
    import pyarrow
    import pyarrow.fs

    try:
        filesystem, path = pyarrow.fs.FileSystem.from_uri(storage)
        bucket = path.split("/", 1)[0]
        missing = filesystem.get_file_info(bucket).type == pyarrow.fs.FileType.NotFound
    except (pyarrow.ArrowException, OSError, ValueError) as error:
        first = next((line.strip() for line in str(error).splitlines() if line.strip()), type(error).__name__)
        raise SweepInputError(f"--storage={storage!r} cannot be reached: {first}; {allowed}") from None
    if missing:
        raise SweepInputError(f"--storage={storage!r}: there is no bucket {bucket!r}; {allowed}")
    return storage.rstrip("/")


def _read_meta(path: Path) -> dict:
    try:
        meta = json.loads(path.read_text())
        if not isinstance(meta, dict) or not isinstance(meta.get("stamp"), str):
            raise ValueError("no 'stamp' field")
        return meta
    except (OSError, ValueError) as error:
        raise SweepInputError(f"--resume: {path} is not a readable sweep record ({error}); allowed: the "
                              "record a sweep wrote (move this one away to resume an earlier sweep)") from None


def _check_same_study(meta: dict, spec: SweepSpec, path: Path) -> None:
    """``--resume`` continues the very study that was interrupted, or refuses and says what differs."""
    before = meta.get("fingerprint")
    if before is None:
        raise SweepInputError(f"--resume: {path} was written by an older rllib-sparse and does not record its "
                              "study, so resuming it could mix two studies; allowed: a new sweep (without --resume)")
    now = spec.fingerprint()
    differences = _differences(before, now)
    if differences:
        shown = "; ".join(f"{key}: {old} -> {new}" for key, old, new in differences[:3])
        more = f" (and {len(differences) - 3} more)" if len(differences) > 3 else ""
        raise SweepInputError(f"--resume: this is not the study that was interrupted ({meta['stamp']}): {shown}"
                              f"{more}; allowed: the same file, --set and --smoke as then, or a new sweep "
                              "without --resume")


def _differences(old, new, path: str = "") -> list[tuple[str, str, str]]:
    if isinstance(old, dict) and isinstance(new, dict):
        found = []
        for key in sorted(set(old) | set(new), key=str):
            found += _differences(old.get(key), new.get(key), f"{path}.{key}" if path else str(key))
        return found
    return [] if old == new else [(path, json.dumps(old), json.dumps(new))]


def _check_address(address: str) -> None:
    if address == "auto":
        return
    parsed = urlparse(address if "://" in address else f"ray://{address}")
    try:
        host, port = parsed.hostname, parsed.port
    except ValueError:  # "Port out of range 0-65535"
        host = port = None
    if host is None or port is None:
        raise SweepInputError(f"--address={address!r} is invalid; allowed: HOST:PORT of a Ray head (GCS), "
                              "ray://HOST:PORT, or auto")
    if not port_open(host, port):
        raise SweepInputError(f"--address={address!r} is unreachable (nothing answers on {host}:{port}); "
                              "allowed: the address of a running Ray head")


def port_open(host: str, port: int, timeout: float = 3.0) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def check_resources(spec: SweepSpec, trials: list[PlannedTrial], bundles: list[dict[str, float]],
                    nodes: list[dict[str, float]]) -> None:
    """Refuse a sweep whose trials no node of the cluster can host (Tune would wait for them forever).

    ``bundles`` are one trial's resource bundles (its placement group), ``nodes`` the alive nodes'
    resources. A trial's bundles may spread over nodes, but each bundle must fit on one.
    """
    settings = (f"resources.cpus_per_trial={spec.resources.cpus_per_trial:g}, "
                f"gpus_per_trial={spec.resources.gpus_per_trial:g}, "
                f"num_env_runners={spec.resources.num_env_runners}")
    for key in ("CPU", "GPU"):
        need = sum(b.get(key, 0) for b in bundles)
        largest_bundle = max((b.get(key, 0) for b in bundles), default=0)
        have = sum(n.get(key, 0) for n in nodes)
        largest_node = max((n.get(key, 0) for n in nodes), default=0)
        if need > have or largest_bundle > largest_node:
            raise SweepInputError(f"resources: each trial needs {need:g} {key} ({settings}), but the cluster has "
                                  f"{have:g} {key} (at most {largest_node:g} on one node); allowed: settings "
                                  "the cluster can host (or --num-cpus / more nodes)")
    memory = max((n.get("memory", 0) for n in nodes), default=0)
    for trial in trials:
        if trial.memory_bytes > memory:
            raise SweepInputError(f"resources: {too_big(trial, f'the largest node has {format_bytes(memory)}')}")


def latest_sweep(study_dir: Path) -> Path | None:
    """The record of the newest sweep of a study (``runs/<study>/<stamp>.json``), if any."""
    metas = sorted(study_dir.glob("*.json"))
    return metas[-1] if metas else None


