"""torch Dataset, leak-free splits and per-subject batching."""

import numpy as np
import pandas as pd
import pytest
import torch
from conftest import make_epochs

from neurodecode import EpochCollection, EpochStore, open_store, save
from neurodecode.core.datasets import (EpochDataset, LeakError, SharedStimulusWarning, SubjectBatchSampler,
                                       check_split, split_epochs)


def study_table():
    """2 subjects × 2 sessions × 3 runs × 4 trials; stimuli s0..s3 repeat in every run, 'u*' are unique."""
    rows = []
    for subject in ("01", "02"):
        for session in ("a", "b"):
            for run in ("1", "2", "3"):
                for trial in range(4):
                    stim = f"s{trial}" if trial < 2 else f"u{subject}{session}{run}{trial}"
                    rows.append({"subject": subject, "session": session, "run": run, "stimulus": stim,
                                 "label": trial % 2, "onset": float(trial)})
    return pd.DataFrame(rows)


@pytest.mark.parametrize("by, n_groups", [("run", 12), ("session", 4), ("subject", 2)])
def test_split_never_shares_a_group(by, n_groups):
    table = study_table()
    with pytest.warns(SharedStimulusWarning, match=r"stimulus id\(s\) appear in more than one part.*'s0'"):
        split = split_epochs(table, by=by, test=0.5, seed=3)
    keys = {"run": ["subject", "session", "run"], "session": ["subject", "session"], "subject": ["subject"]}[by]
    train_groups = set(map(tuple, table.iloc[split.train][keys].to_numpy()))
    test_groups = set(map(tuple, table.iloc[split.test][keys].to_numpy()))
    assert not train_groups & test_groups
    assert len(train_groups) + len(test_groups) == n_groups
    assert len(test_groups) == n_groups // 2
    assert sorted(np.concatenate([split.train, split.test]).tolist()) == list(range(len(table)))
    assert set(split.shared_stimuli) == {"s0", "s1"}  # only the repeated stimuli are reported
    assert split.shared_stimuli["s0"] == ["train", "test"]


def test_split_by_named_runs_with_validation_part():
    table = study_table()
    split = split_epochs(table, by="run", test=["3"], valid=["2"], on_shared_stimulus="ignore")
    assert set(table.iloc[split.test]["run"]) == {"3"} and set(table.iloc[split.valid]["run"]) == {"2"}
    assert set(table.iloc[split.train]["run"]) == {"1"}
    assert len(split.groups["test"]) == 4  # run 3 of each subject × session
    assert "split by run" in split.summary()


def test_split_same_seed_same_split_and_errors():
    table = study_table()
    a = split_epochs(table, by="run", test=0.25, seed=7, on_shared_stimulus="ignore")
    b = split_epochs(table, by="run", test=0.25, seed=7, on_shared_stimulus="ignore")
    np.testing.assert_array_equal(a.test, b.test)
    with pytest.raises(LeakError, match=r"stimulus id\(s\) appear in more than one part"):
        split_epochs(table, by="subject", test=["02"], on_shared_stimulus="raise")
    with pytest.raises(ValueError, match=r"field 'test': expected values of column 'run' among the remaining groups, got unknown or already used \['9'\]"):
        split_epochs(table, by="run", test=["9"])
    with pytest.raises(ValueError, match=r"field 'by': expected one of \['subject', 'session', 'run'\], got 'trial'"):
        split_epochs(table, by="trial")
    broken = table.assign(run=table["run"].where(table.index != 5))
    with pytest.raises(ValueError, match=r"field 'table\['run'\]': expected a value in every row to split by run without leaks, got 1 missing value\(s\), first at row 5"):
        split_epochs(broken, by="run")
    with pytest.raises(ValueError, match=r"field 'test': expected fewer groups than the 2 subject\(s\)"):
        split_epochs(table, by="subject", test=0.9)


def test_check_split_catches_leaks():
    table = study_table()
    with pytest.raises(LeakError, match=r"row 3 is in parts 'train' and 'test'"):
        check_split(table, {"train": [0, 1, 2, 3], "test": [3, 4]})
    with pytest.raises(LeakError, match=r"run \{'subject': '01', 'session': 'a', 'run': '1'\} has epochs in parts 'train' and 'test'"):
        check_split(table, {"train": [0, 1], "test": [2, 3]}, by="run")
    ok = check_split(table, {"train": [0, 1, 2, 3], "test": [4, 5, 6, 7]}, by="run", on_shared_stimulus="ignore")
    assert set(ok.shared_stimuli) == {"s0", "s1"}


