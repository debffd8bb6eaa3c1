"""``rllib-sparse report``: a study's figures and HTML page from MLflow, also logged on its parent run."""

from __future__ import annotations

import re
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from rllib_sparse.report import figures
from rllib_sparse.report.page import write_page
from rllib_sparse.report.study import Study, load_study

#: Artifact folder on the sweep's parent run.
REPORT_ARTIFACT_DIR = "report"


@dataclass(frozen=True)
class Report:
    folder: Path
    page: Path
    images: list[Path]
    parent_run_id: str | None


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "-", text).strip("-").lower()


def build_report(experiment: str, uri: str, out: Path, log: Callable[[str], None] = print) -> Report:
    """Write the PNGs and ``report.html`` into ``out`` (replaced whole), then log them on the parent run.

    Raises ``ReportError`` (one line) when the experiment does not exist or has no finished runs;
    nothing is written then.
    """
    study = load_study(experiment, uri)
    counts = ", ".join(f"{n} {s.lower()}" for s, n in sorted(study.counts().items()))
    log(f"{experiment}: {len(study.trials)} trials ({counts}) in {uri}")
    # Built in a sibling temp folder and moved in place at the end: never a half-written report.
    out = out.resolve()
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}-", dir=out.parent))
    try:
        images = _figures(study, staging, log)
        page = write_page(study, images, staging / "report.html")
        log(f"wrote {page.name} with {len(images)} figures")
        staging.chmod(0o755)  # mkdtemp makes it private; a report is for sharing
        if out.exists():
            shutil.rmtree(out)
        staging.rename(out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    pngs = [out / png.name for png, _ in images]
    if study.parent_run_id is not None:
        study.client.log_artifacts(study.parent_run_id, str(out), REPORT_ARTIFACT_DIR)
        log(f"logged as artifacts of the sweep's parent run {study.parent_run_id} ({REPORT_ARTIFACT_DIR}/)")
    return Report(out, out / "report.html", pngs, study.parent_run_id)


def _figures(study: Study, folder: Path, log: Callable[[str], None]) -> list[tuple[Path, str]]:
    made: list[tuple[Path, str]] = []

    def save(fig, name: str, caption: str) -> None:
        if fig is None:
            return
        path = folder / f"{name}.png"
        fig.savefig(path, dpi=100, bbox_inches="tight")
        figures.plt.close(fig)
        made.append((path, caption))
        log(f"  {path.name}")

    save(figures.scaling_figure(study), "scaling",
         "Final return vs total (left) and non-zero (right) parameters; dense dashed.")
    save(figures.heatmap_figure(study), "heatmap", "Final return over width × sparsity (n = finished seeds).")
    envs = sorted({t.env for t in study.trials})
    for env in envs:
        for network in figures.diagnostic_networks(study):
            save(figures.diagnostics_figure(study, env, network), f"diagnostics-{_slug(env)}-{network}",
                 f"{env}: {network} srank, dormant ratio, gradient and parameter norms over training.")
        save(figures.interference_figure(study, env), f"interference-{_slug(env)}",
             f"{env}: cosine similarity of per-sample gradients (last saved matrix, first seed).")
    return made
