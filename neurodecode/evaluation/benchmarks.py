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

__all__ = ["benchmark_parser", "default_data", "epoching", "machine", "record_accuracy", "write_results"]


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
    """How epochs were made, for a results file: sampling rate, window, shape and their processing steps as applied
    (``EpochSet.processing``: filters with their actual pass bands, epoch windows; per-recording details — files,
    drop counts and reports — left out)."""
    first = epochs if hasattr(epochs, "provenance") else epochs[next(iter(epochs))]   # an EpochCollection
    return {"sfreq": float(first.sfreq), "tmin": float(first.tmin), "n_times": int(first.n_times),
            "n_channels": int(first.n_channels), "steps": first.processing}


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


def record_accuracy(results: dict, key: str, name: str, epochs: Any, pipeline: Any, scheme: str,
                    **evaluate_kw: Any) -> str:
    """``evaluate(epochs, pipeline, scheme, seed=42, **evaluate_kw)``; its per-subject mean accuracy, their mean and
    the seconds it took go into ``results[key][name]``; returns them as one line for the benchmark to print."""
    import time

    from neurodecode.evaluation.classification import evaluate

    t0 = time.perf_counter()
    res = evaluate(epochs, pipeline, scheme, seed=42, **evaluate_kw)
    acc = res.scores[res.scores["metric"] == "accuracy"]
    per = acc.groupby("subject")["value"].mean()
    seconds = time.perf_counter() - t0
    results.setdefault(key, {})[name] = {"accuracy": round(float(per.mean()), 4),
                                         "per_subject": per.round(4).to_dict(), "seconds": round(seconds, 1)}
    return f"  {key:26s} {name:48s} {per.mean():.3f}  ({', '.join(f'{v:.3f}' for v in per)})  {seconds:.0f} s"
