"""The same recording twice — one file listed twice, a copy in another session folder, one recording under two
subject ids — is refused where sets are joined (``concatenate``, ``EpochCollection``), naming both; it would
otherwise sit on both sides of a cross-validation split and inflate the scores."""

from __future__ import annotations

import numpy as np
import pytest

from conftest import make_epochs
from neurodecode.core.epochs import EpochCollection, concatenate, duplicate_recordings, epoch_digests


def test_a_set_joined_with_itself_or_an_overlapping_part_is_refused_naming_both():
    ep = make_epochs(n_epochs=7)
    with pytest.raises(ValueError, match=r"field 'epoch_sets': expected distinct recordings.*set 1 \(no file "
                                         r"recorded; subject sub-01\) repeats 7 of its 7 epochs from set 0"):
        concatenate([ep, ep])
    with pytest.raises(ValueError, match="set 1 .* repeats 2 of its 4 epochs from set 0"):
        concatenate([ep[:5], ep[3:]])
    # on purpose
    assert concatenate([ep, ep], allow_duplicates=True).n_epochs == 14
    # distinct recordings with the same processing join as before
    assert concatenate([ep, _other(ep)]).n_epochs == 14


def _other(ep, seed=1):
    """Another recording with the same channels and processing."""
    return ep.replace(data=np.random.default_rng(seed).normal(size=ep.data.shape).astype(np.float32) * 1e-5)


def test_flat_epochs_are_not_taken_for_copies():
    a = make_epochs(n_epochs=4)
    b = _other(a)
    flat_a = a.replace(data=np.zeros_like(a.data))
    flat_b = b.replace(data=np.zeros_like(b.data))
    assert concatenate([flat_a, flat_b]).n_epochs == 8
    assert epoch_digests(flat_a.data) == [None] * 4
    assert duplicate_recordings([flat_a, flat_b]) == []


def test_one_recording_under_two_subject_ids_is_refused():
    a = make_epochs(subject="sub-01")
    b = a.replace(table=a.table.assign(subject="sub-02"))
    with pytest.raises(ValueError, match=r"field 'sets': expected distinct recordings for distinct subjects.*"
                                         r"subject 'sub-02' .* repeats 7 of its 7 epochs from subject 'sub-01'"):
        EpochCollection({"sub-01": a, "sub-02": b})
    ok = EpochCollection({"sub-01": a, "sub-02": _other(b)})
    assert len(ok) == 2


@pytest.mark.realdata
def test_one_edf_listed_twice_or_copied_is_refused_naming_both_files(tmp_path, shared_data):
    from neurodecode.loaders.meeg import load_recordings

    edf = shared_data / "eegmmidb_S001" / "S001R04.edf"
    copy = tmp_path / "ses-2" / "S001R04.edf"                 # the same file in another session folder
    copy.parent.mkdir()
    copy.symlink_to(edf)
    kw = {"labels": ["T1", "T2"], "tmin": 0.0, "tmax": 2.0}
    with pytest.raises(ValueError, match=r"field 'path': expected distinct recordings.*ses-2/S001R04.edf "
                                         r"\(S001R04.edf\) repeats 15 of its 15 epochs from .*eegmmidb_S001/S001R04.edf"):
        load_recordings([edf, copy], **kw)
    # two distinct runs of the subject load
    ep = load_recordings([edf, shared_data / "eegmmidb_S001" / "S001R08.edf"], **kw)
    assert ep.n_epochs == 30


@pytest.mark.realdata
def test_a_subject_with_one_unreadable_run_loads_with_skip_and_says_which(tmp_path, shared_data):
    from neurodecode.loaders.meeg import load_recordings

    runs = [shared_data / "eegmmidb_S001" / f"S001R{r:02d}.edf" for r in (4, 8)]
    cut = tmp_path / "S001R12.edf"                             # a run truncated mid-file
    data = (shared_data / "eegmmidb_S001" / "S001R12.edf").read_bytes()
    cut.write_bytes(data[: len(data) // 2])
    kw = {"labels": ["T1", "T2"], "tmin": 0.0, "tmax": 2.0}
    with pytest.raises(ValueError, match="S001R12.edf"):
        load_recordings([*runs, cut], **kw)                     # the default stops at the bad run
    ep = load_recordings([*runs, cut], on_error="skip", **kw)
    assert ep.n_epochs == 30 and sorted(ep.table["run"].unique()) == ["1", "2"]
    skipped = [s for s in ep.provenance if s.get("step") == "skipped_runs"]
    assert len(skipped) == 1 and skipped[0]["runs"][0]["path"] == str(cut)
    assert "S001R12.edf" in skipped[0]["runs"][0]["error"]
    with pytest.raises(ValueError, match=r"field 'path': expected at least one readable run, got none: .*S001R12"):
        load_recordings([cut], on_error="skip", **kw)
    with pytest.raises(ValueError, match="field 'on_error'"):
        load_recordings(runs, on_error="ignore", **kw)
