"""The HTML report in a real browser (headless Chromium): it renders, every embedded image loads, a click on a
column header sorts the trials, and the scores figure has one panel per output kind."""

import re

import numpy as np
import pandas as pd
from conftest import headless_browser

from neurodecode.evaluation.metrics import Scores, score_outputs
from neurodecode.evaluation.report import write_report


def _report(tmp_path):
    rng = np.random.default_rng(0)
    images = rng.uniform(size=(2, 6, 16, 16))
    trials = [{"trial": str(i), "subject": "s1", "stimulus": f"x{i}", "stimulus image": images[0, i],
               "generated": images[1, i], "retrieved (top 5)": [images[0, j] for j in range(3)],
               "score: two_way": float(v)} for i, v in enumerate([0.4, 0.9, 0.1, 0.7, 0.55, 0.2])]
    scores = score_outputs("images", images[1], images[0], pipeline="generated") + \
        score_outputs("retrieval", images[1].reshape(6, -1), images[0].reshape(6, -1), k=1, pool_size=None,
                      pipeline="pipeline")
    scores.plot(tmp_path / "scores.png")
    comparison = pd.DataFrame([{"kind": "retrieval", "metric": "two_way", "pipeline": "pipeline", "value": 0.8,
                                "baseline_name": "ridge", "baseline": 0.7, "difference": 0.1, "ci_low": 0.02,
                                "ci_high": 0.18, "p_value": 0.01, "n_items": 6}])
    return write_report(tmp_path / "report.html", title="T", trials=trials,
                        columns=["stimulus image", "generated", "retrieved (top 5)", "score: two_way"],
                        scores=scores.table, plot=tmp_path / "scores.png", comparison=comparison), trials


def test_report_renders_in_chromium_with_every_image_loaded(tmp_path):
    page, trials = _report(tmp_path)
    n_images = page.read_text().count("<img ")
    assert n_images == 6 * 5 + 1                        # 5 per trial and the scores figure
    dom = headless_browser(tmp_path, "--dump-dom", page.as_uri())
    body = re.search(r"<body([^>]*)>", dom).group(1)
    assert f'data-images-loaded="{n_images}"' in body and 'data-images-broken="0"' in body
    shot = tmp_path / "shot.png"
    headless_browser(tmp_path, "--hide-scrollbars", "--window-size=1200,900", f"--screenshot={shot}", page.as_uri())
    from PIL import Image

    with Image.open(shot) as im:
        assert im.size == (1200, 900) and len(np.unique(np.asarray(im.convert("L")))) > 20    # not a blank page


def test_a_click_on_a_column_header_sorts_the_trials(tmp_path):
    page, trials = _report(tmp_path)
    html = page.read_text()
    # click the per-trial score header twice (ascending, then descending) and record the trial order each time
    probe = ("<script>window.addEventListener('load',function(){var t=document.querySelectorAll('table.sortable');"
             "t=t[t.length-1];var th=Array.from(t.tHead.rows[0].cells).find(function(c){return c.textContent.trim()"
             ".indexOf('score: two_way')===0});function order(){return Array.from(t.tBodies[0].rows).map(function(r)"
             "{return r.cells[0].dataset.sort}).join(',')}th.click();document.body.dataset.asc=order();th.click();"
             "document.body.dataset.desc=order()})</script></body>")
    clicked = tmp_path / "clicked.html"
    clicked.write_text(html.replace("</body>", probe))
    dom = headless_browser(tmp_path, "--dump-dom", clicked.as_uri())
    by_score = [t["trial"] for t in sorted(trials, key=lambda t: t["score: two_way"])]
    assert f'data-asc="{",".join(by_score)}"' in dom and f'data-desc="{",".join(by_score[::-1])}"' in dom


def test_the_scores_figure_has_a_panel_per_kind_with_intervals_and_chance(tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    from unittest import mock

    table = pd.DataFrame([
        {"pipeline": "mlp", "kind": "retrieval", "metric": "two_way", "value": 0.8, "chance": 0.5, "n_items": 10,
         "ci_low": 0.7, "ci_high": 0.9},
        {"pipeline": "ridge", "kind": "retrieval", "metric": "two_way", "value": 0.7, "chance": 0.5, "n_items": 10,
         "ci_low": 0.6, "ci_high": 0.8},
        {"pipeline": "generated", "kind": "images", "metric": "pixcorr", "value": 0.6, "chance": 0.0, "n_items": 10,
         "ci_low": np.nan, "ci_high": np.nan}])
    with mock.patch("matplotlib.pyplot.close") as close:           # keep the figure to look at it
        Scores(table).plot(tmp_path / "s.png")
    fig = close.call_args[0][0]
    panels = [ax for ax in fig.axes if ax.axison]
    assert [ax.get_title() for ax in panels] == ["retrieval", "images"]
    retrieval = panels[0]
    heights = sorted(round(p.get_height(), 3) for p in retrieval.patches)
    assert heights == [0.7, 0.8]
    segments = [seg for c in retrieval.collections for seg in c.get_segments()]
    assert any(np.allclose(seg[:, 1], 0.5) for seg in segments)                    # the chance line
    assert any(np.allclose(seg[:, 1], [0.7, 0.9]) for seg in segments)             # mlp's interval
    from PIL import Image

    with Image.open(tmp_path / "s.png") as im:
        assert im.size[0] >= 900 and im.size[1] >= 350            # readable, not a 480×30 strip


def test_every_score_is_read_against_its_chance_and_a_result_below_it_is_flagged(tmp_path):
    from neurodecode.evaluation.report import chance_flags

    table = pd.DataFrame([
        {"pipeline": "p", "kind": "retrieval", "metric": "two_way", "value": 0.8, "chance": 0.5, "ci_low": 0.7,
         "ci_high": 0.9, "n_items": 10},
        {"pipeline": "p", "kind": "retrieval", "metric": "top1", "value": 0.1, "chance": 0.1, "ci_low": 0.0,
         "ci_high": 0.3, "n_items": 10},
        {"pipeline": "p", "kind": "images", "metric": "pixcorr", "value": 0.40, "chance": 0.54, "ci_low": 0.35,
         "ci_high": 0.45, "n_items": 10},
        {"pipeline": "p", "kind": "images", "metric": "ssim", "value": 0.3, "chance": 0.2, "ci_low": np.nan,
         "ci_high": np.nan, "n_items": 10},
        {"pipeline": "p", "kind": "captions", "metric": "bleu4", "value": 0.3, "chance": np.nan, "ci_low": np.nan,
         "ci_high": np.nan, "n_items": 10}])
    assert chance_flags(table).tolist() == ["above chance", "at chance", "below chance",
                                            "above chance (no interval)", ""]
    page = write_report(tmp_path / "r.html", title="T", trials=[], columns=[], scores=table).read_text()
    assert "Below chance (95% interval under the chance level): images pixcorr (p)" in page
    assert "<th>vs chance</th>" in page
