"""Shared fixtures: random epochs with deliberately unequal dimensions, and the real recordings in ../shared/data."""

import json
import os
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # a missing weight must fail at once, not retry for ~25 s
os.environ.setdefault("MPLBACKEND", "Agg")


def _usable_cores() -> int:
    """The cores this process may use: the CPU affinity, capped by a cgroup quota (containers report the host's
    core count, and BLAS/torch threads beyond the quota make every test many times slower)."""
    n = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    try:
        quota, period = Path("/sys/fs/cgroup/cpu.max").read_text().split()[:2]
        if quota != "max":
            n = min(n, max(1, int(int(quota) // int(period))))
    except (OSError, ValueError):
        pass
    return n


_THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")
_OURS = [v for v in _THREAD_VARS if v not in os.environ]      # the ones the user did not set
for _var in _OURS:
    os.environ[_var] = str(_usable_cores())

import numpy as np
import pandas as pd
import pytest

from neurodecode import Channels, EpochSet

SHARED_DATA = Path(os.environ.get("NEURODECODE_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))


def pytest_xdist_auto_num_workers(config):
    """``-n auto``: one worker per usable core (the affinity and the cgroup quota, not the host's core count); on
    one core, no worker (the tests run in this process)."""
    n = _usable_cores()
    return n if n > 1 else 0


def pytest_configure(config):
    """Under pytest-xdist (``-n N``) the workers share the cores: before they start (they inherit this process's
    environment), each is given its part of the threads, so that N workers do not oversubscribe the machine."""
    workers = getattr(config.option, "numprocesses", None)
    if isinstance(workers, int) and workers > 1:
        for var in _OURS:
            os.environ[var] = str(max(1, _usable_cores() // workers))


def pytest_collection_modifyitems(config, items):
    if SHARED_DATA.is_dir():
        return
    skip = pytest.mark.skip(reason=f"real recordings not found at {SHARED_DATA} (set NEURODECODE_SHARED_DATA)")
    for item in items:
        if "realdata" in item.keywords:
            item.add_marker(skip)


@pytest.fixture
def shared_data() -> Path:
    return SHARED_DATA


def make_epochs(n_epochs=7, n_channels=5, n_times=11, subject="sub-01", seed=0, sfreq=128.0, ch_types="eeg",
                runs=("1", "2")) -> EpochSet:
    """Random epochs with a varied table (strings, ints, floats, bools, missing values) and some positions."""
    rng = np.random.default_rng(seed)
    pos = rng.normal(scale=0.08, size=(n_channels, 3))
    pos[0] = np.nan  # one channel without a position
    channels = Channels([f"{subject}-ch{i}" for i in range(n_channels)], ch_types, pos, "head")
    table = pd.DataFrame({
        "subject": subject,
        "session": "1",
        "run": [runs[i * len(runs) // n_epochs] for i in range(n_epochs)],
        "stimulus": [f"img{i % 3}" for i in range(n_epochs)],
        "label": [["face", "house"][i % 2] for i in range(n_epochs)],
        "onset": np.arange(n_epochs) * 2.5,
        "reaction_time": [np.nan if i == 2 else 0.3 + 0.01 * i for i in range(n_epochs)],
        "trial": np.arange(n_epochs, dtype=np.int64),
        "correct": [bool(i % 3) for i in range(n_epochs)],
        "note": [None if i == 1 else f"n{i}" for i in range(n_epochs)],
    })
    data = rng.normal(size=(n_epochs, n_channels, n_times)).astype(np.float32) * 1e-5
    return EpochSet(data, sfreq, channels, table, tmin=-0.125, provenance=[{"step": "test", "seed": seed}])


@pytest.fixture
def epochs() -> EpochSet:
    return make_epochs()


# a tiny open_clip model from a local config (no download), shared by the embedding and metric tests
TINY = {"embed_dim": 32, "vision_cfg": {"image_size": 32, "layers": 2, "width": 64, "patch_size": 8},
        "text_cfg": {"context_length": 16, "vocab_size": 49408, "width": 32, "heads": 2, "layers": 2}}


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    import open_clip

    path = tmp_path_factory.mktemp("cfg") / "nd-tiny-clip.json"
    path.write_text(json.dumps(TINY))
    open_clip.add_model_config(path)
    return "nd-tiny-clip"


@pytest.fixture
def embedder(tiny_model, tmp_path):
    import torch

    from neurodecode.alignment.embeddings import OpenCLIPEmbedder

    torch.manual_seed(0)
    return OpenCLIPEmbedder(tiny_model, pretrained=None, cache_dir=tmp_path / "cache")


def headless_browser(tmp_path: Path, *args: str) -> str:
    """Run headless Chromium with ``args`` (``--dump-dom URL``, ``--screenshot=...``) and return its stdout; the
    test is skipped with a message where no Chromium is found (``$NEURODECODE_CHROMIUM`` names one)."""
    import shutil
    import subprocess

    for name in (os.environ.get("NEURODECODE_CHROMIUM"), "chromium", "chromium-browser", "google-chrome",
                 "google-chrome-stable"):
        if name and shutil.which(name):
            break
    else:
        pytest.skip("no Chromium found (Debian: apt-get install chromium; or set NEURODECODE_CHROMIUM): the "
                    "browser check is skipped")
    cmd = [shutil.which(name), "--headless", "--no-sandbox", "--disable-gpu", f"--user-data-dir={tmp_path / 'profile'}",
           "--virtual-time-budget=5000", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=True).stdout

