"""The ``neurodecode`` logger, as MNE does it: one named logger, a level you set, messages instead of prints.

Library code logs progress (``logger.info``) and problems worth a look (``logger.warning``); results are returned,
never printed. :func:`set_log_level` (or the command line's ``--verbose`` / ``--quiet``) chooses what is shown; by
default INFO and above go to stderr as ``[neurodecode] message``. Imports nothing from neurodecode.
"""

from __future__ import annotations

import logging
import sys

__all__ = ["logger", "set_log_level"]

logger = logging.getLogger("neurodecode")

_LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING, "error": logging.ERROR}


class _StderrHandler(logging.StreamHandler):
    """Writes to whatever ``sys.stderr`` is when a record is emitted (test runners and notebooks swap it)."""

    @property
    def stream(self):  # type: ignore[override]
        return sys.stderr

    @stream.setter
    def stream(self, value) -> None:  # the base class assigns it once
        pass


def _default_handler() -> logging.Handler:
    handler = _StderrHandler()
    handler.setFormatter(logging.Formatter("[neurodecode] %(message)s"))
    handler.set_name("neurodecode-default")
    return handler


if not any(h.get_name() == "neurodecode-default" for h in logger.handlers):
    logger.addHandler(_default_handler())
    logger.setLevel(logging.INFO)


def set_log_level(level: str | int) -> int:
    """Set the level of the ``neurodecode`` logger (``"debug"``, ``"info"``, ``"warning"``, ``"error"`` or an int);
    returns the previous level."""
    old = logger.level
    if isinstance(level, str):
        if level.lower() not in _LEVELS:
            raise ValueError(f"field 'level': expected one of {list(_LEVELS)} or a logging level, got {level!r}")
        level = _LEVELS[level.lower()]
    logger.setLevel(level)
    return old
