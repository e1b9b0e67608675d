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


def write_report(path: str | os.PathLike, *, title: str, trials: Sequence[Mapping[str, Any]],
                 columns: Sequence[str], scores: pd.DataFrame | None = None, plot: str | os.PathLike | None = None,
                 notices: Sequence[str] = (), details: Mapping[str, Any] | None = None) -> Path:
    """Write the report.

    Parameters
    ----------
    trials : list of dict
        One per trial: ``trial``, ``subject``, ``stimulus`` (id), and for each name in ``columns`` an image
        (H, W[, C]) array, a list of images (shown side by side, e.g. mesh views or retrieved stimuli), a string
        (a caption) or None.
    columns : the trial columns to show, in order (e.g. ``["stimulus image", "low-level", "generated"]``).
    scores : tidy scores table (kind, metric, value, chance, ...).
    plot : a PNG file to embed (the scores plot).
    notices : highlighted sentences at the top (e.g. "This subject is simulated").
    details : key → value lines (checkpoint, recordings, timings).
    """
    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
             f"<style>{_CSS}</style></head><body><h1>{html.escape(title)}</h1>"]
    parts += [f"<div class='notice'>{html.escape(n)}</div>" for n in notices]
    if details:
        parts.append("<table>" + "".join(f"<tr><th>{html.escape(str(k))}</th><td style='text-align:left'>"
                                         f"{html.escape(str(v))}</td></tr>" for k, v in details.items()) + "</table>")
    if scores is not None and len(scores):
        parts.append("<h2>Evaluation</h2>")
        shown = scores.copy()
        for col in ("value", "chance"):
            if col in shown:
                shown[col] = shown[col].map(lambda v: "" if pd.isna(v) else f"{v:.3f}")
        parts.append(shown.to_html(index=False, escape=True, border=0))
        if plot is not None and Path(plot).is_file():
            uri = "data:image/png;base64," + base64.b64encode(Path(plot).read_bytes()).decode("ascii")
            parts.append(f"<p><img src='{uri}' style='max-width:48em'></p>")
    parts.append(f"<h2>Trials ({len(trials)})</h2><table><tr><th>trial</th>"
                 + "".join(f"<th>{html.escape(c)}</th>" for c in columns) + "</tr>")
    for t in trials:
        cells = [f"<td><b>{html.escape(str(t.get('trial')))}</b><div class='meta'>"
                 f"{html.escape(str(t.get('subject') or ''))}<br>{html.escape(str(t.get('stimulus') or ''))}"
                 "</div></td>"]
        for c in columns:
            v = t.get(c)
            if isinstance(v, str):
                cells.append(f"<td class='cap'>{html.escape(v)}</td>")
            elif isinstance(v, (list, tuple)):
                cells.append("<td>" + "".join(_img(x, "small" if c.startswith("retrieved") else "mesh")
                                              for x in v) + "</td>")
            else:
                cells.append(f"<td>{_img(v)}</td>")
        parts.append(f"<tr id='trial-{html.escape(str(t.get('trial')))}'>" + "".join(cells) + "</tr>")
    parts.append("</table></body></html>")
    path = Path(path)
    path.write_text("\n".join(parts), encoding="utf-8")
    return path
