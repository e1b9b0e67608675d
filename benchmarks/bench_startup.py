"""Start-up time: ``import neurodecode`` and ``neurodecode --help``, each in fresh processes, against the targets
(2 CPU cores: import ≤ 1 s, --help ≤ 1.5 s), with the heavy libraries each leaves unimported.

Beside them, as a reference measured in the same run: ``python -c pass`` (the interpreter alone) and
``import torch`` (what a command that needs torch pays once).

Usage::

    python benchmarks/bench_startup.py [--repeats 5]
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import time

HEAVY = ["torch", "diffusers", "open_clip", "transformers", "mne_lsl", "moabb", "braindecode", "mne", "sklearn",
         "nilearn", "hydra", "pyriemann"]
TARGETS = {"import neurodecode": 1.0, "neurodecode --help": 1.5}


def _seconds(cmd: list[str]) -> float:
    t = time.perf_counter()
    subprocess.run(cmd, check=True, capture_output=True)
    return time.perf_counter() - t


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0], prog="python benchmarks/bench_startup.py")
    p.add_argument("--repeats", type=int, default=5)
    args = p.parse_args(argv)
    exe = shutil.which("neurodecode") or str(__import__("pathlib").Path(sys.executable).with_name("neurodecode"))
    cases = {"python -c pass": [sys.executable, "-c", "pass"],
             "import neurodecode": [sys.executable, "-c", "import neurodecode"],
             "neurodecode --help": [exe, "--help"],
             "import torch": [sys.executable, "-c", "import torch"]}
    rows = {}
    for name, cmd in cases.items():
        _seconds(cmd)                                            # warm the file cache
        runs = [_seconds(cmd) for _ in range(args.repeats)]
        rows[name] = {"best": min(runs), "median": statistics.median(runs), "target": TARGETS.get(name)}
    probe = ("import sys, neurodecode; from neurodecode.cli.main import build_parser; build_parser(); "
             f"print(sorted(m for m in {HEAVY!r} if m in sys.modules))")
    loaded = json.loads(subprocess.run([sys.executable, "-c", probe], check=True, capture_output=True,
                                       text=True).stdout.replace("'", '"'))
    print(f"{'':22s} {'best s':>8s} {'median s':>9s} {'target s':>9s}")
    for name, r in rows.items():
        target = "" if r["target"] is None else f"{r['target']:.1f}"
        print(f"{name:22s} {r['best']:8.3f} {r['median']:9.3f} {target:>9s}")
    print(f"heavy libraries imported by `import neurodecode` + the parser: {loaded or 'none'}")
    worst = max(rows[n]["median"] / t for n, t in TARGETS.items())
    print(f"startup_median_over_target_max: {worst:.2f}")
    return {"rows": rows, "heavy_imported": loaded, "max_over_target": worst}


if __name__ == "__main__":
    main()
