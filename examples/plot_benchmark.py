"""
The benchmark command: datasets × pipelines × evaluations
=========================================================

``neurodecode benchmark`` runs every cell of ``conf/benchmark.yaml`` and writes a results table, a summary and a
figure per dataset. Here, as a Python call on a small subset so that it takes seconds: the SSVEP set's subjects 1
and 2, tangent space + logistic regression against MDM, trained on one session and tested on the other, with and
without re-centring each session. The full default run (39 cells; its times are on the benchmarks page) is
``neurodecode benchmark --out benchmark_results``.
"""

# %%
from pathlib import Path
from tempfile import mkdtemp

from neurodecode import compose
from neurodecode.evaluation.benchmarks import run_benchmark
from neurodecode.loaders.public import shared_data

out = Path(mkdtemp()) / "benchmark"
cfg = compose([f"data_root={shared_data()}", f"out_dir={out}", "datasets.ssvep_exo.epochs.default.subjects=[1,2]"],
              config_name="benchmark")
result = run_benchmark(cfg, datasets=["ssvep_exo"], pipelines=["ts_lr", "mdm"],
                       evaluations=["cross_session", "cross_session+recenter"])
print(result.table("ssvep_exo"))

# %%
# What was written: the per-fold table every figure and summary is computed from.
print(sorted(p.name for p in out.iterdir()))
print(result.scores.head())

# %%
# The dataset's figure: per-subject scores (dots), mean with its 95 % interval, chance (dashed).
result.plot("ssvep_exo")
