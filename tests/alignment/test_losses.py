"""Contrastive losses: hand-computed values, MindEye's formulas, and equality of 1 and 2 processes."""

import os
import tempfile

import numpy as np
import pytest
import torch
import torch.multiprocessing as mp

from neurodecode.encoders.models.contrastive import BiMixCoLoss, InfoNCELoss, SoftCLIPLoss, mixco


def log_softmax(z):
    z = z - z.max(1, keepdims=True)
    return z - np.log(np.exp(z).sum(1, keepdims=True))


def unit(a):
    return a / np.linalg.norm(a, axis=1, keepdims=True)


B = np.array([[1.0, 0.0], [0.6, 0.8], [0.0, 1.0]])
T = np.array([[0.9, 0.1], [0.5, 0.5], [-0.2, 1.0]])


def test_infonce_hand_computed():
    S = unit(B) @ unit(T).T / 0.1
    expected = (-np.diag(log_softmax(S)).mean() - np.diag(log_softmax(S.T)).mean()) / 2
    got = InfoNCELoss(temperature=0.1)(torch.tensor(B), torch.tensor(T))
    assert float(got) == pytest.approx(expected, rel=1e-12)
    one_way = InfoNCELoss(temperature=0.1, bidirectional=False)(torch.tensor(B), torch.tensor(T))
    assert float(one_way) == pytest.approx(-np.diag(log_softmax(S)).mean(), rel=1e-12)


def test_softclip_hand_computed():
    tb, tt = unit(B), unit(T)
    soft = np.exp(log_softmax(tt @ tt.T / 0.1))
    expected = (-(soft * log_softmax(tb @ tt.T / 0.1)).sum(1).mean()
                - (soft * log_softmax(tt @ tb.T / 0.1)).sum(1).mean()) / 2
    assert float(SoftCLIPLoss(temperature=0.1)(torch.tensor(B), torch.tensor(T))) == pytest.approx(expected, rel=1e-12)


def test_bimixco_matches_mindeye_formula():
    """MindEye's mixco_nce: probs = diag(betas); probs[i, perm[i]] = 1 - betas; both directions (probs.T)."""
    torch.manual_seed(0)
    brain, target = torch.randn(6, 4, dtype=torch.float64), torch.randn(6, 4, dtype=torch.float64)
    perm = torch.tensor([3, 0, 5, 1, 2, 4])
    betas = torch.tensor([0.3, 1.0, 0.8, 1.0, 0.1, 0.6], dtype=torch.float64)
    S = torch.nn.functional.normalize(brain, dim=-1) @ torch.nn.functional.normalize(target, dim=-1).T / 0.05
    probs = torch.diag(betas)
    probs[torch.arange(6), perm] = 1 - betas
    expected = (-(S.log_softmax(-1) * probs).sum(-1).mean() - (S.T.log_softmax(-1) * probs.T).sum(-1).mean()) / 2
    assert float(BiMixCoLoss(temperature=0.05)(brain, target, perm, betas)) == pytest.approx(float(expected), rel=1e-12)


def test_mixco_mixes_the_selected_items():
    torch.manual_seed(1)
    x = torch.randn(10, 7)
    mixed, perm, betas, select = mixco(x, s_thresh=0.5)
    np.testing.assert_allclose(mixed[~select], x[~select])
    i = int(torch.nonzero(select)[0, 0])
    np.testing.assert_allclose(mixed[i], betas[i] * x[i] + (1 - betas[i]) * x[perm[i]], rtol=1e-6)
    assert ((betas > 0) & (betas <= 1)).all()


def test_bad_shapes():
    with pytest.raises(ValueError, match=r"field 'brain': expected \(batch, embed_dim\) like 'target' \(3, 2\), got \(3, 3\)"):
        InfoNCELoss()(torch.zeros(3, 3), torch.zeros(3, 2))
    with pytest.raises(ValueError, match=r"field 'temperature': expected > 0, got 0"):
        SoftCLIPLoss(temperature=0)


GLOBAL_BATCH = 8


def _model_and_data():
    torch.manual_seed(123)
    model = torch.nn.Linear(5, 4).double()
    x = torch.randn(GLOBAL_BATCH, 5, dtype=torch.float64)
    target = torch.randn(GLOBAL_BATCH, 4, dtype=torch.float64)
    return model, x, target


def _step(loss_name, model, x, target):
    loss_fn = {"infonce": InfoNCELoss(), "softclip": SoftCLIPLoss()}[loss_name]
    loss = loss_fn(model(x), target)
    loss.backward()
    return float(loss.detach()), torch.cat([p.grad.flatten() for p in model.parameters()])


def _worker(rank, world, init_file, loss_name, out_file):
    torch.distributed.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world)
    model, x, target = _model_and_data()
    half = GLOBAL_BATCH // world
    local = slice(rank * half, (rank + 1) * half)
    loss, grad = _step(loss_name, model, x[local], target[local])
    # what DDP does: average the gradients (and we average the losses) across processes
    stats = torch.cat([torch.tensor([loss], dtype=torch.float64), grad])
    torch.distributed.all_reduce(stats)
    if rank == 0:
        torch.save(stats / world, out_file)
    torch.distributed.barrier()
    os._exit(0)  # skip gloo's C++ teardown, which sometimes aborts at interpreter exit after the work is done


@pytest.mark.slow
@pytest.mark.parametrize("loss_name", ["infonce", "softclip"])
def test_two_processes_equal_one_process(loss_name, tmp_path):
    model, x, target = _model_and_data()
    loss1, grad1 = _step(loss_name, model, x, target)
    init_file = tempfile.mktemp(dir=tmp_path)
    out = tmp_path / "stats.pt"
    mp.start_processes(_worker, args=(2, init_file, loss_name, str(out)), nprocs=2, start_method="spawn")
    stats = torch.load(out)
    print(f"\n{loss_name}: 1 process loss {loss1:.10f}, 2 processes {float(stats[0]):.10f}, max grad diff "
          f"{float((stats[1:] - grad1).abs().max()):.2e}")
    assert float(stats[0]) == pytest.approx(loss1, rel=1e-12)
    np.testing.assert_allclose(stats[1:].numpy(), grad1.numpy(), rtol=1e-10, atol=1e-12)
