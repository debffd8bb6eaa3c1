"""Submit a sweep to a Ray cluster as a Ray Job (Jobs SDK).

The sweep file travels inside the job's runtime environment (an environment variable), not as a
``working_dir``: on a cluster whose nodes share one host, Ray's runtime-env cleanup on one node can
delete the unpacked working dir under the other node's running driver (see the Ray 2.60 notes).
"""

from __future__ import annotations

import asyncio
import shlex
import time
from pathlib import Path

SWEEP_ENV = "RLLIB_SPARSE_SWEEP_YAML"


def _shell_path(path: str) -> str:
    """Quote a path for the job's shell, keeping a leading ``~/`` as the head node's home."""
    return '"$HOME"/' + shlex.quote(path[2:]) if path.startswith("~/") else shlex.quote(path)


def entrypoint(file_name: str, job_dir: str, sweep_args: list[str]) -> str:
    """Shell command the job runs on the head node: write the file into ``job_dir``, run the sweep."""
    folder = _shell_path(job_dir)
    return (f"mkdir -p {folder} && cd {folder} && printf '%s' \"${SWEEP_ENV}\" > {shlex.quote(file_name)} && "
            f"rllib-sparse sweep {shlex.quote(file_name)} --address auto {' '.join(map(shlex.quote, sweep_args))}")


def submit(address: str, file: Path, job_dir: str, sweep_args: list[str], env_vars: dict[str, str]) -> tuple:
    """Submit; returns (client, job id). Raises ValueError (one line) if the cluster cannot be reached."""
    from ray.job_submission import JobSubmissionClient

    try:
        client = JobSubmissionClient(address)
    except Exception as error:  # ConnectionError, auth errors: make it one line
        first = next((line for line in str(error).splitlines() if line.strip()), type(error).__name__)
        raise ValueError(f"--address={address!r} cannot be reached as a Ray Jobs endpoint: {first}; "
                         "allowed: http://HEAD:8265 (the dashboard address)") from None
    job_id = client.submit_job(
        entrypoint=entrypoint(file.name, job_dir, sweep_args),
        runtime_env={"env_vars": {SWEEP_ENV: file.read_text(), **env_vars}},
        metadata={"rllib_sparse.sweep": file.name},
    )
    return client, job_id


def follow(client, job_id: str, out=print) -> str:
    """Print the job's logs until it ends; returns its final status name."""

    async def tail() -> None:
        async for lines in client.tail_job_logs(job_id):
            for line in lines.splitlines():
                out(line)

    asyncio.run(tail())
    for _ in range(60):  # the status can lag the end of the log stream by a moment
        status = client.get_job_status(job_id)
        if status.is_terminal():
            return str(status.value)
        time.sleep(1)
    return str(client.get_job_status(job_id).value)
