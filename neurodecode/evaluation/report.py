"""A self-contained HTML report of decoded trials: one row per trial, stimulus beside its reconstructions, captions,
mesh renders, retrieved stimuli, and the evaluation table and plot. Images are embedded as base64 PNGs, so the page
is one file that can be mailed or archived.
"""

from __future__ import annotations

import base64
import html
import io
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["png_data_uri", "write_report"]

_CSS = """
body{font-family:system-ui,sans-serif;margin:1.5em;color:#222}
h1{font-size:1.4em} h2{font-size:1.15em;margin-top:1.6em}
.notice{background:#fff4d6;border:1px solid #e0b84c;padding:.6em 1em;border-radius:6px;margin:.8em 0}
table{border-collapse:collapse;font-size:.9em} td,th{border:1px solid #ccc;padding:4px 8px;text-align:center;
vertical-align:top} th{background:#f3f3f3}
img.px{image-rendering:pixelated;width:96px;height:96px} img.mesh{width:96px;height:96px}
img.small{image-rendering:pixelated;width:48px;height:48px}
.cap{max-width:14em;font-size:.85em} .meta{color:#666;font-size:.8em}
th.sortable{cursor:pointer;user-select:none} th.sortable:after{content:" ⇅";color:#999}
th[data-order=asc]:after{content:" ▲";color:#333} th[data-order=desc]:after{content:" ▼";color:#333}
td.num{font-variant-numeric:tabular-nums} .worse{color:#b00020} .better{color:#0a7a2f}
"""

#: sorts a table by the clicked column (numbers by value, text alphabetically) and counts the images that loaded
#: (body data-images-loaded / data-images-broken, read by the browser test)
_SCRIPT = """
document.querySelectorAll('table.sortable').forEach(function(t){
  t.querySelectorAll('th').forEach(function(th,i){th.classList.add('sortable');th.addEventListener('click',function(){
    var asc=th.dataset.order!=='asc',body=t.tBodies[0],rows=Array.from(body.rows);
    t.querySelectorAll('th').forEach(function(o){delete o.dataset.order});th.dataset.order=asc?'asc':'desc';
    function key(r){var c=r.cells[i];var v=c?(c.dataset.sort!==undefined?c.dataset.sort:c.textContent):'';
      var n=parseFloat(v);return isNaN(n)?v:n}
    rows.sort(function(a,b){var x=key(a),y=key(b);var c=(typeof x==='number'&&typeof y==='number')?x-y:
      String(x).localeCompare(String(y),undefined,{numeric:true});return asc?c:-c});
    rows.forEach(function(r){body.appendChild(r)})})})});
window.addEventListener('load',function(){var imgs=Array.from(document.images);
  document.body.dataset.imagesLoaded=imgs.filter(function(i){return i.complete&&i.naturalWidth>0}).length;
  document.body.dataset.imagesBroken=imgs.filter(function(i){return !(i.complete&&i.naturalWidth>0)}).length});
"""


def png_data_uri(image: np.ndarray) -> str:
    """An image (H, W), (H, W, 1) or (H, W, 3) in [0, 1] as a ``data:image/png;base64,...`` URI."""
    from PIL import Image

    a = np.clip(np.asarray(image, dtype=np.float32), 0, 1)
    if a.ndim == 3 and a.shape[-1] == 1:
        a = a[..., 0]
    buf = io.BytesIO()
    Image.fromarray((a * 255).round().astype(np.uint8)).save(buf, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def _img(image: np.ndarray | None, cls: str = "px", title: str = "") -> str:
    if image is None:
        return "<span class='meta'>—</span>"
    return f"<img class='{cls}' src='{png_data_uri(image)}' title='{html.escape(title)}'>"


def _number(v: Any) -> bool:
    return isinstance(v, (float, int, np.floating, np.integer)) and not isinstance(v, bool)


def _num_cell(v: Any) -> str:
    """A number's table cell: 3 decimals shown, the value kept for sorting."""
    return f"<td class='num' data-sort='{float(v):.6g}'>{float(v):.3f}</td>"


def _table(frame: pd.DataFrame) -> str:
    """A sortable HTML table of a data frame (numbers to 3 decimals, sorted by value)."""
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in frame.columns)
    rows = []
    for rec in frame.itertuples(index=False):
        cells = []
        for name, v in zip(frame.columns, rec):
            if _number(v) and str(name).startswith("n_") and not pd.isna(v):
                cells.append(f"<td class='num' data-sort='{int(v)}'>{int(v)}</td>")
            elif _number(v):
                cells.append("<td class='num'></td>" if pd.isna(v) else _num_cell(v))
            else:
                cells.append(f"<td>{html.escape('' if v is None else str(v))}</td>")
        rows.append("<tr>" + "".join(cells) + "</tr>")
    return f"<table class='sortable'><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"


def chance_flags(scores: pd.DataFrame) -> pd.Series:
    """Each score against its chance level: ``above chance`` / ``below chance`` when its 95 % interval excludes
    chance, ``at chance`` when it includes it, ``above``/``below chance (no interval)`` when the row has none, and
    ``""`` when the metric has no chance level. Scores are read as higher-is-better where a chance is given."""
    out = []
    for r in scores.itertuples():
        chance, value = getattr(r, "chance", np.nan), getattr(r, "value", np.nan)
        low, high = getattr(r, "ci_low", np.nan), getattr(r, "ci_high", np.nan)
        if not _number(chance) or pd.isna(chance) or pd.isna(value):
            out.append("")
        elif _number(low) and _number(high) and not (pd.isna(low) or pd.isna(high)):
            out.append("above chance" if low > chance else "below chance" if high < chance else "at chance")
        else:
            out.append(("above" if value > chance else "below") + " chance (no interval)")
    return pd.Series(out, index=scores.index, dtype=object)


