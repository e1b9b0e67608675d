"""Hydra training runs: ``neurodecode train`` / ``python -m neurodecode.cli.train``.

The run composes ``conf/train.yaml`` from the config groups ``data``, ``preprocessing``, ``encoder``, ``objective``,
``aligner``, ``head`` (three slots: ``heads.images``, ``heads.captions``, ``heads.meshes``), ``trainer`` and
``experiment`` and hands it to :func:`neurodecode.pipeline.run`, in Hydra's output folder (``runs/...``).

Examples::

    neurodecode train experiment=demo
    neurodecode train experiment=digits69 data.path=/data/digit69_28x28.mat aligner=mlp
    neurodecode train --multirun experiment=demo aligner=ridge,mlp seed=0,1,2
    neurodecode train experiment=demo hydra/launcher=submitit_slurm hydra.launcher.gpus_per_node=1 --multirun

May import: every stage.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from typing import Any

from neurodecode.core.configs import check_targets, compose, conf_dir, normalize_overrides

__all__ = ["main"]


#: errors of the jobs of the current command (Hydra would print its own banner and traceback for them)
_JOB_ERRORS: list[BaseException] = []
_EXPECTED = (ValueError, TypeError, KeyError, OSError, RuntimeError)


def _hydra_main(cfg: Any) -> float:
    from hydra.core.hydra_config import HydraConfig

    from neurodecode.pipeline.fitting import run

    try:
        metrics = run(cfg, HydraConfig.get().runtime.output_dir)
    except _EXPECTED as err:
        if os.environ.get("NEURODECODE_DEBUG"):
            raise
        _JOB_ERRORS.append(err)
        return float("nan")
    top = [r["value"] for r in metrics["scores"] if r["metric"] == "two_way"]
    return float(top[0]) if top else float("nan")


def _run_folder(overrides: Sequence[str], multirun: bool) -> Any:
    """The folder Hydra will write the run (or the sweep) into."""
    from pathlib import Path

    cfg = compose(overrides, return_hydra_config=True)
    return Path(str(cfg.hydra.sweep.dir if multirun else cfg.hydra.run.dir))


def _refuse_finished_run(overrides: Sequence[str], multirun: bool) -> Any:
    """Refuse, before Hydra writes anything (its .hydra/ would overwrite the old run's record), a run folder that
    already holds a finished run, and lock it for this process (a second ``train`` into it, started before this
    one finishes, fails at once instead of replacing it). Returns the lock (None under torchrun's other ranks,
    which write elsewhere)."""
    from neurodecode.core.files import WriteLock

    folder = _run_folder(overrides, multirun)
    lock = None
    if int(os.environ.get("RANK", "0")) == 0:
        folder.parent.mkdir(parents=True, exist_ok=True)
        lock = WriteLock(folder)
    done = [p for p in ([folder] + (sorted(folder.iterdir()) if multirun and folder.is_dir() else []))
            if (p / "metrics.json").exists() or (p / "checkpoint").exists()]
    if done:
        if lock is not None:
            lock.release()
        raise FileExistsError(f"{done[0]}: a training run is already there; choose another folder "
                              "(hydra.run.dir=... / hydra.sweep.dir=...) — nothing was written")
    return lock


def _other_rank_overrides(multirun: bool) -> list[str]:
    """Under torchrun, ranks other than 0 write nothing in the run folder (its name holds the launch time, which
    the ranks need not agree on): their Hydra folder is a temporary one holding only their log."""
    import tempfile

    rank, world = int(os.environ.get("RANK", "0")), int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1 or rank == 0 or multirun:
        return []
    folder = tempfile.mkdtemp(prefix=f"neurodecode-train-rank{rank}-")
    print(f"neurodecode train: rank {rank} of {world}: rank 0 writes the run; this rank's log is in {folder}",
          file=sys.stderr)
    return [f"hydra.run.dir={folder}", "hydra.output_subdir=null"]


def _error(err: BaseException) -> int:
    if os.environ.get("NEURODECODE_DEBUG"):
        raise err
    message = err.args[0] if isinstance(err, KeyError) and err.args else err
    print(f"neurodecode train: error: {message} (NEURODECODE_DEBUG=1 shows the traceback)", file=sys.stderr)
    return 2


def _first_of_sweeps(overrides: Sequence[str]) -> list[str]:
    """Each ``key=a,b`` sweep as its first value ``key=a`` (list and dict values left whole)."""
    out = []
    for o in overrides:
        key, _, value = o.partition("=")
        if "," in value and not value.lstrip().startswith(("[", "{")):
            value = value.split(",")[0]
        out.append(f"{key}={value}" if _ else o)
    return out


def _check_hydra_targets(overrides: Sequence[str]) -> None:
    """Hydra instantiates its own ``hydra.callbacks`` before the run's code starts: their ``_target_`` entries —
    from an experiment found through ``hydra.searchpath`` or from ``+hydra.callbacks.X._target_=...`` — are held to
    the allowlist here, before Hydra sees them (a pickle loader as a callback would run the pickle)."""
    from omegaconf import OmegaConf

    cfg = compose(list(overrides), return_hydra_config=True)
    callbacks = OmegaConf.select(cfg, "hydra.callbacks")
    if callbacks:
        check_targets(callbacks, "hydra.callbacks")


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``neurodecode train`` (Hydra's command line); errors, also those raised inside the run, are
    one line naming the file and the field (``NEURODECODE_DEBUG=1`` shows the traceback)."""
    import hydra

    argv = normalize_overrides(list(sys.argv[1:] if argv is None else argv))
    plain = [a for a in argv if (not a.startswith("-") and "=" in a) or a.startswith(("~", "++"))]
    app = hydra.main(version_base="1.3", config_path=str(conf_dir()), config_name="train")(_hydra_main)
    old = sys.argv
    multirun = "--multirun" in argv or "-m" in argv
    lock = None
    try:
        if not any(a in ("--help", "-h", "--hydra-help") for a in argv):
            _check_hydra_targets(_first_of_sweeps(plain) if multirun else plain)
        if not any(a in ("--help", "-h", "--hydra-help", "--info", "-i", "--cfg", "-c") for a in argv):
            if not multirun:
                compose(plain)        # fail early, with the hint, on a bad key or value
            lock = _refuse_finished_run([a for a in plain if "," not in a] if multirun else plain, multirun)
        sys.argv = ["neurodecode train", *argv, *_other_rank_overrides(multirun)]
        _JOB_ERRORS.clear()
        app()
    except _EXPECTED as err:
        return _error(err)
    finally:
        sys.argv = old
        if lock is not None:
            lock.release()
    if _JOB_ERRORS:
        if len(_JOB_ERRORS) > 1:
            print(f"neurodecode train: {len(_JOB_ERRORS)} jobs failed; the first:", file=sys.stderr)
        return _error(_JOB_ERRORS[0])
    return 0


if __name__ == "__main__":
    sys.exit(main())
