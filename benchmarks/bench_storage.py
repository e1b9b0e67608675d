"""Benchmark the epoch store against numpy's memory-mapped .npy on the same array, in the same run.

Writes a synthetic store (default 2 GB: 8192 epochs × 64 channels × 1000 samples, float32) chunk by chunk with
:class:`neurodecode.EpochWriter` and the same array with ``numpy.lib.format.open_memmap``; then, each in a fresh
process per measurement, reads random single epochs (cold page cache via ``posix_fadvise(DONTNEED)``, and warm:
the same epochs read a second time) and the whole file sequentially in blocks (cold), reporting throughput, ratios (neurodecode / numpy; > 1 means neurodecode is faster) and the
peak resident memory added while reading.

Usage::

    python benchmarks/bench_storage.py [--gb 2] [--n-channels 64] [--n-times 1000] [--reads 2000] [--dir DIR]
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

READER = r"""
import json, sys, time
import numpy as np
kind, phase, path, n_reads, block = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5])
def status_kb(key):  # VmHWM (peak RSS) starts afresh at exec, unlike ru_maxrss, which a child inherits
    with open("/proc/self/status") as f:
        return next(int(l.split()[1]) for l in f if l.startswith(key))
if kind == "neurodecode":
    import neurodecode
    store = neurodecode.EpochStore(path)
    read, n = store.read, len(store)
else:
    arr = np.load(path, mmap_mode="r")
    read, n = (lambda i: np.array(arr[i])), arr.shape[0]
base = status_kb("VmRSS")
idx = np.random.default_rng(1).integers(0, n, n_reads).tolist()
total = 0.0
if phase == "random_warm":
    for i in idx:
        total += float(read(i)[0, 0])
t = time.perf_counter()
if phase.startswith("random"):
    for i in idx:
        total += float(read(i)[0, 0])
else:
    for start in range(0, n, block):
        total += float(read(slice(start, min(start + block, n)))[0, 0, 0])
elapsed = time.perf_counter() - t
print(json.dumps({"seconds": elapsed, "peak_rss_added_mb": (status_kb("VmHWM") - base) / 1024}))
"""


def drop_cache(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    os.fsync(fd)
    os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    os.close(fd)


NAME = "bench_storage"


def main() -> None:
    from neurodecode.evaluation.benchmarks import benchmark_parser, write_results

    p = benchmark_parser(__doc__.splitlines()[0], NAME)
    p.add_argument("--gb", type=float, default=2.0, help="size of the synthetic recording in GB (1e9 bytes)")
    p.add_argument("--n-channels", type=int, default=64)
    p.add_argument("--n-times", type=int, default=1000)
    p.add_argument("--reads", type=int, default=2000, help="random single-epoch reads")
    p.add_argument("--block", type=int, default=256, help="epochs per write/sequential-read block")
    p.add_argument("--dir", default=None, help="where to write the two files (default: a temporary folder)")
    args = p.parse_args()

    import neurodecode
    from neurodecode import Channels, EpochWriter

    epoch_bytes = 4 * args.n_channels * args.n_times
    n_epochs = int(args.gb * 1e9 // epoch_bytes)
    nbytes = n_epochs * epoch_bytes
    tmp = tempfile.TemporaryDirectory(dir=args.dir)
    d = Path(tmp.name)
    block = np.random.default_rng(0).standard_normal((args.block, args.n_channels, args.n_times), np.float32)
    channels = Channels([f"EEG{i:03d}" for i in range(args.n_channels)], "eeg")
    print(f"neurodecode {neurodecode.__version__}: {n_epochs} epochs × {args.n_channels} × {args.n_times} float32 "
          f"= {nbytes / 1e9:.2f} GB, {args.reads} random reads, blocks of {args.block} epochs")

    # ---- write -----------------------------------------------------------------------------------------------
    h5 = d / "store.h5"
    t = time.perf_counter()
    with EpochWriter(h5, sfreq=250.0, channels=channels, n_times=args.n_times) as w:
        for start in range(0, n_epochs, args.block):
            n = min(args.block, n_epochs - start)
            w.append(block[:n] + np.float32(start), {"trial": np.arange(start, start + n)})
    drop_cache(h5)
    t_h5 = time.perf_counter() - t
    npy = d / "array.npy"
    t = time.perf_counter()
    mm = np.lib.format.open_memmap(npy, mode="w+", dtype=np.float32, shape=(n_epochs, args.n_channels, args.n_times))
    for start in range(0, n_epochs, args.block):
        n = min(args.block, n_epochs - start)
        mm[start:start + n] = block[:n] + np.float32(start)
    mm.flush()
    del mm
    drop_cache(npy)
    t_npy = time.perf_counter() - t
    res = {"n_epochs": n_epochs, "bytes": nbytes, "write_s": {"neurodecode": t_h5, "numpy": t_npy}}

    # ---- read, each in a fresh process ---------------------------------------------------------------------
    for kind, path in (("neurodecode", h5), ("numpy", npy)):
        res[kind] = {}
        for phase in ("random_cold", "random_warm", "sequential_cold"):
            drop_cache(path)  # no process maps the file now, so its pages really leave the cache
            out = subprocess.run([sys.executable, "-c", READER, kind, phase, str(path), str(args.reads),
                                  str(args.block)], capture_output=True, text=True, check=True)
            figures = json.loads(out.stdout)
            res[kind][phase] = figures["seconds"]
            res[kind]["peak_rss_added_mb"] = max(res[kind].get("peak_rss_added_mb", 0.0),
                                                 figures["peak_rss_added_mb"])
    with neurodecode.EpochStore(h5) as store:
        np.testing.assert_array_equal(store[n_epochs - 1], block[(n_epochs - 1) % args.block] +
                                      np.float32((n_epochs - 1) // args.block * args.block))
        res["chunk_epochs"] = store.chunk_epochs
    res["file_bytes"] = {"neurodecode": h5.stat().st_size, "numpy": npy.stat().st_size}
    tmp.cleanup()

    # ---- report --------------------------------------------------------------------------------------------
    mb = nbytes / 1e6
    print(f"{'':22s}{'neurodecode':>14s}{'numpy mmap':>14s}{'ratio':>8s}")
    print(f"{'write (MB/s)':22s}{mb / t_h5:14.0f}{mb / t_npy:14.0f}{t_npy / t_h5:8.2f}")
    for phase, label in (("random_cold", "random read cold (/s)"), ("random_warm", "random read warm (/s)")):
        a, b = args.reads / res["neurodecode"][phase], args.reads / res["numpy"][phase]
        print(f"{label:22s}{a:14.0f}{b:14.0f}{a / b:8.2f}")
    a, b = mb / res["neurodecode"]["sequential_cold"], mb / res["numpy"]["sequential_cold"]
    print(f"{'sequential cold (MB/s)':22s}{a:14.0f}{b:14.0f}{a / b:8.2f}")
    print(f"{'peak RSS added (MB)':22s}{res['neurodecode']['peak_rss_added_mb']:14.1f}"
          f"{res['numpy']['peak_rss_added_mb']:14.1f}")
    print(f"{'file size (MB)':22s}{res['file_bytes']['neurodecode'] / 1e6:14.1f}{res['file_bytes']['numpy'] / 1e6:14.1f}")
    print(f"chunk: {res['chunk_epochs']} epoch(s); ratio = neurodecode / numpy throughput (> 1: neurodecode faster)")
    print(f"wrote {write_results(args, NAME, res)}")


if __name__ == "__main__":
    main()
