"""The documentation site: every public name is in the API reference, and the built site (``make -C docs html``,
``.ci/run``'s last step) renders in headless Chromium with the gallery's figures."""

import os
import re
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import headless_browser

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
STAGES = ["core", "loaders", "encoders", "alignment", "heads", "evaluation", "pipeline", "cli"]


def _generate():
    sys.path.insert(0, str(DOCS))
    try:
        import _generate
    finally:
        sys.path.remove(str(DOCS))
    return _generate


def test_every_public_name_is_in_the_api_reference():
    import importlib
    import inspect

    gen = _generate()
    documented = {f"{m}.{n}" for _, _, _, mods in gen.api_entries() for m, names in mods for n in names}
    aliases = gen.canonical_names()
    missing = []
    for package_name in ["neurodecode"] + [f"neurodecode.{s}" for s in STAGES]:
        package = importlib.import_module(package_name)
        for name in package.__all__:
            obj = getattr(package, name)
            if name.startswith("__") or not (inspect.isclass(obj) or inspect.isfunction(obj)):
                continue
            if aliases.get(f"{package_name}.{name}") not in documented:
                missing.append(f"{package_name}.{name}")
    assert not missing, f"public names without an API page: {missing}"


def test_the_gallery_has_its_examples_each_with_a_title_and_the_data_it_reads():
    examples = sorted((ROOT / "examples").glob("plot_*.py"))
    assert len(examples) >= 12, [e.name for e in examples]
    for e in examples:
        text = e.read_text()
        assert re.match(r'"""\n[^\n]+\n=+\n', text), f"{e.name}: a sphinx-gallery title block first"


def _site() -> Path:
    site = Path(os.environ.get("NEURODECODE_DOCS_HTML", DOCS / "_build" / "html")).resolve()
    if not (site / "index.html").is_file():
        pytest.skip(f"the documentation is not built at {site} (make -C docs html; .ci/run builds it and runs "
                    "this test after the suite)")
    return site


@pytest.mark.slow
def test_the_built_site_renders_with_the_gallerys_figures(tmp_path):
    from PIL import Image

    site = _site()
    dom = headless_browser(tmp_path, "--dump-dom", (site / "index.html").as_uri())
    assert "<title>" in dom and "neurodecode" in dom
    for page in ("getting_started.html", "api.html", "configuration.html", "auto_examples/index.html",
                 "guide/classifying_eeg.html", "benchmarks.html"):
        assert f'href="{page}"' in dom, f"the index does not link {page}"
    example = site / "auto_examples" / "plot_motor_imagery.html"
    page = headless_browser(tmp_path, "--dump-dom", example.as_uri())
    figures = re.findall(r'<img[^>]+src="(\.\./_images/sphx_glr_plot_motor_imagery_\d+\.png)"', page)
    assert len(figures) >= 3, "the motor-imagery example shows its scores, confusion matrix and ROC curve"
    for src in figures:
        with Image.open(example.parent / src) as im:
            assert im.size[0] > 100 and len(np.unique(np.asarray(im.convert("L")))) > 10
    shot = Path(os.environ.get("NEURODECODE_DOCS_SCREENSHOT", tmp_path / "index.png"))
    headless_browser(tmp_path, "--hide-scrollbars", "--window-size=1280,900", f"--screenshot={shot}",
             (site / "index.html").as_uri())
    with Image.open(shot) as im:
        assert im.size == (1280, 900) and len(np.unique(np.asarray(im.convert("L")))) > 20    # not a blank page
