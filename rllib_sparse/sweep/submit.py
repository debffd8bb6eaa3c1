"""Submit a sweep to a Ray cluster as a Ray Job (Jobs SDK).

The sweep file travels inside the job's runtime environment (an environment variable), not as a
``working_dir``: on a cluster whose nodes share one host, Ray's runtime-env cleanup on one node can
delete the unpacked working dir under the other node's running driver (see the Ray 2.60 notes).
"""

from __future__ import annotations

import asyncio
import shlex
import socket
import time
from pathlib import Path
from urllib.parse import urlparse

SWEEP_ENV = "RLLIB_SPARSE_SWEEP_YAML"


def _shell_path(path: str) -> str:
    """Quote a path for the job's shell, keeping a leading ``~/`` as the head node's home."""
    return '"$HOME"/' + shlex.quote(path[2:]) if path.startswith("~/") else shlex.quote(path)


def entrypoint(file_name: str, job_dir: str, sweep_args: list[str]) -> str:
    """Shell command the job runs on the head node: write the file into ``job_dir``, run the sweep."""
    folder = _shell_path(job_dir)
    return (f"mkdir -p {folder} && cd {folder} && printf '%s' \"${SWEEP_ENV}\" > {shlex.quote(file_name)} && "
            f"rllib-sparse sweep {shlex.quote(file_name)} --address auto {' '.join(map(shlex.quote, sweep_args))}")


def check_jobs_address(address: str, timeout: float = 5.0) -> None:
    """A fast one-line refusal of an address that is malformed or where nothing answers HTTP: the Jobs
    client would otherwise retry for most of a minute and print Ray's own log lines."""
    parsed = urlparse(address if "://" in address else f"http://{address}")
    try:
        host, port = parsed.hostname, parsed.port or (443 if parsed.scheme == "https" else 80)
    except ValueError:
        host = port = None
    if parsed.scheme not in ("http", "https") or host is None:
        raise ValueError(f"--address={address!r} is invalid; allowed: http://HEAD:8265 (the dashboard address)")
    try:
        with socket.create_connection((host, port), timeout=timeout):
            pass
    except OSError as error:
        raise ValueError(f"--address={address!r} is unreachable (nothing answers on {host}:{port}: "
                         f"{error.strerror or error}); allowed: http://HEAD:8265 of a running Ray head with "
                         "its dashboard") from None


def submit(address: str, file: Path, job_dir: str, sweep_args: list[str], env_vars: dict[str, str]) -> tuple:
    """Submit; returns (client, job id). Raises ValueError (one line) if the cluster cannot be reached."""
    from ray.job_submission import JobSubmissionClient

    check_jobs_address(address)
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
