"""Multi-process training runs: ``torchrun --nproc_per_node 2`` on the CPU (gloo) of ``experiment=tiny`` ends with
one run folder, written by rank 0 only, whose checkpoint equals the 1-process run's (the trained image and caption
heads included: DDP averages the gradients of each rank's share of one global batch)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from neurodecode.cli.main import main

ARGS = ["experiment=tiny", "data.n_train=64", "images.fit.batch_size=16", "captions.fit.batch_size=16"]


def _files(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())


def _tensors(folder: Path) -> dict[str, np.ndarray]:
    from safetensors.numpy import load_file

    out = {}
    for path in sorted(folder.rglob("*.safetensors")):
        for key, value in load_file(path).items():
            out[f"{path.relative_to(folder)}:{key}"] = value
    return out


def _initial_unet() -> dict[str, np.ndarray]:
    """The image head's weights before training, built from the run's config (as the run builds it)."""
    from omegaconf import open_dict

    from neurodecode.core.configs import compose, instantiate

    cfg = compose(ARGS)
    with open_dict(cfg):
        cfg.latent_dim = int(cfg.objective.n_components)
    head = instantiate(cfg.heads.images, "config 'heads.images'")
    return {f"unet.{k}": v.detach().numpy() for k, v in head.unet.state_dict().items()}


@pytest.mark.slow
def test_torchrun_two_cpu_processes_write_one_checkpoint_equal_to_one_process(tmp_path):
    one, two = tmp_path / "one", tmp_path / "two"
    assert main(["train", *ARGS, f"hydra.run.dir={one}"]) == 0
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1", "TMPDIR": str(tmp_path)}
    proc = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                           "-m", "neurodecode.cli.train", *ARGS, f"hydra.run.dir={two}"],
                          env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "rank 1 of 2: rank 0 writes the run" in proc.stderr
    # one run folder, the same files as the 1-process run: rank 1 wrote nothing there
    assert _files(two) == _files(one)
    a, b = _tensors(one / "checkpoint"), _tensors(two / "checkpoint")
    assert sorted(a) == sorted(b) and any("images" in k for k in a) and any("captions" in k for k in a)
    for key in a:
        if not key.startswith("heads/images"):
            np.testing.assert_allclose(b[key], a[key], rtol=1e-4, atol=1e-6, err_msg=key)
    # the UNet: Adam turns rounding differences of near-zero gradients (biases before a GroupNorm) into steps of
    # ~lr, so compare the training updates as a whole: 1 and 2 processes take the same steps to 0.3 % (measured);
    # ranks training on different items or noise would differ by ~100 %
    w0 = _initial_unet()
    keys = [k for k in a if k.startswith("heads/images") and k.split(":", 1)[1] in w0]
    assert len(keys) > 100
    update = np.sqrt(sum(((a[k] - w0[k.split(":", 1)[1]]) ** 2).sum() for k in keys))
    gap = np.sqrt(sum(((b[k] - a[k]) ** 2).sum() for k in keys))
    assert update > 0 and gap / update < 0.03, (gap, update)
    trained = json.loads((two / "checkpoint" / "model_index.json").read_text())["trained_heads"]
    assert set(trained) >= {"images", "captions"}
    m1, m2 = (json.loads((d / "metrics.json").read_text())["scores"] for d in (one, two))
    assert [r["metric"] for r in m1] == [r["metric"] for r in m2]
    assert [r["value"] for r in m2] == pytest.approx([r["value"] for r in m1], abs=1e-9)
    # the other rank logged into a temporary folder of its own
    logs = list(tmp_path.glob("neurodecode-train-rank1-*/train.log"))
    assert logs and "trained with rank 0" in logs[0].read_text()


def test_the_slurm_launcher_composes_with_a_training_run():
    from neurodecode.core.configs import compose

    cfg = compose(["experiment=tiny", "hydra/launcher=submitit_slurm", "hydra.launcher.partition=gpu",
                   "hydra.launcher.gpus_per_node=4", "hydra.launcher.tasks_per_node=4"], return_hydra_config=True)
    launcher = cfg.hydra.launcher
    assert launcher._target_ == "hydra_plugins.hydra_submitit_launcher.submitit_launcher.SlurmLauncher"
    assert (launcher.partition, launcher.gpus_per_node, launcher.tasks_per_node) == ("gpu", 4, 4)
    from hydra.utils import get_class

    assert get_class(launcher._target_).__name__ == "SlurmLauncher"     # the plugin is installed (extra 'slurm')


def test_slurm_tasks_become_a_process_group_environment(monkeypatch):
    """Several SLURM tasks without torchrun: submitit's environment gives the ranks torch.distributed reads."""
    from submitit.helpers import TorchDistributedEnvironment

    saved = {k: os.environ.pop(k) for k in ("WORLD_SIZE", "RANK", "LOCAL_RANK", "LOCAL_WORLD_SIZE", "MASTER_ADDR",
                                             "MASTER_PORT") if k in os.environ}
    monkeypatch.setenv("SLURM_NTASKS", "2")
    monkeypatch.setenv("SLURM_PROCID", "1")
    monkeypatch.setenv("SLURM_LOCALID", "1")
    monkeypatch.setenv("SLURM_JOB_NODELIST", "localhost")
    monkeypatch.setenv("SLURM_JOB_ID", "42")
    monkeypatch.setenv("SLURM_JOB_NUM_NODES", "1")
    monkeypatch.setenv("SUBMITIT_EXECUTOR", "slurm")
    monkeypatch.setenv("SLURM_NODEID", "0")
    monkeypatch.setenv("SLURM_TASKS_PER_NODE", "2")
    try:
        TorchDistributedEnvironment().export(set_cuda_visible_devices=False)
        assert (os.environ["WORLD_SIZE"], os.environ["RANK"], os.environ["LOCAL_RANK"]) == ("2", "1", "1")
    finally:            # the rest of the suite must not believe it runs in a 2-process group
        for key in ("WORLD_SIZE", "RANK", "LOCAL_RANK", "LOCAL_WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT"):
            os.environ.pop(key, None)
        os.environ.update(saved)


def test_the_top_level_seed_reaches_every_seeded_part():
    """``--multirun seed=0,1,2`` trains three different models: the seed reaches the split, the aligner and the
    heads (and pretraining, which takes ``cfg.seed``); an option built on its own keeps its own default."""
    from omegaconf import OmegaConf

    from neurodecode.core.configs import build, compose, instantiate

    cfg = OmegaConf.to_container(compose(["experiment=tiny", "aligner=mlp", "seed=3"]), resolve=True)
    assert cfg["split"]["seed"] == cfg["aligner"]["seed"] == 3
    assert cfg["heads"]["images"]["seed"] == cfg["heads"]["captions"]["seed"] == 3
    assert build("aligner", "mlp").seed == 0
    assert OmegaConf.to_container(compose(["aligner=mlp", "seed=3", "aligner.seed=5"]), resolve=True)[
        "aligner"]["seed"] == 5                                        # a part's own seed still wins when given
    rng = np.random.default_rng(0)
    X, Y = rng.normal(size=(40, 6)), rng.normal(size=(40, 3))
    preds = []
    for seed in (0, 1):
        c = compose(["aligner=mlp", f"seed={seed}", "aligner.trainer.max_epochs=2", "aligner.hidden=16"])
        preds.append(instantiate(c.aligner, "config 'aligner'").fit(X, Y).predict(X))
    assert np.abs(preds[0] - preds[1]).max() > 1e-3
