"""Sphinx configuration of neurodecode's documentation site.

Build with ``make -C docs html`` (or ``python -m sphinx -W -b html docs docs/_build/html``). Warnings are errors and
``nitpicky`` is on, so a broken cross-reference fails the build; the gallery (``examples/plot_*.py``) runs during the
build. Two pages are generated before Sphinx reads the sources: the API reference (every name in a stage package's
``__all__``) and the configuration reference (every group, option and default of ``conf/``), both by
``docs/_generate.py``.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))
os.environ.setdefault("HF_HUB_OFFLINE", "1")          # no hub: a missing weight fails at once
os.environ.setdefault("MPLBACKEND", "Agg")

import _generate  # noqa: E402

import neurodecode  # noqa: E402

_generate.write_all()

project = "neurodecode"
author = "the neurodecode developers"
copyright = "2026, the neurodecode developers"  # noqa: A001
release = neurodecode.__version__
version = release

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.intersphinx",
    "sphinx.ext.mathjax",
    "sphinx.ext.viewcode",
    "numpydoc",
    "myst_parser",
    "sphinx_gallery.gen_gallery",
]

source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
root_doc = "index"
exclude_patterns = ["_build", "auto_examples/*.ipynb", "auto_examples/*.py", "auto_examples/*.zip",
                    "auto_examples/*.md5", "auto_examples/*.json", "**.codeobj.json"]
templates_path = ["_templates"]

nitpicky = True
# names that third-party docstrings inherited by our classes mention without a target (scikit-learn's and torch's
# own docs leave these unresolved too); our own names must all resolve
nitpick_ignore_regex = [
    (r"py:.*", r"(array-like|array_like|ndarray|sparse matrix|callable|path-like|file-like|dict-like|optional|"
               r"default|of|shape|int|float|str|bool|None|list|tuple|dict|object|scalar|iterable|sequence)"),
    (r"py:.*", r"torch\..*"),
    # private base classes shown by show-inheritance are not documented, by design
    (r"py:class", r"neurodecode\.[a-z_.]*\._[A-Za-z]\w*"),
    (r"py:.*", r"np\..*|numpy\..*|pd\..*|pandas\..*|mne\..*|sklearn\..*|nibabel\..*|nilearn\..*|pyriemann\..*|"
               r"braindecode\..*|h5py\..*|omegaconf\..*|PIL\..*|trimesh\..*|matplotlib\..*|scipy\..*|hydra\..*|"
               r"diffusers\..*|transformers\..*|open_clip\..*|collections\..*|importlib\..*|typing\..*|pathlib\..*"),
]

autosummary_generate = True
autosummary_imported_members = True
autodoc_default_options = {"members": True, "inherited-members": False, "show-inheritance": True}
autodoc_typehints = "none"                 # the numpydoc sections give the types
autodoc_inherit_docstrings = False         # torch's and scikit-learn's docstrings are theirs to render
numpydoc_show_class_members = False
numpydoc_class_members_toctree = False
numpydoc_validation_checks: set[str] = set()

myst_enable_extensions = ["colon_fence", "deflist"]
myst_heading_anchors = 3
suppress_warnings = ["myst.header"]

intersphinx_mapping = {
    "python": ("https://docs.python.org/3", None),
    "numpy": ("https://numpy.org/doc/stable", None),
    "mne": ("https://mne.tools/stable", None),
    "sklearn": ("https://scikit-learn.org/stable", None),
    "nilearn": ("https://nilearn.github.io/stable", None),
    "pyriemann": ("https://pyriemann.readthedocs.io/en/latest", None),
    "braindecode": ("https://braindecode.org/stable", None),
    "torch": ("https://docs.pytorch.org/docs/stable", None),
}
intersphinx_timeout = 5
# an offline build (this project's CI has no internet) links to the other libraries' names only when their
# inventories can be reached; otherwise it says so and builds without them (nitpick_ignore_regex covers them)
if not _generate.online():
    print("docs: the other libraries' inventories cannot be reached (offline): intersphinx links are left out")
    intersphinx_mapping = {}

sphinx_gallery_conf = {
    "examples_dirs": str(ROOT / "examples"),
    "gallery_dirs": "auto_examples",
    "filename_pattern": r"/plot_",
    "download_all_examples": False,
    "within_subsection_order": "FileNameSortKey",
    "abort_on_example_error": True,
    "remove_config_comments": True,
    "matplotlib_animations": False,
    "plot_gallery": os.environ.get("NEURODECODE_DOCS_GALLERY", "True"),
}

def _skip_foreign_members(app, what, name, obj, skip, options):
    """Document neurodecode's own members only: not scikit-learn's or torch's inherited ``set_fit_request``,
    ``score``, ``forward`` hooks and the like (their docstrings point into those libraries' sites)."""
    home = getattr(obj, "__module__", None) or getattr(getattr(obj, "__func__", None), "__module__", None)
    if what in ("class", "exception") and home is not None and not str(home).startswith("neurodecode"):
        return True
    return skip


_CANONICAL = _generate.canonical_names()


def _resolve_alias(app, env, node, contnode):
    """A reference by a short or exported name (``EpochSet``, ``neurodecode.EpochSet``, ``open_store``,
    ``InputContract.from_epochs``) goes to where the object is documented (its defining module), if that is unique."""
    if node.get("refdomain") != "py":
        return None
    target = node["reftarget"].lstrip("~.")
    head, _, rest = target.partition(".")
    for key, tail in ((target, ""), (target.rsplit(".", 1)[-1], ""), (head, rest)):
        full = _CANONICAL.get(key)
        if full is None:
            continue
        new = f"{full}.{tail}" if tail else full
        if tail and key == head and "." in target and not key[:1].isupper():
            continue
        domain = env.get_domain("py")
        return domain.resolve_any_xref(env, node["refdoc"], app.builder, new, node, contnode)[0][1] \
            if domain.resolve_any_xref(env, node["refdoc"], app.builder, new, node, contnode) else None
    return None


def setup(app):
    app.connect("autodoc-skip-member", _skip_foreign_members)
    app.connect("missing-reference", _resolve_alias)


html_theme = "pydata_sphinx_theme"
html_title = f"neurodecode {release}"
html_theme_options = {
    "github_url": "https://github.com/neurodecode/neurodecode",
    "navigation_depth": 2,
    "show_toc_level": 2,
    "navbar_align": "left",
}
html_static_path: list[str] = []
html_last_updated_fmt = ""
