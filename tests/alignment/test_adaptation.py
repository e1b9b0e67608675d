"""A new subject for a cross-subject model: ridge onto the trained subjects' stimulus latents, or reset-tuning."""

import re

import numpy as np
import pytest
import torch

from neurodecode import EpochSet, save
from neurodecode.alignment import adapt_subject
from neurodecode.alignment.adaptation import adaptation_benchmark
from neurodecode.encoders import load_model, save_model
from neurodecode.encoders.models.subjects import CrossSubjectModel, pad_inputs


def epochs(n_epochs=8, n_channels=6, n_times=200):
    data = np.random.default_rng(0).normal(size=(n_epochs, n_channels, n_times)).astype(np.float32)
    return EpochSet.from_array(data, 200.0, table={"subject": ["1"] * n_epochs})


def test_adapt_errors():
    model = CrossSubjectModel({"a": 5, "b": 3}, 2, shared_dim=4, hidden=8)
    with pytest.raises(ValueError, match="method='ridge' needs the trials' stimulus ids and the reference latents"):
        adapt_subject(model, "c", np.zeros((4, 7)))
    with pytest.raises(ValueError, match="field 'stimulus': expected stimuli with reference latents, got 1 without"):
        adapt_subject(model, "d", np.zeros((2, 7)), stimulus=["s1", "s2"], reference={"s1": torch.zeros(4)})
    with pytest.raises(ValueError, match="field 'y': method='reset' needs the new subject's targets"):
        adapt_subject(model, "e", np.zeros((2, 7)), method="reset")
    assert model.subjects == ["a", "b"]           # a refused adaptation adds no layers
    with pytest.raises(AttributeError, match=r"moved to neurodecode.alignment.adapt_subject"):
        model.adapt("f", np.zeros((2, 7)))


def test_reset_tuning_trains_only_the_new_layers():
    torch.manual_seed(0)
    model = CrossSubjectModel({"a": 5, "b": 3}, 2, shared_dim=4, hidden=8)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    adapt_subject(model, "c", np.random.default_rng(3).normal(size=(4, 25)), np.ones((4, 2)), method="reset",
                  trainer={"max_epochs": 2, "batch_size": 4})
    after = model.state_dict()
    changed = {k for k in before if not torch.equal(before[k], after[k])}
    assert changed == set()                                       # the trained subjects and backbone are frozen
    assert model.subjects == ["a", "b", "c"] and not model.training


@pytest.mark.slow
@pytest.mark.parametrize("method", ["ridge", "reset"])
def test_adapt_with_ten_percent_of_a_new_subject(method):
    r = adaptation_benchmark(method, max_epochs=15)    # the README figures: benchmarks/eval_encoders.py (150 epochs)
    print(f"\nadapt({method}) with 10 %: R² {r['adapted']:.3f} vs {r['full']:.3f} with all trials; scratch "
          f"{r['scratch']:.3f}; ridge from scratch {r['ridge_scratch']:.3f}")
    assert -1 < r["ridge_scratch"] < 1                  # the plain baseline is reported beside it
    assert r["adapted"] > r["scratch"] + 0.1
    if method == "ridge":
        assert r["adapted"] >= 0.9 * r["full"]


def test_adapt_from_the_command_line(tmp_path, capsys):
    from neurodecode.cli import main
    from neurodecode.loaders.simulate import planted_subjects
    from neurodecode.core.training import Trainer

    d = planted_subjects(n_subjects=3, n_stimuli=120, seed=1)
    ids = np.array([f"img{i}" for i in range(120)])
    train, test = np.arange(90), np.arange(90, 120)
    torch.manual_seed(0)
    model = CrossSubjectModel({"s0": d["X"][0].shape[1], "s1": d["X"][1].shape[1]}, 16, shared_dim=16, hidden=32,
                              dropout=0.0)
    Xp, subj = pad_inputs([d["X"][0][train], d["X"][1][train]])
    Trainer(max_epochs=30, batch_size=30, lr=3e-3).fit(model, lambda m, b: m.loss(*b)["loss"],
                                                       torch.utils.data.TensorDataset(
                                                           torch.as_tensor(Xp), torch.as_tensor(subj),
                                                           torch.as_tensor(np.concatenate([d["Y"][train]] * 2))))
    save_model(tmp_path / "model", model)

    def store(s, rows, name):
        x = d["X"][s][rows][:, :, None]
        ep = EpochSet.from_array(x, 1.0, [f"v{i}" for i in range(x.shape[1])], "fmri-voxel",
                                 table={"subject": [f"s{s}"] * len(rows), "stimulus": ids[rows]})
        save(ep, tmp_path / name)
        return str(tmp_path / name)

    refs = [f"s{s}={store(s, train, f's{s}.h5')}" for s in (0, 1)]
    new = store(2, train[:9], "new.h5")  # 10 % of the new subject's training trials
    assert main(["adapt", str(tmp_path / "model"), new, "--name", "s2", "--method", "ridge",
                 *sum([["--reference", r] for r in refs], []), "--out", str(tmp_path / "adapted")]) == 0
    assert "added 's2' from 9 trials" in capsys.readouterr().out
    adapted = load_model(tmp_path / "adapted")
    with torch.no_grad():
        pred = adapted(torch.as_tensor(d["X"][2][test]), adapted.subject_index(["s2"] * 30)).numpy()
    r2 = 1 - ((pred - d["Y"][test]) ** 2).sum() / ((d["Y"][test] - d["Y"][test].mean(0)) ** 2).sum()
    assert r2 > 0.5, r2
    np.savez(tmp_path / "all.npz", stimulus=ids[train], target=d["Y"][train])
    assert main(["adapt", str(tmp_path / "model"), new, "--name", "s2", "--method", "ridge", "--targets",
                 str(tmp_path / "all.npz"), *sum([["--reference", r] for r in refs], []),
                 "--out", str(tmp_path / "checked")]) == 0
    out = capsys.readouterr()
    assert re.search(r"check \(2 held-out trials, adapted on 7\): adapted R² -?[0-9.]+ vs ridge from scratch on "
                     r"the same trials -?[0-9.]+", out.out + out.err)
    assert load_model(tmp_path / "checked").subjects == ["s0", "s1", "s2"]      # the check adapted a copy
    np.savez(tmp_path / "t.npz", stimulus=ids[train[:5]], target=d["Y"][train[:5]])
    assert main(["adapt", str(tmp_path / "model"), new, "--name", "s2", "--method", "reset", "--targets",
                 str(tmp_path / "t.npz"), "--out", str(tmp_path / "r")]) == 2
    assert "field 'stimulus': expected a target for every trial's stimulus, got none for 4" in capsys.readouterr().err
    assert main(["adapt", str(tmp_path / "model"), new, "--name", "s2", "--out", str(tmp_path / "r")]) == 2
    assert "method 'ridge' needs the stores of trained subjects (--reference SUBJECT=STORE)" in capsys.readouterr().err
    save(epochs(8), tmp_path / "eeg.h5")
    assert main(["adapt", str(tmp_path / "model"), str(tmp_path / "eeg.h5"), "--name", "s2", "--out",
                 str(tmp_path / "r")]) == 2
    assert "expected single-trial responses (n_trials, n_voxels, 1), got 8 × 6 × 200" in capsys.readouterr().err


