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

from rllib_sparse import __version__


class BadInput(Exception):
    """Input the user must fix; printed as one line, exit code 2."""


# ----------------------------------------------------------------------------------------- arguments


def _add_model_arguments(parser: argparse.ArgumentParser) -> None:
    """The algorithm, the env and the sparse model: shared by every command that builds a module."""
    parser.add_argument("--algorithm", default="PPO", help="PPO, APPO, IMPALA, SAC or DQN")
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

    try:
        config = algorithm_config(args.algorithm).environment(args.env)
        return with_sparse_model(config, args.model, **_model_fields(args))
    except ValueError as error:
        raise BadInput(str(error)) from None


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


def cmd_inspect(args: argparse.Namespace) -> int:
    from ray.rllib.core import DEFAULT_MODULE_ID

    from rllib_sparse.rllib import env_spaces

    config = _configured(args)
    spaces = env_spaces(config)
    spec = config.get_multi_rl_module_spec(spaces={DEFAULT_MODULE_ID: spaces}, inference_only=False)
    module = spec.build()[DEFAULT_MODULE_ID]
    reports = module.sparsity_reports()
    if args.json:
        print(json.dumps({"algorithm": args.algorithm.upper(), "env": args.env,
                          "observation_space": str(spaces[0]), "action_space": str(spaces[1]),
                          "sparse_config": module.model_config["sparse"],
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


def cmd_train(args: argparse.Namespace) -> int:
    """One short training run in this process: the quick way to see a sparse agent learn."""
    import ray

    from rllib_sparse.rllib.inspection import max_masked_weight

    if args.iterations < 1:
        raise BadInput(f"--iterations={args.iterations} is invalid; allowed: an integer >= 1")
    config = _configured(args)
    config = (config.env_runners(num_env_runners=args.num_env_runners, num_envs_per_env_runner=args.num_envs)
              .debugging(seed=args.seed))
    if args.algorithm.upper() == "PPO":
        config = config.training(lr=3e-4, train_batch_size_per_learner=2000, minibatch_size=250, num_epochs=6)
    ray.init(include_dashboard=False, num_cpus=args.num_cpus, log_to_driver=False,
             runtime_env={"env_vars": {"PYTHONWARNINGS": "ignore::DeprecationWarning"}})
    try:
        algo = config.build_algo()
        start = time.perf_counter()
        print(f"training {args.algorithm.upper()} on {args.env}: model={args.model} sparsity={args.sparsity}")
        result = {}
        for _ in range(args.iterations):
            result = algo.train()
            ret = result.get("env_runners", {}).get("episode_return_mean", float("nan"))
            steps = int(result.get("num_env_steps_sampled_lifetime", 0))
            print(f"iter {result['training_iteration']:>3}  env_steps {steps:>8,}  return {ret:8.2f}  "
                  f"({time.perf_counter() - start:6.1f} s)", flush=True)
        module = algo.get_module()
        worst = max_masked_weight(algo)
        reports = module.sparsity_reports()
        nonzero = sum(r.nonzero_params for r in reports.values())
        dense = sum(r.dense_params for r in reports.values())
        print(f"done: final return {result['env_runners'].get('episode_return_mean', float('nan')):.2f}; "
              f"inference networks hold {nonzero:,} non-zero of {dense:,} parameters; "
              f"max |masked weight| = {worst}")
        if args.checkpoint:
            path = algo.save_to_path(os.path.abspath(args.checkpoint))
            print(f"checkpoint: {path}")
        algo.stop()
    finally:
        ray.shutdown()
    return 0


# ------------------------------------------------------------------------------------------- parser


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="rllib-sparse", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"rllib-sparse {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("models", help="list the registered sparse models")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=cmd_models)

    p = sub.add_parser("inspect", help="per-layer sparsity table and parameter counts of a sparse module")
    _add_model_arguments(p)
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=cmd_inspect)

    p = sub.add_parser("train", help="one short training run in this process, with progress per iteration",
                       description="One short run on a local Ray. PPO runs with quick CartPole settings "
                                   "(lr 3e-4, batch 2000, minibatch 250, 6 epochs); other algorithms with "
                                   "RLlib's defaults.")
    _add_model_arguments(p)
    p.add_argument("--iterations", type=int, default=10)
    p.add_argument("--seed", type=int, default=0, help="seed of the run (envs, torch)")
    p.add_argument("--num-env-runners", type=int, default=0)
    p.add_argument("--num-envs", type=int, default=4, help="vectorised envs per env runner")
    p.add_argument("--num-cpus", type=int, default=None, help="CPUs for the local Ray (default: all)")
    p.add_argument("--checkpoint", help="save the trained algorithm to this folder at the end")
    p.set_defaults(func=cmd_train)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except BadInput as error:
        print(f"rllib-sparse: error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
