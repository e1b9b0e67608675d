"""Haufe patterns of a linear decoder: MNE's LinearModel/get_coef on the epochs, back in their layout, as topomaps
and as a NIfTI image."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from neurodecode.core.epochs import Channels, EpochSet
from neurodecode.evaluation.patterns import linear_patterns


def _epochs(n=2000, seed=0):
    """The classes differ on Cz only, buried in noise that C4 records alone: the best filter subtracts C4 from Cz
    (a large weight on C4), while the pattern — where the signal is — is on Cz, nothing on C4 (Haufe et al. 2014)."""
    rng = np.random.default_rng(seed)
    y = np.array(["a", "b"] * (n // 2))
    source = np.where(y == "b", 1.0, -1.0)[:, None] + 0.3 * rng.normal(size=(n, 3))
    noise = rng.normal(size=(n, 3)) * 3
    data = np.zeros((n, 4, 3))
    data[:, 0] = rng.normal(size=(n, 3))               # C3: unrelated
    data[:, 1] = source + noise                        # Cz: the signal, under the noise
    data[:, 2] = noise + 0.1 * rng.normal(size=(n, 3))  # C4: the noise alone
    data[:, 3] = rng.normal(size=(n, 3))               # Pz: unrelated
    table = pd.DataFrame({"subject": "1", "label": y})
    return EpochSet(data.astype(np.float32), 10.0, Channels(["C3", "Cz", "C4", "Pz"], "eeg"), table, tmin=0.0)


def test_patterns_equal_mnes_and_show_the_source_not_the_noise_cancelling_channel():
    from mne.decoding import LinearModel, Vectorizer, get_coef
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    ep = _epochs()
    p = linear_patterns(ep)
    assert p.patterns.shape == p.filters.shape == (1, 4, 3) and list(p.classes) == ["a", "b"]
    clf = make_pipeline(Vectorizer(), StandardScaler(), LinearModel(LogisticRegression(max_iter=1000)))
    clf.fit(ep.data.astype(np.float64), ep.table["label"].to_numpy())
    for attr, mine in (("patterns_", p.patterns[0]), ("filters_", p.filters[0])):
        theirs = get_coef(clf, attr, inverse_transform=True)
        theirs = theirs.T if theirs.shape == (3, 4) else theirs     # MNE >= 1.9 gives (n_times, n_channels)
        np.testing.assert_allclose(mine, theirs, rtol=1e-10)
    pat = np.abs(p.patterns[0]).mean(axis=1)
    filt = np.abs(p.filters[0]).mean(axis=1)
    # the pattern is where the signal is (Cz), not on C4 (noise only), which the filter weighs to cancel the noise
    assert pat.argmax() == 1 and pat[2] < 0.2 * pat[1]
    assert filt[2] > 0.5 * filt[1] and filt[2] > 5 * pat[2] / pat[1] * filt[1]
    assert (p.patterns[0, 1] > 0).all()                            # larger for "b", the positive class


def test_bad_requests_are_refused_naming_the_field():
    from sklearn.ensemble import RandomForestClassifier

    ep = _epochs()
    with pytest.raises(ValueError, match=r"field 'table\['label'\]': expected at least two classes"):
        linear_patterns(ep.replace(table=ep.table.assign(label="a")))
    with pytest.raises(ValueError, match=r"field 'table\['cond'\]'"):
        linear_patterns(ep, target="cond")
    with pytest.raises(TypeError, match="field 'estimator': expected a linear classifier"):
        linear_patterns(ep, RandomForestClassifier(n_estimators=3))
    p = linear_patterns(ep)
    with pytest.raises(ValueError, match="field 'output'"):
        p.to_evoked(output=1)
    with pytest.raises(ValueError, match="field 'kind'"):
        p.to_evoked(kind="weights")


@pytest.mark.realdata
def test_patterns_on_real_eeg_as_topomaps_and_on_fmri_as_a_brain_image(shared_data, tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    from neurodecode.loaders.fmri import read_volumes
    from neurodecode.loaders.public import eegmmidb

    ep = eegmmidb(shared_data, ["S001"], tmin=1.0, tmax=1.2)
    p = linear_patterns(ep)
    evoked = p.to_evoked()
    assert evoked.data.shape == (64, ep.n_times) and evoked.info["ch_names"][:2] == list(ep.channels.names[:2])
    p.plot_topomap(times=[1.0, 1.1], path=tmp_path / "topo.png")
    assert (tmp_path / "topo.png").stat().st_size > 5_000
    folder = shared_data / "haxby2001_slice" / "tutorial_slice"
    labels, runs = np.loadtxt(folder / "attributes_literal.txt", dtype=str).T
    vols = read_volumes(folder / "bold.nii.gz", folder / "mask.nii.gz", labels=labels, runs=runs, subject="1")
    fh = vols[vols.table["label"].isin(["face", "house"]).to_numpy()]
    img = linear_patterns(fh).to_nifti()
    mask = np.asarray(__import__("nibabel").load(folder / "mask.nii.gz").dataobj) > 0
    data = np.asarray(img.dataobj)
    assert data.shape == mask.shape and np.count_nonzero(data) == mask.sum() and not data[~mask].any()


@pytest.mark.realdata
def test_searchlight_equals_nilearns_on_the_same_volumes_and_refuses_non_voxel_epochs(shared_data):
    import nibabel as nib
    from nilearn.decoding import SearchLight
    from sklearn.model_selection import LeaveOneGroupOut

    from neurodecode.evaluation.patterns import searchlight
    from neurodecode.loaders.fmri import read_volumes, to_nifti

    folder = shared_data / "haxby2001_slice" / "tutorial_slice"
    labels, runs = np.loadtxt(folder / "attributes_literal.txt", dtype=str).T
    vols = read_volumes(folder / "bold.nii.gz", folder / "mask.nii.gz", labels=labels, runs=runs, subject="1")
    keep = vols.table["label"].isin(["face", "house"]) & vols.table["run"].astype(int).lt(4)
    fh = vols[keep.to_numpy()]
    img = searchlight(fh, radius=4.0)
    # nilearn directly: the same volumes as a 4-D image, the mask, leave one run out
    mask = nib.load(folder / "mask.nii.gz")
    volumes = nib.concat_images([to_nifti(fh.data[k, :, 0], fh) for k in range(fh.n_epochs)])
    sl = SearchLight(mask_img=mask, radius=4.0, estimator="svc", cv=LeaveOneGroupOut(), verbose=0)
    sl.fit(volumes, fh.table["label"].astype(str).to_numpy(), groups=fh.table["run"].astype(str).to_numpy())
    inside = np.asarray(mask.dataobj) > 0
    np.testing.assert_allclose(np.asarray(img.dataobj)[inside], sl.scores_[inside], atol=1e-6)
    assert np.asarray(img.dataobj)[inside].max() > 0.9                  # face/house sits in this slice
    with pytest.raises(ValueError, match="field 'epochs': expected voxel epochs"):
        searchlight(_epochs(n=40))
    with pytest.raises(ValueError, match="field 'radius'"):
        searchlight(fh, radius=0)


@pytest.mark.realdata
@pytest.mark.parametrize("kind", ["decoder", "frem"])
def test_whole_brain_decoders_equal_nilearns_on_the_same_volumes(shared_data, kind):
    import warnings

    import nibabel as nib
    from nilearn.decoding import Decoder, FREMClassifier
    from sklearn.model_selection import LeaveOneGroupOut

    from neurodecode.evaluation.patterns import whole_brain_decoder
    from neurodecode.loaders.fmri import read_volumes, to_nifti

    folder = shared_data / "haxby2001_slice" / "tutorial_slice"
    labels, runs = np.loadtxt(folder / "attributes_literal.txt", dtype=str).T
    vols = read_volumes(folder / "bold.nii.gz", folder / "mask.nii.gz", labels=labels, runs=runs, subject="1")
    keep = vols.table["label"].isin(["face", "house"]) & vols.table["run"].astype(int).lt(4)
    fh = vols[keep.to_numpy()]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)          # nilearn: a slice is smaller than a brain mask
        ours = whole_brain_decoder(fh, kind=kind)
        volumes = nib.concat_images([to_nifti(fh.data[k, :, 0], fh) for k in range(fh.n_epochs)])
        cls = Decoder if kind == "decoder" else FREMClassifier
        theirs = cls(estimator="svc", mask=nib.load(folder / "mask.nii.gz"), cv=LeaveOneGroupOut(),
                     screening_percentile=20, scoring="roc_auc", standardize="zscore_sample").fit(
            volumes, fh.table["label"].astype(str).to_numpy(), groups=fh.table["run"].astype(str).to_numpy())
    for label in ("face", "house"):
        np.testing.assert_allclose(ours.cv_scores_[label], theirs.cv_scores_[label], atol=1e-10)
    assert len(ours.cv_scores_["face"]) == 4 and np.mean(ours.cv_scores_["face"]) > 0.9
    np.testing.assert_allclose(np.asarray(ours.coef_img_["house"].dataobj),
                               np.asarray(theirs.coef_img_["house"].dataobj), atol=1e-8)
    with pytest.raises(ValueError, match="field 'kind'"):
        whole_brain_decoder(fh, kind="searchlight")