def _comparison(table: pd.DataFrame) -> str:
    """The pipeline beside its plain baseline: one sentence per metric, coloured by the sign of the difference."""
    lines = []
    for r in table.itertuples():
        cls = "better" if r.ci_low > 0 else "worse" if r.ci_high < 0 else ""
        lines.append(f"<li class='{cls}'>{html.escape(str(r.metric))}: {r.value:.3f} vs {r.baseline:.3f} "
                     f"({html.escape(str(r.baseline_name))}) — difference {r.difference:+.3f}, 95% CI "
                     f"[{r.ci_low:+.3f}, {r.ci_high:+.3f}], permutation p = {r.p_value:.3g}, n = {r.n_items}</li>")
    return "<h2>Beside the plain baseline</h2><ul>" + "".join(lines) + "</ul>" + _table(table)


def write_report(path: str | os.PathLike, *, title: str, trials: Sequence[Mapping[str, Any]],
                 columns: Sequence[str], scores: pd.DataFrame | None = None,
                 plot: str | os.PathLike | Sequence[str | os.PathLike] | None = None,
                 notices: Sequence[str] = (), details: Mapping[str, Any] | None = None,
                 comparison: pd.DataFrame | None = None) -> Path:
    """Write the report.

    Parameters
    ----------
    trials : list of dict
        One per trial: ``trial``, ``subject``, ``stimulus`` (id), and for each name in ``columns`` an image
        (H, W[, C]) array, a list of images (shown side by side, e.g. mesh views or retrieved stimuli), a string
        (a caption) or None.
    columns : the trial columns to show, in order (e.g. ``["stimulus image", "low-level", "generated"]``).
    scores : tidy scores table (kind, metric, value, chance, ...).
    plot : a PNG file to embed (the scores plot), or several (the scores, a confusion matrix, a ROC curve).
    notices : highlighted sentences at the top (e.g. "This subject is simulated").
    details : key → value lines (checkpoint, recordings, timings).
    comparison : the pipeline beside its plain baseline
        (:func:`~neurodecode.core.scores.compare_scores`), shown under the scores.

    Trial values that are numbers (per-trial scores) are shown to 3 decimals; every table sorts by a click on
    its column header (a few lines of script; the page stays one self-contained file).
    """
    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
             f"<style>{_CSS}</style></head><body><h1>{html.escape(title)}</h1>"]
    parts += [f"<div class='notice'>{html.escape(n)}</div>" for n in notices]
    if details:
        parts.append("<table>" + "".join(f"<tr><th>{html.escape(str(k))}</th><td style='text-align:left'>"
                                         f"{html.escape(str(v))}</td></tr>" for k, v in details.items()) + "</table>")
    if scores is not None and len(scores):
        parts.append("<h2>Evaluation</h2>")
        figures = [] if plot is None else [plot] if isinstance(plot, (str, os.PathLike)) else list(plot)
        for k, figure in enumerate(f for f in figures if Path(f).is_file()):
            uri = "data:image/png;base64," + base64.b64encode(Path(figure).read_bytes()).decode("ascii")
            width = "64em" if k == 0 else "24em"
            parts.append(f"<p style='display:inline-block'><img src='{uri}' alt='{html.escape(Path(figure).stem)}' "
                         f"style='max-width:100%;width:{width}'></p>")
        flags = chance_flags(scores)
        below = [f"{r.kind} {r.metric}" + (f" ({r.pipeline})" if "pipeline" in scores else "")
                 for r, f in zip(scores.itertuples(), flags) if f == "below chance"]
        if below:
            parts.append("<div class='notice'>Below chance (95% interval under the chance level): "
                         + html.escape(", ".join(below)) + ". Check the labels and the stimulus ids.</div>")
        parts.append(_table(scores.drop(columns=[c for c in ("seed",) if c in scores]).assign(**{"vs chance": flags})))
    if comparison is not None and len(comparison):
        parts.append(_comparison(comparison))
    parts.append(f"<h2>Trials ({len(trials)})</h2><table class='sortable'><thead><tr><th>trial</th>"
                 + "".join(f"<th>{html.escape(c)}</th>" for c in columns) + "</tr></thead><tbody>")
    for t in trials:
        cells = [f"<td data-sort='{html.escape(str(t.get('trial')))}'><b>{html.escape(str(t.get('trial')))}</b>"
                 "<div class='meta'>"
                 f"{html.escape(str(t.get('subject') or ''))}<br>{html.escape(str(t.get('stimulus') or ''))}"
                 "</div></td>"]
        for c in columns:
            v = t.get(c)
            if isinstance(v, str):
                cells.append(f"<td class='cap'>{html.escape(v)}</td>")
            elif _number(v):
                cells.append(_num_cell(v))
            elif isinstance(v, (list, tuple)):
                kind = "small" if c.startswith("retrieved") else "mesh"
                cells.append("<td style='white-space:nowrap'>" + "".join(_img(x, kind) for x in v) + "</td>")
            else:
                cells.append(f"<td>{_img(v)}</td>")
        parts.append(f"<tr id='trial-{html.escape(str(t.get('trial')))}'>" + "".join(cells) + "</tr>")
    parts.append(f"</tbody></table><script>{_SCRIPT}</script></body></html>")
    path = Path(path)
    path.write_text("\n".join(parts), encoding="utf-8")
    return path
