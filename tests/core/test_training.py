"""Trainer: 1 vs 2 processes, resume after SIGKILL, accumulation, checkpoints."""

import json
import os
import subprocess
import sys
import tempfile
import textwrap

import pytest
import torch
import torch.multiprocessing as mp

from neurodecode.encoders.models.contrastive import SoftCLIPLoss
from neurodecode.encoders.models.mlp import ResidualMLP
from neurodecode.core.training import Trainer, load_checkpoint, save_checkpoint


def make_data(n=48, p=20, q=6, seed=0):
    g = torch.Generator().manual_seed(seed)
    X = torch.randn(n, p, generator=g, dtype=torch.float64)
    Y = X[:, :q] * 2 + 0.1 * torch.randn(n, q, generator=g, dtype=torch.float64)
    return torch.utils.data.TensorDataset(X, Y)


def make_model():
    torch.manual_seed(7)
    return ResidualMLP(20, 6, hidden=16, n_blocks=1, dropout=0.0).double()


def objective(model, batch):
    x, y = batch
    pred = model(x)
    mse = torch.nn.functional.mse_loss(pred, y)
    con = SoftCLIPLoss(0.1)(pred, y)
    return {"loss": mse + con, "mse": mse}


def flat(model):
    return torch.cat([p.detach().flatten() for p in model.state_dict().values()])


def _worker(rank, world, init_file, out_file):
    torch.distributed.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world)
    model = make_model()
    trainer = Trainer(max_epochs=3, batch_size=8, lr=1e-2, seed=3)
    trainer.fit(model, objective, make_data())
    if rank == 0:
        torch.save({"weights": flat(model), "history": trainer.history}, out_file)
    torch.distributed.barrier()
    os._exit(0)  # skip gloo's C++ teardown, which sometimes aborts at interpreter exit after the work is done


@pytest.mark.slow
def test_two_processes_train_the_same_weights_as_one(tmp_path):
    one = make_model()
    trainer = Trainer(max_epochs=3, batch_size=8, lr=1e-2, seed=3)
    trainer.fit(one, objective, make_data())
    out = tmp_path / "two.pt"
    mp.start_processes(_worker, args=(2, tempfile.mktemp(dir=tmp_path), str(out)), nprocs=2, start_method="spawn")
    two = torch.load(out)
    diff = float((two["weights"] - flat(one)).abs().max())
    print(f"\n1 vs 2 gloo processes after 18 steps (MSE + SoftCLIP, global batch 8): max weight difference {diff:.1e}")
    assert diff < 1e-10
    # the epoch's logged loss is process 0's local mean; it is close to, not equal to, the global mean
    assert len(two["history"]) == 3 and two["history"][-1]["train_loss"] < two["history"][0]["train_loss"]


def test_accumulation_equals_one_big_batch():
    ref, acc = make_model(), make_model()
    data = make_data()
    mse = lambda m, b: torch.nn.functional.mse_loss(m(b[0]), b[1])  # noqa: E731 - a mean over equal micro-batches
    Trainer(max_epochs=2, batch_size=12, lr=1e-2).fit(ref, mse, data)
    Trainer(max_epochs=2, batch_size=12, lr=1e-2, accumulate=3).fit(acc, mse, data)
    torch.testing.assert_close(flat(acc), flat(ref), rtol=1e-9, atol=1e-12)


KILLED_RUN = textwrap.dedent("""
    import os, signal, sys, torch
    sys.path.insert(0, {tests!r})
    from test_training import make_data, make_model, objective
    from neurodecode.core.training import Trainer

    def die(info):
        if info["epoch"] == 1 and info["step"] == 2:  # mid-epoch, after a checkpoint at the previous step
            os.kill(os.getpid(), signal.SIGKILL)

    Trainer(max_epochs=3, batch_size=8, lr=1e-2, seed=3, checkpoint_dir={ckpt!r}, checkpoint_every=1).fit(
        make_model(), objective, make_data(), callback=die)
""")


