"""Stage 7 — the command line: ``neurodecode`` (argparse, :mod:`.main`), the Hydra training entry point
(:mod:`.train`), the built-in demo (:mod:`.demo`) and the real-EEG example (:mod:`.example`). No model logic: each
command calls the stage that does the work.

May import: every stage.
"""

from neurodecode.cli.main import build_parser, main

__all__ = ["build_parser", "main"]
