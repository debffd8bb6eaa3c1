"""``rllib-sparse report``: a study's figures and HTML page from MLflow, also logged on its parent run."""

from __future__ import annotations

import json
import re
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from rllib_sparse.report import figures
from rllib_sparse.report.page import write_page
from rllib_sparse.report.study import ReportError, Study, load_study

#: Artifact folder on the sweep's parent run.
REPORT_ARTIFACT_DIR = "report"
#: The file that marks a folder as one this command wrote, listing the files it wrote there. Only such
#: a folder (or a new or empty one) is ever written to, and only the listed files are ever replaced.
MARKER = ".rllib-sparse-report.json"


@dataclass(frozen=True)
class Report:
    folder: Path
    page: Path
    images: list[Path]
    parent_run_id: str | None


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "-", text).strip("-").lower()


def check_output_folder(out: Path) -> None:
    """Refuse (``ReportError``, one line) an output folder whose content this command did not write.

    Allowed: a path that does not exist yet, an empty folder, or a folder holding an earlier report's
    marker and nothing but the files that marker lists.
    """
    if out.exists() and not out.is_dir():
        raise ReportError(f"--out={str(out)!r} is an existing file; allowed: a new folder, an empty one, "
                          "or the folder of an earlier report")
    if not out.exists():
        for parent in out.parents:
            if parent.exists():
                if not parent.is_dir():
                    raise ReportError(f"--out={str(out)!r}: {parent} is a file; allowed: a folder path")
                break
        return
    present = {p.name for p in out.iterdir()}
    if not present:
        return
    ours = _marked_files(out)
    if ours is None:
        raise ReportError(f"--out={str(out)!r} is a folder with other content ({len(present)} entries, e.g. "
                          f"{sorted(present)[0]!r}); allowed: a new folder, an empty one, or the folder of an "
                          "earlier report (it holds .rllib-sparse-report.json)")
    foreign = sorted(present - ours - {MARKER})
    if foreign:
        raise ReportError(f"--out={str(out)!r} holds files an earlier report did not write "
                          f"({', '.join(foreign[:3])}{' ...' if len(foreign) > 3 else ''}); allowed: move them "
                          "away, or choose another --out")


def _marked_files(folder: Path) -> set[str] | None:
    try:
        data = json.loads((folder / MARKER).read_text())
        return {str(name) for name in data["files"]}
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _install(staging: Path, out: Path) -> None:
    """Put the staged report at ``out``: whole-folder moves, so a reader never sees half of one."""
    if not out.exists():
        staging.rename(out)
        return
    if not any(out.iterdir()):  # an empty folder the user made: keep it, fill it
        for item in staging.iterdir():
            item.rename(out / item.name)
        staging.rmdir()
        return
    # An earlier report of ours (check_output_folder made sure): swap, then drop the old one.
    old = out.with_name(f".{out.name}-old-{staging.name}")
    out.rename(old)
    staging.rename(out)
    for name in (_marked_files(old) or set()) | {MARKER}:
        (old / name).unlink(missing_ok=True)
    old.rmdir()  # empty now; if a file appeared meanwhile this fails and nothing of it is lost


def build_report(experiment: str, uri: str, out: Path, log: Callable[[str], None] = print) -> Report:
    """Write the PNGs and ``report.html`` into ``out``, then log them on the parent run.

    ``out`` must be new, empty, or an earlier report's folder (``check_output_folder``); nothing else
    is ever overwritten or removed. Raises ``ReportError`` (one line) when the folder is refused, the
    experiment does not exist or has no finished runs; nothing is written then.
    """
    out = out.resolve()
    check_output_folder(out)
    study = load_study(experiment, uri)
    counts = ", ".join(f"{n} {s.lower()}" for s, n in sorted(study.counts().items()))
    log(f"{experiment}: {len(study.trials)} trials ({counts}) in {uri}")
    # Built in a sibling temp folder and moved in place at the end: never a half-written report.
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}-", dir=out.parent))
    try:
        images = _figures(study, staging, log)
        page = write_page(study, images, staging / "report.html")
        log(f"wrote {page.name} with {len(images)} figures")
        written = sorted(p.name for p in staging.iterdir())
        (staging / MARKER).write_text(json.dumps({"experiment": experiment, "files": written}, indent=1))
        staging.chmod(0o755)  # mkdtemp makes it private; a report is for sharing
        check_output_folder(out)  # again: something may have appeared there while the figures were drawn
        _install(staging, out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)  # our own temp folder, nothing else
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
        for network in figures.diagnosed_networks(study):
            save(figures.diagnostics_figure(study, env, network), f"diagnostics-{_slug(env)}-{network}",
                 f"{env}: {network} srank, dormant ratio, gradient and parameter norms over training.")
        save(figures.interference_figure(study, env), f"interference-{_slug(env)}",
             f"{env}: cosine similarity of per-sample gradients (last saved matrix, first seed).")
    return made