@pytest.mark.slow
def test_resume_after_sigkill_mid_epoch_gives_the_uninterrupted_weights(tmp_path):
    ckpt = tmp_path / "run"
    script = KILLED_RUN.format(tests=os.path.dirname(__file__), ckpt=str(ckpt))
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert proc.returncode == -9, proc.stderr
    state = json.loads((ckpt / "checkpoint.json").read_text())["state"]
    assert (state["epoch"], state["step_in_epoch"]) == (1, 2)  # the checkpoint written after the 3rd step of epoch 1
    resumed = make_model()
    trainer = Trainer(max_epochs=3, batch_size=8, lr=1e-2, seed=3, checkpoint_dir=str(ckpt), checkpoint_every=1)
    trainer.fit(resumed, objective, make_data(), resume=True)
    straight = make_model()
    Trainer(max_epochs=3, batch_size=8, lr=1e-2, seed=3).fit(straight, objective, make_data())
    torch.testing.assert_close(flat(resumed), flat(straight), rtol=0, atol=1e-12)
    assert [h["epoch"] for h in trainer.history] == [0, 1, 2]
    metrics = [json.loads(line) for line in (ckpt / "metrics.jsonl").read_text().splitlines()]
    assert [m["epoch"] for m in metrics] == [0, 1, 2]


def test_checkpoint_round_trip_and_errors(tmp_path):
    model = make_model()
    opt = torch.optim.AdamW(model.parameters())
    model(torch.randn(4, 20, dtype=torch.float64)).sum().backward()
    opt.step()
    save_checkpoint(tmp_path / "c", model, {"name": "mlp"}, optimizer=opt, state={"epoch": 2})
    other, opt2 = make_model(), None
    with torch.no_grad():
        for p in other.parameters():
            p.zero_()
    opt2 = torch.optim.AdamW(other.parameters())
    meta = load_checkpoint(tmp_path / "c", other, opt2)
    assert meta["config"] == {"name": "mlp"} and meta["state"] == {"epoch": 2}
    torch.testing.assert_close(flat(other), flat(model))
    torch.testing.assert_close(opt2.state_dict()["state"][0]["exp_avg"], opt.state_dict()["state"][0]["exp_avg"])
    with pytest.raises(FileExistsError, match="a checkpoint exists; pass overwrite=True"):
        save_checkpoint(tmp_path / "c", model, overwrite=False)
    with pytest.raises(FileNotFoundError, match="expected a checkpoint folder with checkpoint.json"):
        load_checkpoint(tmp_path / "missing")
    with pytest.raises(ValueError, match="weights do not match the model: missing"):
        load_checkpoint(tmp_path / "c", ResidualMLP(20, 6, hidden=16, n_blocks=2))
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporary folders left behind


def test_trainer_bad_input():
    with pytest.raises(ValueError, match="field 'precision': expected one of"):
        Trainer(precision="fp8")
    with pytest.raises(ValueError, match="field 'precision': '16-mixed' needs a CUDA device"):
        Trainer(precision="16-mixed").fit(make_model(), objective, make_data())
    with pytest.raises(ValueError, match="field 'objective': expected a scalar loss tensor"):
        Trainer(max_epochs=1, batch_size=8).fit(make_model(), lambda m, b: m(b[0]), make_data())
    with pytest.raises(ValueError, match="must split evenly over 1 processes and 4 micro-batches"):
        Trainer(max_epochs=1, batch_size=2, accumulate=4).fit(make_model(), objective, make_data())


def test_bf16_mixed_precision_trains_on_cpu():
    model = ResidualMLP(20, 6, hidden=16, n_blocks=1, dropout=0.0)
    data = torch.utils.data.TensorDataset(*(t.float() for t in make_data().tensors))
    trainer = Trainer(max_epochs=5, batch_size=8, lr=1e-2, precision="bf16-mixed")
    trainer.fit(model, objective, data)
    assert trainer.history[-1]["train_mse"] < trainer.history[0]["train_mse"]


def test_shared_parameter_texts_fill_every_placeholder():
    """fill_doc writes DOCDICT's entries in place of %(name)s; no public docstring keeps a placeholder, and an
    unknown one is refused naming it."""
    import importlib
    import inspect
    import pkgutil
    import re

    import neurodecode
    from neurodecode.core.docs import DOCDICT, fill_doc
    from neurodecode.encoders import BraindecodeModel

    assert DOCDICT["trainer"].splitlines()[0] in BraindecodeModel.__doc__
    left = []
    for info in pkgutil.walk_packages(neurodecode.__path__, "neurodecode."):
        if info.name.endswith("__main__"):          # `python -m neurodecode` runs the command
            continue
        module = importlib.import_module(info.name)
        for name, obj in vars(module).items():
            own = getattr(obj, "__module__", "") == info.name
            if own and (inspect.isclass(obj) or inspect.isfunction(obj)) and \
                    re.search(r"^\s*%\(\w+\)s\s*$", obj.__doc__ or "", re.M):
                left.append(f"{info.name}.{name}")
    assert not left

    def f():
        """x

        Parameters
        ----------
        %(nope)s
        """

    with pytest.raises(KeyError, match="no shared parameter text 'nope'"):
        fill_doc(f)
