"""MOABB interop on the EEGMMIDB runs of ../shared/data, offline: MOABB reads them where its fetcher looks."""

import os

import numpy as np
import pytest


@pytest.fixture
def moabb_eegmmidb(shared_data, tmp_path, monkeypatch):
    """PhysionetMI subject 1, imagined fists (runs 4/8/12), with the shared EDF files linked where MOABB's
    downloader looks, NEMAR off and every MNE/MOABB path inside tmp_path (nothing written to ~/.mne or ~/mne_data)."""
    pytest.importorskip("moabb", reason="MOABB is not installed (pip install -e '.[moabb]')")
    from neurodecode.loaders.moabb import offline_physionet_mi

    for key in ("MNE_DATASETS_EEGBCI_PATH", "MNE_DATA", "MOABB_DOWNLOAD_PROVIDER"):
        monkeypatch.setenv(key, "")                   # restored after the test (offline_physionet_mi sets them)
    dataset = offline_physionet_mi(shared_data, tmp_path, [1])
    assert os.environ["MNE_DATA"] == str(tmp_path) and (tmp_path / "MNE-eegbci-data").is_dir()
    with pytest.raises(FileNotFoundError, match=r"S011R04.edf: missing \(EEGMMIDB S011 run 4"):
        offline_physionet_mi(shared_data, tmp_path, [11])
    return dataset


@pytest.mark.slow
@pytest.mark.realdata
def test_moabb_and_neurodecode_score_the_same_epochs_and_folds_equally(moabb_eegmmidb, tmp_path):
    from moabb.evaluations import WithinSessionEvaluation
    from moabb.paradigms import LeftRightImagery

    from neurodecode.evaluation import evaluate
    from neurodecode.evaluation.classification import recipe_classifier
    from neurodecode.loaders.moabb import from_moabb

    paradigm = LeftRightImagery(fmin=7, fmax=30)
    epochs = from_moabb(moabb_eegmmidb, paradigm)
    X, y, meta = paradigm.get_data(moabb_eegmmidb, [1])
    assert epochs.shape == X.shape == (45, 64, 481) and epochs.sfreq == 160.0
    np.testing.assert_allclose(epochs.data * 1e6, X, rtol=1e-5, atol=1e-4)      # MOABB's arrays are in µV
    assert epochs.table["label"].tolist() == list(y) and set(epochs.table["dataset"]) == {moabb_eegmmidb.code}
    assert epochs.table["subject"].unique().tolist() == ["1"] and list(epochs.channels.names[:2]) == ["FC5", "FC3"]
    # a neurodecode recipe as a MOABB pipeline, and MOABB's epochs in neurodecode's evaluation, same seed
    moabb = WithinSessionEvaluation(paradigm=paradigm, datasets=[moabb_eegmmidb], overwrite=True, random_state=42,
                                    hdf5_path=str(tmp_path / "results"), save_model=False)
    theirs = moabb.process({"tangent_space": recipe_classifier("tangent_space")})["score"].item()
    ours = evaluate(epochs, recipe_classifier("tangent_space"), "within_session", seed=42).summary()
    auc = ours.set_index("metric").loc["roc_auc", "mean"]
    print(f"\nEEGMMIDB S001 imagery via MOABB: MOABB within-session ROC-AUC {theirs:.4f}, neurodecode {auc:.4f}")
    assert auc == pytest.approx(theirs, abs=1e-6)                                 # MOABB stores float32


def test_a_swapped_band_is_refused_before_moabb_filters_it_as_a_band_stop():
    from types import SimpleNamespace

    from neurodecode.loaders.moabb import from_moabb

    dataset = SimpleNamespace(subject_list=[1, 2], code="Fake")
    paradigm = SimpleNamespace(filters=[(30.0, 7.0)], get_data=lambda *a, **k: pytest.fail("data were read"))
    with pytest.raises(ValueError, match=r"field 'paradigm.filters': expected bands \(fmin, fmax\) with fmin < fmax"):
        from_moabb(dataset, paradigm, subjects=[1])
