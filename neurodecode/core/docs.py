"""Parameter descriptions that recur across neurodecode's public API, written once (MNE's ``docdict`` idea).

A docstring writes ``%(seed)s`` where the shared text goes, at the parameter's indentation, and the function or
class is decorated with :func:`fill_doc`; the entry is the whole numpydoc parameter (name, type and description).
"""

from __future__ import annotations

import textwrap
from typing import Any, TypeVar

__all__ = ["DOCDICT", "fill_doc"]

T = TypeVar("T")

#: name → the numpydoc parameter entry (first line: ``name : type``; then its description, indented by 4)
DOCDICT: dict[str, str] = {
    "seed": """seed : int
    Seeds the initialisation, the batches' order and any sampling, so that a fit is reproducible on a machine
    (the results do not depend on the number of processes; float results may differ across hardware).""",
    "device": """device : str or None
    torch device of the computation (``"cpu"``, ``"cuda"``, ``"cuda:1"``); None: CPU. Nothing requires a GPU.""",
    "trainer": """trainer : mapping or None
    :class:`~neurodecode.core.training.Trainer` settings over the class's ``trainer_defaults``
    (``max_epochs``, ``batch_size``, ``lr``, ``weight_decay``, ``precision``, ``accumulate``,
    ``checkpoint_dir`` for resumable training, ...); unknown keys are refused, naming them.""",
    "ax": """ax : matplotlib.axes.Axes or None
    Draw into these axes; default: a new figure.""",
    "path": """path : str or Path or None
    Save the figure there and close it (see :func:`~neurodecode.evaluation.plots.finish_figure`); None keeps it
    open (for a notebook or the documentation's gallery).""",
    "n_jobs": """n_jobs : int or None
    Worker processes for the work that parallelises (as scikit-learn's and MNE's ``n_jobs``); None or 1: one
    process, -1: one per usable core. Each worker runs one BLAS/torch thread.""",
}


def fill_doc(obj: T) -> T:
    """Fill ``%(name)s`` placeholders of ``obj.__doc__`` with :data:`DOCDICT`'s entries, indented as the
    placeholder is.

    Raises
    ------
    KeyError
        Naming the placeholder and the object when :data:`DOCDICT` has no such entry.
    """
    doc = obj.__doc__
    if not doc:
        return obj
    lines = []
    for line in doc.splitlines():
        stripped = line.strip()
        if stripped.startswith("%(") and stripped.endswith(")s"):
            key = stripped[2:-2]
            if key not in DOCDICT:
                raise KeyError(f"{getattr(obj, '__qualname__', obj)}: no shared parameter text {key!r} in DOCDICT "
                               f"(known: {sorted(DOCDICT)})")
            indent = line[: len(line) - len(line.lstrip())]
            lines.append(textwrap.indent(DOCDICT[key], indent))
        else:
            lines.append(line)
    obj.__doc__ = "\n".join(lines)
    return obj


def _check() -> Any:           # the entries are well-formed numpydoc parameters (a name line, then indented text)
    for key, text in DOCDICT.items():
        head, *body = text.splitlines()
        assert head.startswith(f"{key} : ") and all(b.startswith("    ") for b in body), key


_check()
