"""What every benchmark of ``benchmarks/`` shares: one argument set and one JSON result file.

* :func:`benchmark_parser` — ``--data`` (the folder of the shared recordings; default ``$NEURODECODE_SHARED_DATA``,
  else ``../shared/data`` beside the repository), ``--seed`` and ``--out`` (the results folder); a benchmark adds
  its own options to it.
* :func:`write_results` — ``<out>/<name>.json``: the benchmark's name, its arguments, the machine (Python, torch,
  CPU count, GPU) and its results (strict JSON: NaN becomes null), so that a figure in the documentation names the
  command and the machine that produced it.

Cross-validation in a benchmark is the library's own (:func:`~neurodecode.evaluation.classification.evaluate`), and
data sets are read by :mod:`neurodecode.loaders.public`: a benchmark imports no other benchmark.

May import: ``neurodecode.core`` … ``neurodecode.heads``.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from neurodecode.core.persistence import dumps

__all__ = ["benchmark_parser", "default_data", "epoching", "machine", "write_results"]


def default_data() -> Path:
    """``$NEURODECODE_SHARED_DATA``, else ``shared/data`` beside the repository of the running benchmark
    (``benchmarks/<name>.py``), else ``../shared/data`` from the current folder."""
    if "NEURODECODE_SHARED_DATA" in os.environ:
        return Path(os.environ["NEURODECODE_SHARED_DATA"])
    script = Path(sys.argv[0]).resolve() if sys.argv and sys.argv[0] else None
    beside_repo = script.parents[2] / "shared" / "data" if script is not None and len(script.parents) > 2 else None
    if beside_repo is not None and beside_repo.is_dir():
        return beside_repo
    return Path.cwd().parent / "shared" / "data"


def benchmark_parser(description: str, name: str) -> argparse.ArgumentParser:
    """An ``ArgumentParser`` with the shared ``--data``, ``--seed`` and ``--out`` (default ``results/<name>``)."""
    p = argparse.ArgumentParser(description=description, prog=f"python benchmarks/{name}.py")
    p.add_argument("--data", type=Path, default=default_data(),
                   help="folder of the shared recordings (default: $NEURODECODE_SHARED_DATA or ../shared/data)")
    p.add_argument("--seed", type=int, default=0, help="seed of every random choice of the benchmark")
    p.add_argument("--out", type=Path, default=Path("results") / name, help="folder for <name>.json and figures")
    return p


def machine() -> dict[str, Any]:
    """The machine a result was measured on."""
    import torch

    return {"python": platform.python_version(), "platform": platform.platform(), "cpus": os.cpu_count(),
            "torch": torch.__version__, "threads": torch.get_num_threads(),
            "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None}


def epoching(epochs: Any) -> dict[str, Any]:
    """How epochs were made, for a results file: sampling rate, window, shape and the preprocessing steps of their
    first recording as applied (files read, filters with their actual pass bands, epoch windows; the per-event drop
    reports left out)."""
    first = epochs if hasattr(epochs, "provenance") else epochs[next(iter(epochs))]   # an EpochCollection
    steps = list(first.provenance)
    if steps and steps[0].get("step") == "concatenate" and steps[0].get("sources"):
        steps = list(steps[0]["sources"][0])
    return {"sfreq": float(first.sfreq), "tmin": float(first.tmin), "n_times": int(first.n_times),
            "n_channels": int(first.n_channels),
            "steps": [s for s in steps if s.get("step") not in ("drop_report",)]}


def write_results(args: argparse.Namespace, name: str, results: Mapping[str, Any],
                  epochs: Mapping[str, Any] | None = None) -> Path:
    """Write ``<args.out>/<name>.json`` (arguments, machine, results and, with ``epochs`` — a name → EpochSet
    mapping —, how each set was epoched: :func:`epoching`) and return its path."""
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{name}.json"
    record = {"benchmark": name, "command": " ".join([Path(sys.argv[0]).name, *sys.argv[1:]]),
              "arguments": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
              "machine": machine(), "results": dict(results)}
    if epochs:
        record["epoching"] = {k: epoching(v) for k, v in epochs.items()}
    path.write_text(dumps(record, indent=1))
    return path