def test_dataset_over_store_reads_lazily_and_encodes_labels(tmp_path, epochs):
    save(epochs, tmp_path / "e.h5")
    with EpochStore(tmp_path / "e.h5") as store:
        ds = EpochDataset(store, indices=[6, 0, 3], target="label")
        assert len(ds) == 3 and ds.classes == ["face", "house"]
        item = ds[0]
        assert item["x"].dtype == torch.float32 and item["x"].shape == (5, 11)
        np.testing.assert_array_equal(item["x"].numpy(), epochs.data[6])
        assert int(item["y"]) == ds.classes.index(epochs.table["label"][6])
        assert int(item["index"]) == 6 and int(item["subject"]) == 0
        batch = next(iter(torch.utils.data.DataLoader(ds, batch_size=3)))
        assert batch["x"].shape == (3, 5, 11)
    numeric = EpochDataset(epochs, indices=[0, 1, 3], target="reaction_time")  # row 2 has no reaction time
    assert numeric.classes is None and numeric[0]["y"].dtype == torch.float32
    assert float(numeric[2]["y"]) == pytest.approx(0.33)
    with pytest.raises(ValueError, match=r"field 'table\['reaction_time'\]': expected a target value for every served epoch, got 1 missing value\(s\), first at row 2"):
        EpochDataset(epochs, target="reaction_time")
    assert EpochDataset(epochs, target="trial")[4]["y"].dtype == torch.int64
    with pytest.raises(ValueError, match=r"field 'target': expected a table column"):
        EpochDataset(epochs, target="nope")
    with pytest.raises(IndexError, match=r"field 'indices': expected rows in \[0, 7\)"):
        EpochDataset(epochs, indices=[7])


def test_multi_subject_batches_with_different_channel_counts(tmp_path):
    coll = EpochCollection([make_epochs(n_epochs=9, n_channels=5, subject="sub-01"),
                            make_epochs(n_epochs=6, n_channels=8, n_times=11, subject="sub-02", seed=1)])
    save(coll, tmp_path / "study.h5")
    for source in (coll, open_store(tmp_path / "study.h5")):
        ds = EpochDataset(source, target="label")
        assert ds.subjects == ["sub-01", "sub-02"] and len(ds) == 15
        sampler = SubjectBatchSampler(ds.subject_codes, batch_size=4, seed=0)
        loader = torch.utils.data.DataLoader(ds, batch_sampler=sampler)
        seen = []
        for batch in loader:
            subjects = batch["subject"].unique()
            assert len(subjects) == 1
            assert batch["x"].shape[1] == (5 if int(subjects[0]) == 0 else 8)
            seen += batch["index"].tolist()
        assert sorted(seen) == list(range(15)) and len(sampler) == 3 + 2
        sampler.set_epoch(1)
        assert list(sampler) != list(SubjectBatchSampler(ds.subject_codes, batch_size=4, seed=0))
        if hasattr(source, "close"):
            source.close()


def test_subject_sampler_drop_last_and_errors():
    codes = np.array([0] * 5 + [1] * 3)
    sampler = SubjectBatchSampler(codes, batch_size=2, shuffle=False, drop_last=True)
    assert list(sampler) == [[0, 1], [2, 3], [5, 6]] and len(sampler) == 3
    with pytest.raises(ValueError, match="field 'batch_size': expected a positive integer, got 0"):
        SubjectBatchSampler(codes, batch_size=0)


@pytest.mark.slow
def test_stores_travel_to_dataloader_workers(tmp_path):
    """Stores pickle as their path, so DataLoader workers (fork or spawn) reopen them."""
    import pickle

    coll = EpochCollection([make_epochs(n_epochs=8, subject="sub-01"), make_epochs(n_channels=3, subject="sub-02")])
    save(coll, tmp_path / "c.h5")
    with open_store(tmp_path / "c.h5") as store:
        clone = pickle.loads(pickle.dumps(store))
        np.testing.assert_array_equal(clone["sub-02"][4], coll["sub-02"].data[4])
        clone.close()
        ds = EpochDataset(store, target="label")
        sampler = SubjectBatchSampler(ds.subject_codes, batch_size=3, shuffle=False)
        loader = torch.utils.data.DataLoader(ds, batch_sampler=sampler, num_workers=2,
                                             multiprocessing_context="spawn")
        got = {int(i): x for batch in loader for i, x in zip(batch["index"], batch["x"])}
    assert sorted(got) == list(range(15))
    np.testing.assert_array_equal(got[10].numpy(), coll["sub-02"].data[2])
