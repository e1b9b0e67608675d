"""Latency of real-time decoding: `neurodecode stream` on a whole EEGMMIDB run replayed by mne-lsl's player.

Trains the motor-imagery checkpoint of :func:`neurodecode.pipeline.streaming.motor_imagery_checkpoint` (runs 4 and 8
→ tangent space → ridge onto two stimuli), replays run 12 in real time over this host only (liblsl confined to the machine), decodes every
labelled marker online, decodes the same run offline with the same checkpoint, and prints how many online
predictions equal the offline ones and the per-epoch latency (median, 95th percentile) after the padded window.
About 2.5 minutes (the run lasts 125 s).

    python benchmarks/eval_streaming.py [--data ../shared/data] [--pad 1.0] [--out results/eval_streaming]
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

import numpy as np

NAME = "eval_streaming"


def main() -> None:
    from neurodecode.evaluation.benchmarks import benchmark_parser, write_results
    from neurodecode.pipeline.streaming import LOCAL_LSL_CONFIG, motor_imagery_checkpoint, offline_predictions

    p = benchmark_parser(__doc__.splitlines()[0], NAME)
    p.add_argument("--pad", type=float, default=1.0)
    args = p.parse_args()
    tmp = Path(tempfile.mkdtemp())
    checkpoint = motor_imagery_checkpoint(tmp, args.data)
    run = args.data / "eegmmidb_S001" / "S001R12.edf"
    (tmp / "lsl_api.cfg").write_text(LOCAL_LSL_CONFIG)
    env = {**os.environ, "LSLAPICFG": str(tmp / "lsl_api.cfg")}
    name = f"nd-bench-{os.getpid()}"
    player = textwrap.dedent(f"""
        import time
        from mne_lsl.player import PlayerLSL
        p = PlayerLSL({str(run)!r}, chunk_size=16, name={name!r}, annotations=True, annotations_encoding="string",
                      n_repeat=1)
        p.start()
        time.sleep(140)
    """)
    proc = subprocess.Popen([sys.executable, "-c", player], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        out = subprocess.run([sys.executable, "-m", "neurodecode", "stream", str(checkpoint), "--lsl-stream", name,
                              "--pad", str(args.pad), "--marker-offset", str(1 / 160), "--latents", "--idle", "3"],
                             env=env, capture_output=True, text=True, timeout=200)
    finally:
        proc.kill()
    online = [json.loads(line) for line in out.stdout.splitlines() if line.startswith("{")]
    _, latents, top = offline_predictions(checkpoint, run)
    # markers before the decoder connected are skipped online: the online epochs are the last offline ones
    n = min(len(online), len(top))
    same = sum(a["stimulus"] == b for a, b in zip(online[len(online) - n:], top[len(top) - n:]))
    diff = (float(np.abs(np.array([o["latent"] for o in online[len(online) - n:]]) - latents[len(top) - n:]).max())
            if n else float("nan"))
    lat = np.array([o["latency_s"] for o in online])
    print(f"EEGMMIDB run 12 replayed over LSL: {len(online)} online predictions, {len(top)} offline epochs; "
          f"{same}/{n} equal top-1, max latent difference {diff:.2g}")
    print(f"latency after the padded window (pad {args.pad:g} s): median {np.median(lat):.4f} s, 95th percentile "
          f"{np.percentile(lat, 95):.4f} s, first epoch {lat[0]:.4f} s (imports and first-use costs)")
    print("wrote " + str(write_results(args, NAME, {
        "online": len(online), "offline": len(top), "equal_top1": same, "compared": n, "max_latent_difference": diff,
        "latency_median_s": float(np.median(lat)), "latency_p95_s": float(np.percentile(lat, 95))})))


if __name__ == "__main__":
    main()
