"""One self-contained HTML page: every figure inlined as a PNG data URI, the table of runs, no network."""

from __future__ import annotations

import base64
import html
import math
import time
from pathlib import Path

from rllib_sparse.report.study import Study

_STYLE = """
body { font-family: system-ui, sans-serif; margin: 24px; color: #222; }
h1 { margin-bottom: 4px; } .meta { color: #555; margin-bottom: 16px; }
figure { margin: 16px 0 32px; } figure img { max-width: 100%; border: 1px solid #ddd; }
figcaption { color: #444; font-size: 14px; margin-top: 4px; }
table { border-collapse: collapse; font-size: 13px; } th, td { border: 1px solid #ccc; padding: 3px 8px; }
th { background: #f3f3f3; } td.num { text-align: right; font-variant-numeric: tabular-nums; }
tr.RUNNING td { background: #fff7d6; } tr.FAILED td, tr.KILLED td { background: #fde2e2; }
"""

# Marks the page once every image has decoded, so a headless browser (and the tests) can check it.
_CHECK_IMAGES = """
window.addEventListener('load', function () {
  var images = Array.prototype.slice.call(document.images);
  var ok = images.filter(function (img) { return img.complete && img.naturalWidth > 0; }).length;
  document.body.setAttribute('data-images', ok + '/' + images.length);
});
"""


def _number(value, digits: int = 2) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "–"
    if isinstance(value, int) or float(value).is_integer() and abs(value) >= 1000:
        return f"{int(value):,}"
    return f"{value:.{digits}f}"


def runs_table(study: Study) -> str:
    head = ("trial", "status", "env", "width", "depth", "sparsity", "seed", "total params", "non-zero params",
            "env steps", "return")
    rows = []
    for t in study.trials:
        cells = [html.escape(t.name), t.status, html.escape(t.env)]
        cells = [f"<td>{c}</td>" for c in cells]
        cells += [f'<td class="num">{_number(v)}</td>' for v in
                  (t.width, t.depth, t.sparsity, t.seed, t.dense_params, t.nonzero_params, t.env_steps,
                   t.final_return)]
        rows.append(f'<tr class="{t.status}">{"".join(cells)}</tr>')
    header = "".join(f"<th>{h}</th>" for h in head)
    return f"<table><thead><tr>{header}</tr></thead><tbody>{''.join(rows)}</tbody></table>"


def write_page(study: Study, figures: list[tuple[Path, str]], path: Path) -> Path:
    """``figures``: (PNG file, caption) in page order."""
    counts = ", ".join(f"{n} {s.lower()}" for s, n in sorted(study.counts().items()))
    parts = [f"<h1>{html.escape(study.experiment)}</h1>",
             f'<div class="meta">{len(study.trials)} trials ({counts}) · tracking {html.escape(study.uri)} · '
             f'written {time.strftime("%Y-%m-%d %H:%M:%S")} · returns: last logged value; center = mean '
             f"(IQM from 5 seeds), band = 95% bootstrap CI over seeds; unfinished trials only in the table</div>"]
    for png, caption in figures:
        data = base64.b64encode(png.read_bytes()).decode("ascii")
        parts.append(f'<figure><img alt="{html.escape(caption)}" src="data:image/png;base64,{data}">'
                     f"<figcaption>{html.escape(caption)}</figcaption></figure>")
    parts.append("<h2>Runs</h2>" + runs_table(study))
    page = (f"<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>{html.escape(study.experiment)}: rllib-sparse report</title><style>{_STYLE}</style>"
            f"<script>{_CHECK_IMAGES}</script></head><body>{''.join(parts)}</body></html>")
    path.write_text(page, encoding="utf-8")
    return path
