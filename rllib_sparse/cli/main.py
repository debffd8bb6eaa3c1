"""The ``rllib-sparse`` command line: one entry point for the whole project.

Exit codes: 0 success; 1 a run failed (with its traceback); 2 bad input, checked before Ray starts.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from urllib.parse import urlparse

from rllib_sparse import __version__
from rllib_sparse.algorithms import algorithm_rows
from rllib_sparse.sweep import STORAGE_ENV


class BadInput(Exception):
    """Input the user must fix; printed as one line, exit code 2."""


# ----------------------------------------------------------------------------------------- arguments


def _add_model_arguments(parser: argparse.ArgumentParser) -> None:
    """The algorithm, the env and the sparse model given as flags (``inspect``)."""
    rllib = [row.name for row in algorithm_rows() if row.is_rllib]  # a module of RLlib's to inspect
    parser.add_argument("--algorithm", default="PPO", help=f"one of: {', '.join(rllib)}")
    parser.add_argument("--env", default="CartPole-v1", help="env id (its spaces size the module)")
    group = parser.add_argument_group("sparse model")
    group.add_argument("--model", default="simba", help="registered model name (see `rllib-sparse models`)")
    group.add_argument("--width", type=int, help="width for actor and critic (model default if omitted)")
    group.add_argument("--depth", type=int, help="depth for actor and critic (model default if omitted)")
    group.add_argument("--sparsity", type=float, default=0.0, help="fraction of prunable weights removed, in [0, 1)")
    for role in ("actor", "critic"):
        group.add_argument(f"--{role}-width", type=int, help=f"{role} width (overrides --width)")
        group.add_argument(f"--{role}-depth", type=int, help=f"{role} depth (overrides --depth)")
        group.add_argument(f"--{role}-sparsity", type=float, help=f"{role} sparsity (overrides --sparsity)")
    group.add_argument("--allocation", default="erdos_renyi", help="layer-wise density rule: erdos_renyi or uniform")
    group.add_argument("--mask-seed", type=int, default=0, help="seed of the random masks")
    group.add_argument("--keep-first-dense", action="store_true", help="leave each network's first layer dense")
    group.add_argument("--keep-last-dense", action="store_true", help="leave each network's last layer dense")


def _model_fields(args: argparse.Namespace) -> dict:
    """The ``SparseModelConfig`` fields given on the command line (unset ones left to defaults)."""
    fields: dict = {"sparsity": args.sparsity, "allocation": args.allocation, "seed": args.mask_seed,
                    "keep_first_dense": args.keep_first_dense, "keep_last_dense": args.keep_last_dense}
    for key in ("width", "depth"):
        if getattr(args, key) is not None:
            fields[key] = getattr(args, key)
    for role in ("actor", "critic"):
        override = {key: getattr(args, f"{role}_{key}") for key in ("width", "depth", "sparsity")
                    if getattr(args, f"{role}_{key}") is not None}
        if override:
            fields[role] = override
    return fields


def _configured(args: argparse.Namespace):
    """An RLlib config for ``args.algorithm``/``args.env`` with the sparse model, fully validated."""
    from rllib_sparse.rllib import algorithm_config, with_sparse_model
    from rllib_sparse.sweep.plan import quiet_rllib

    quiet_rllib()
    try:
        config = algorithm_config(args.algorithm).environment(args.env)
        return with_sparse_model(config, args.model, **_model_fields(args))
    except ValueError as error:
        raise BadInput(str(error)) from None


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is invalid; allowed: an integer >= 1")
    return value


# ------------------------------------------------------------------------------------------ commands


def cmd_models(args: argparse.Namespace) -> int:
    from rllib_sparse.networks import registered_models

    models = registered_models()
    if args.json:
        print(json.dumps({name: {"input": e.input_kind, "default_width": e.default_width,
                                 "default_depth": e.default_depth, "width": e.width_means,
                                 "depth": e.depth_means, "summary": e.summary}
                          for name, e in sorted(models.items())}, indent=2))
        return 0
    rows = [("name", "input", "width (default)", "depth (default)", "summary")]
    rows += [(n, e.input_kind, f"{e.width_means} ({e.default_width})", f"{e.depth_means} ({e.default_depth})",
              e.summary) for n, e in sorted(models.items())]
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    for row in rows:
        print("  ".join(c.ljust(w) for c, w in zip(row, widths)) + "  " + row[4])
    return 0


def cmd_envs(args: argparse.Namespace) -> int:
    """Every registered env family: its ids and its ``env_config`` options (with defaults)."""
    from rllib_sparse.envs import env_families

    listing = {}
    for name, family in env_families().items():
        try:
            ids, unavailable = list(family.list_ids()), None
        except ValueError as error:  # its simulator (an extra of the package) is not installed
            ids, unavailable = [], str(error)
        listing[name] = {"summary": family.summary, "ids": ids,
                         "env_config": family.options().model_dump() if family.options is not None else {}}
        if unavailable is not None:
            listing[name]["unavailable"] = unavailable
    if args.json:
        print(json.dumps(listing, indent=2))
        return 0
    for name, entry in listing.items():
        ids = entry["ids"]
        if "unavailable" in entry:
            print(f"{name}: {entry['summary']}; unavailable: {entry['unavailable']}")
            continue
        print(f"{name}: {entry['summary']} ({len(ids)} ids; use the id as `env:` in a sweep file)")
        width = max((len(i) for i in ids), default=0) + 2
        per_line = max(1, 100 // max(width, 1))
        for start in range(0, len(ids), per_line):
            print("  " + "".join(i.ljust(width) for i in ids[start:start + per_line]).rstrip())
        if entry["env_config"]:
            print("  env_config options (defaults): " + ", ".join(f"{k}={v}" for k, v in entry["env_config"].items()))
    print("Any other gymnasium id (e.g. CartPole-v1) works as it is.")
    return 0


def cmd_inspect(args: argparse.Namespace) -> int:
    from ray.rllib.core import DEFAULT_MODULE_ID

    from rllib_sparse.rllib import MODEL_CONFIG_KEY, env_spaces

    config = _configured(args)
    spaces = env_spaces(config)
    spec = config.get_multi_rl_module_spec(spaces={DEFAULT_MODULE_ID: spaces}, inference_only=False)
    module = spec.build()[DEFAULT_MODULE_ID]
    reports = module.sparsity_reports()
    if args.json:
        print(json.dumps({"algorithm": args.algorithm.upper(), "env": args.env,
                          "observation_space": str(spaces[0]), "action_space": str(spaces[1]),
                          "sparse_config": module.model_config[MODEL_CONFIG_KEY],
                          "networks": {n: r.to_dict() for n, r in reports.items()},
                          "dense_params": sum(r.dense_params for r in reports.values()),
                          "nonzero_params": sum(r.nonzero_params for r in reports.values())}, indent=2))
        return 0
    print(f"{args.algorithm.upper()} on {args.env}: observations {spaces[0]}, actions {spaces[1]}")
    for network, report in reports.items():
        print(f"\n[{network}]")
        print(report.format_table())
    dense = sum(r.dense_params for r in reports.values())
    nonzero = sum(r.nonzero_params for r in reports.values())
    print(f"\nall networks: {nonzero:,} non-zero of {dense:,} dense parameters")
    return 0


def _add_sweep_arguments(parser: argparse.ArgumentParser, *, runs: bool = True) -> None:
    """The sweep file and its overrides (``validate``, ``train``, ``sweep``, ``submit``); ``runs``: the
    command runs trials (``--smoke`` shrinks them; ``--num-cpus`` sizes the local Ray)."""
    parser.add_argument("file", help="a sweep file (e.g. tune_configs/quickstart.yaml) or the name of a shipped "
                                     "study (e.g. quickstart; `rllib-sparse validate NAME` to see one)")
    parser.add_argument("--set", action="append", metavar="KEY=VALUE",
                        help="override a field, e.g. --set stop.iterations=2 --set grid.width=[64,128]")
    parser.add_argument("--smoke", action="store_true",
                        help="shrink every trial to a seconds-long check (tiny batches, 2 iterations)" if runs
                        else "validate the --smoke version of the grid")
    if runs:
        parser.add_argument("--num-cpus", type=_positive_int, default=None, help="CPUs of the local Ray (default: all)")


def shipped_studies() -> dict[str, Path]:
    """The studies that ship with the package (the repository's ``tune_configs/*.yaml``), by name.

    An installed wheel has them as the package data ``rllib_sparse/tune_configs/`` (pyproject.toml maps
    the folder into the package); a source checkout (an editable install) reads ``tune_configs/`` itself.
    """
    package = Path(__file__).resolve().parent.parent
    for folder in (package / "tune_configs", package.parent / "tune_configs"):
        if folder.is_dir() and (folder.parent == package or (package.parent / "pyproject.toml").is_file()):
            return {path.stem: path for path in sorted(folder.glob("*.yaml"))}
    return {}


def _shown(path: Path) -> str:
    """A path as the user reads it: relative to the working folder when inside it."""
    try:
        return str(path.relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def _sweep_file(text: str) -> str:
    """The sweep file a command argument names: an existing path as it is; else a shipped study, by name
    (``quickstart``, ``quickstart.yaml``, or ``tune_configs/quickstart.yaml`` outside the repository);
    else a bare name is BadInput listing the shipped studies, and a path goes on as given (reading it
    fails in one line)."""
    path = Path(text)
    if path.exists() or not text:
        return text
    studies = shipped_studies()
    bare = len(path.parts) == 1
    in_shipped_folder = len(path.parts) == 2 and path.parts[0] == "tune_configs"
    if (bare or in_shipped_folder) and path.suffix in ("", ".yaml"):
        name = path.stem if path.suffix else path.name
        if name in studies:
            return _shown(studies[name])
    if bare and not path.suffix:
        names = ", ".join(studies) if studies else "none found (the package data tune_configs/ is missing)"
        raise BadInput(f"{text!r} is no sweep file and no shipped study; allowed: a path to a sweep file, "
                       f"or a shipped study: {names}")
    return text


def _load_sweep(args: argparse.Namespace):
    """The sweep file with ``--set`` overrides, validated, and its trials planned (BadInput if not)."""
    from rllib_sparse.sweep.plan import plan
    from rllib_sparse.sweep.spec import load_sweep

    overrides = (args.set or []) + (["smoke=true"] if args.smoke else [])
    try:
        spec = load_sweep(args.file, overrides)  # no RLlib import yet: a bad file is refused in ~2 s less
        return spec, plan(spec, source=args.file)
    except ValueError as error:
        raise BadInput(str(error)) from None


def cmd_validate(args: argparse.Namespace) -> int:
    """Check a sweep file and print its expanded grid; starts nothing."""
    from rllib_sparse.sweep.trial import runner_class

    spec, trials = _load_sweep(args)
    if args.json:
        print(json.dumps({"name": spec.name, "algorithm": spec.algorithm, "experiment": spec.experiment_name,
                          "trials": [{"name": t.point.name, "env": t.point.env, "seed": t.point.seed,
                                      "actor": vars(t.point.model.network("actor")),
                                      "critic": vars(t.point.model.network("critic")),
                                      "training": t.point.training,
                                      "dense_params": t.dense_params, "nonzero_params": t.nonzero_params}
                                     for t in trials]}, indent=2))
        return 0
    stop = ", ".join(f"{k}={v}" for k, v in spec.stop.model_dump().items() if v is not None)
    print(f"{args.file}: study {spec.name!r}, {spec.algorithm} on {spec.env}, {len(trials)} trial(s), "
          f"stop at {stop}")
    rows = [("trial", "width", "depth", "sparsity", "seed", "dense params", "non-zero params")]
    runner = runner_class(spec.algorithm)
    for t in trials:
        actor, critic = t.point.model.network("actor"), t.point.model.network("critic")
        width = str(actor.width) if actor.width == critic.width else f"{actor.width}/{critic.width}"
        depth = str(actor.depth) if actor.depth == critic.depth else f"{actor.depth}/{critic.depth}"
        logged = runner.params(spec, t.point)  # e.g. a dense initialisation: sparsity 0 whatever the axis says
        actor_sparsity = logged.get("sparsity", actor.sparsity)
        critic_sparsity = logged.get("critic_sparsity", critic.sparsity)
        sparsity = (f"{actor_sparsity:g}" if actor_sparsity == critic_sparsity
                    else f"{actor_sparsity:g}/{critic_sparsity:g}")
        rows.append((t.point.name, width, depth, sparsity, str(t.point.seed), f"{t.dense_params:,}",
                     f"{t.nonzero_params:,}"))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for i, row in enumerate(rows):
        print("  ".join(c.ljust(w) if j == 0 else c.rjust(w) for j, (c, w) in enumerate(zip(row, widths))))
        if i == 0:
            print("  ".join("-" * w for w in widths))
    print("(width/depth/sparsity as actor/critic where they differ; parameters over all networks)")
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    """One trial of a sweep file, in this process, without Tune or MLflow: for debugging."""
    import ray

    from rllib_sparse import metrics as m
    from rllib_sparse.sweep.trial import NonFiniteTrainingError, iterate_trial, runner_class

    spec, trials = _load_sweep(args)
    names = [t.point.name for t in trials]
    if args.trial is not None and args.trial not in names:
        raise BadInput(f"--trial={args.trial!r} is not a trial of {args.file}; allowed: {', '.join(names)}")
    planned = trials[names.index(args.trial)] if args.trial else trials[0]
    runner = runner_class(spec.algorithm)(spec, planned.point, source=args.file)
    ray.init(include_dashboard=False, num_cpus=args.num_cpus, log_to_driver=False)
    try:
        runner.build()
        print(f"training {planned.point.name} ({spec.algorithm} on {planned.point.env}): "
              f"{planned.nonzero_params:,} non-zero of {planned.dense_params:,} parameters", flush=True)
        steps = iterate_trial(runner, spec)
        while True:
            try:
                step = next(steps, None)
            except NonFiniteTrainingError as error:  # the reason is the whole story: one line, exit 1
                print(f"rllib-sparse: training failed: {error}", file=sys.stderr)
                return 1
            if step is None:
                break
            metrics = step.metrics
            evaluation = metrics.get(m.EVALUATION_RETURN)
            print(f"iter {step.iteration:>3}  env_steps {int(metrics.get(m.ENV_STEPS, 0)):>8,}  "
                  f"return {m.return_text(metrics)}  "
                  + (f"eval return {m.format_return(evaluation)}  " if evaluation is not None else "")
                  + f"({metrics.get(m.TIME_TOTAL, 0):6.1f} s)", flush=True)
            by_network: dict[str, list[str]] = {}
            for key, value in step.diagnostics.items():
                parts = key.split("/")
                if parts[0] == m.DIAGNOSTICS and len(parts) == 3 and parts[2] != "rows":
                    by_network.setdefault(parts[1], []).append(f"{parts[2]} {value:.3g}")
            for network, values in by_network.items():
                print(f"     {network}: {'  '.join(values)}", flush=True)
        print(f"done: final return {m.format_return(m.study_return(metrics))}; "
              f"max |masked weight| over learner and env runners = {runner.max_masked_weight()}")
        if args.checkpoint:
            folder = os.path.abspath(args.checkpoint)
            runner.save(folder)
            print(f"checkpoint: {folder}")
        runner.stop()
    finally:
        ray.shutdown()
    return 0


def cmd_sweep(args: argparse.Namespace) -> int:
    """Every trial of the grid with Ray Tune, tracked in MLflow."""
    from rllib_sparse.sweep.preflight import SweepInputError, SweepOptions, prepare

    try:
        options = SweepOptions(file=Path(args.file), overrides=args.set or [], address=args.address,
                               tracking_uri=args.tracking_uri, resume=args.resume, smoke=args.smoke,
                               tracking=not args.no_tracking, num_cpus=args.num_cpus, verbose=args.verbose,
                               storage=args.storage)
        prepared = prepare(options)  # imports no Tune (nor RLlib before planning): a refusal comes in seconds
        from rllib_sparse.sweep.runner import run_prepared

        return run_prepared(options, prepared)
    except SweepInputError as error:
        raise BadInput(str(error)) from None


def cmd_report(args: argparse.Namespace) -> int:
    """A study's scaling curves, heat maps, diagnostics and runs table, from MLflow."""
    from rllib_sparse.report import ReportError, build_report
    from rllib_sparse.report.build import check_output_folder
    from rllib_sparse.sweep.tracking import check_tracking_uri, default_tracking_uri, sqlite_path

    uri = args.tracking_uri or default_tracking_uri()
    try:
        out = Path(args.out) if args.out else Path("reports") / args.experiment
        check_output_folder(out.resolve())
        if urlparse(uri).scheme == "sqlite" and not sqlite_path(uri).is_file():
            raise ValueError(f"tracking URI {uri!r}: no MLflow store there ({sqlite_path(uri).resolve()}); "
                             "allowed: the store a sweep wrote (default ./mlruns/mlflow.db) or http://HOST:PORT")
        check_tracking_uri(uri, write=False)
        report = build_report(args.experiment, uri, out)
    except (ReportError, ValueError) as error:
        raise BadInput(str(error)) from None
    print(f"report: {report.page}")
    return 0


def cmd_submit(args: argparse.Namespace) -> int:
    """Submit the sweep as a Ray Job; print the job id and how to follow it (``--wait`` follows)."""
    from rllib_sparse.sweep import submit as jobs

    _load_sweep(args)  # the same checks as `validate`, before anything is submitted
    if args.resume and not args.job_dir:
        raise BadInput("--resume needs --job-dir: the job folder of the interrupted sweep on the head node "
                       "(it keeps the sweep's record); allowed: --resume --job-dir DIR, or a new sweep")
    sweep_args = [f"--set={item}" for item in (args.set or [])]
    if args.resume:
        sweep_args.append("--resume")
    if args.smoke:
        sweep_args.append("--smoke")
    if args.tracking_uri:
        sweep_args.append(f"--tracking-uri={args.tracking_uri}")
    if args.storage:
        sweep_args.append(f"--storage={args.storage}")
    job_dir = args.job_dir or f"~/rllib-sparse-jobs/{Path(args.file).stem}-{time.strftime('%Y%m%d-%H%M%S')}"
    env_vars = {key: os.environ[key] for key in ("RAY_AUTH_MODE",) if key in os.environ}
    try:
        client, job_id = jobs.submit(args.address, Path(args.file), job_dir, sweep_args, env_vars)
    except ValueError as error:
        raise BadInput(str(error)) from None
    print(f"submitted job {job_id} to {args.address}; the sweep runs in {job_dir} on the head node")
    print(f"follow it: ray job logs --address {args.address} --follow {job_id}")
    if not args.wait:
        return 0
    status = jobs.follow(client, job_id)
    print(f"job {job_id}: {status}")
    return 0 if status == "SUCCEEDED" else 1


def cmd_schema(args: argparse.Namespace) -> int:
    """The JSON Schema of sweep files on stdout (``rllib-sparse schema > sweep.schema.json``)."""
    from rllib_sparse.sweep.spec import sweep_schema

    print(json.dumps(sweep_schema(), indent=2))
    return 0


# ------------------------------------------------------------------------------------------- parser


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="rllib-sparse", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"rllib-sparse {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("models", help="list the registered sparse models")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=cmd_models)

    p = sub.add_parser("envs", help="list the env families (Atari: ALE/<Game>-v5 ...) and their env_config options")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=cmd_envs)

    p = sub.add_parser("inspect", help="per-layer sparsity table and parameter counts of a sparse module")
    _add_model_arguments(p)
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=cmd_inspect)

    p = sub.add_parser("validate", help="check a sweep file and print its grid; starts nothing")
    _add_sweep_arguments(p, runs=False)
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=cmd_validate)

    p = sub.add_parser("schema", help="the JSON Schema of sweep files (for editors and check-jsonschema)")
    p.set_defaults(func=cmd_schema)

    p = sub.add_parser("train", help="one trial of a sweep file, in this process, for debugging")
    _add_sweep_arguments(p)
    p.add_argument("--trial", help="trial name (see `validate`); default: the first trial of the grid")
    p.add_argument("--checkpoint", help="save the trained algorithm to this folder at the end")
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("sweep", help="run every trial of a sweep file with Ray Tune, tracked in MLflow")
    _add_sweep_arguments(p)
    p.add_argument("--address", help="join this Ray cluster (HOST:PORT or ray://HOST:PORT); "
                                     "default: start a local Ray for the sweep and stop it after")
    p.add_argument("--tracking-uri", help="MLflow tracking URI (default: the file's, else sqlite:///./mlruns/mlflow.db)")
    p.add_argument("--resume", action="store_true", help="continue the latest interrupted sweep of this study")
    p.add_argument("--storage", default=os.environ.get(STORAGE_ENV) or None,
                   help="where Tune keeps trial folders and checkpoints: a folder or s3://BUCKET/PATH that every "
                        f"node reaches (default: ${STORAGE_ENV}, else ./runs/)")
    p.add_argument("--no-tracking", action="store_true", help="do not log to MLflow (e.g. to measure its cost)")
    p.add_argument("--verbose", action="store_true",
                   help="also show Ray's, Tune's and MLflow's own log lines (they always go to the sweep's log file)")
    p.set_defaults(func=cmd_sweep)

    p = sub.add_parser("submit", help="submit a sweep to a Ray cluster as a Ray Job")
    _add_sweep_arguments(p)
    p.add_argument("--address", required=True, help="the cluster's Jobs endpoint, e.g. http://HEAD:8265")
    p.add_argument("--tracking-uri", help="MLflow tracking URI the cluster can reach (e.g. http://mlflow:5000)")
    p.add_argument("--storage", help="Tune's storage for the job, e.g. s3://BUCKET/PATH (default: the head "
                                      f"node's ${STORAGE_ENV}, else the job folder)")
    p.add_argument("--job-dir", help="folder on the head node for the sweep's runs/ and default MLflow store "
                                     "(default: ~/rllib-sparse-jobs/<file>-<time>)")
    p.add_argument("--resume", action="store_true",
                   help="continue the interrupted sweep whose job folder is --job-dir (its trials resume from "
                        "their checkpoints on the storage)")
    p.add_argument("--wait", action="store_true", help="follow the job's logs until it ends")
    p.set_defaults(func=cmd_submit)

    p = sub.add_parser("report", help="scaling curves, heat maps, diagnostics and an HTML page of a study")
    p.add_argument("experiment", help="the MLflow experiment (a sweep file's name, or its tracking.experiment)")
    p.add_argument("--tracking-uri", help="MLflow tracking URI (default: sqlite:///./mlruns/mlflow.db)")
    p.add_argument("--out", help="output folder: new, empty, or an earlier report's (default: reports/<experiment>/); "
                                 "nothing else is ever overwritten")
    p.set_defaults(func=cmd_report)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if getattr(args, "file", None) is not None:
            args.file = _sweep_file(args.file)
        return args.func(args)
    except BadInput as error:
        print(f"rllib-sparse: error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
