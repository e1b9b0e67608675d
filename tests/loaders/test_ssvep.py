"""SSVEP: the filter-bank step, the exoskeleton set's loader, MOABB's SSVEP classifiers, the reference figures."""

import mne
import numpy as np
import pytest

from neurodecode.loaders.preprocessing import apply_steps, check_steps, ssvep_frequencies, ssvep_steps

#: the data README's reference: FIR f ± 0.5 Hz at 13/17/21 Hz, 2-5 s, sample covariances, TS + LR, 5-fold (seed 42)
REFERENCE = {"1": 0.704, "2": 0.797, "3": 0.968, "4": 0.812, "5": 0.610, "6": 0.827}


def _raw(sfreq=256.0, seconds=20.0, freqs=(13.0, 29.0)):
    """Two EEG channels (positions from a montage) carrying sinusoids at ``freqs`` plus a stim channel."""
    t = np.arange(int(sfreq * seconds)) / sfreq
    data = np.stack([np.sin(2 * np.pi * freqs[0] * t), np.sin(2 * np.pi * freqs[1] * t), np.zeros_like(t)]) * 1e-5
    raw = mne.io.RawArray(data, mne.create_info(["O1", "O2", "STI"], sfreq, ["eeg", "eeg", "stim"]), verbose="error")
    raw.set_montage("standard_1020", verbose="error")
    return raw


def test_filter_bank_stacks_bands_as_channels_and_records_their_actual_pass_bands():
    raw = _raw()
    out, applied = apply_steps(raw, [{"step": "filter_bank", "frequencies": [13], "harmonics": 2, "method": "iir"}])
    assert out.ch_names == ["O1@12.5-13.5Hz", "O2@12.5-13.5Hz", "O1@25.5-26.5Hz", "O2@25.5-26.5Hz", "STI"]
    assert out.get_channel_types() == ["eeg"] * 4 + ["stim"]
    pos = {ch["ch_name"]: ch["loc"][:3] for ch in out.info["chs"]}
    np.testing.assert_array_equal(pos["O1@25.5-26.5Hz"], raw.info["chs"][0]["loc"][:3])      # positions kept
    step = applied[0]
    assert [f["band"] for f in step["filters"]] == [[12.5, 13.5], [25.5, 26.5]] and step["order"] == 4
    # Butterworth forward-backward: the -3 dB edges sit just inside the asked band
    for f in step["filters"]:
        lo, hi = f["passband"]
        assert f["band"][0] < lo < f["band"][0] + 0.1 and f["band"][1] - 0.1 < hi < f["band"][1]
    x = out.get_data()
    mid = slice(1024, 4096)                                             # away from the edges
    # O1 holds 13 Hz: passed by its band, removed by the 26 Hz one; O2 holds 29 Hz: removed by both
    assert np.std(x[0, mid]) > 0.9 * np.std(raw.get_data()[0, mid])
    assert np.std(x[2, mid]) < 0.02 * np.std(raw.get_data()[0, mid])
    assert np.std(x[1, mid]) < 0.02 * np.std(raw.get_data()[1, mid])
    # MNE's FIR design with automatic transition bands passes far wider than the nominal 1 Hz: it says so
    _, fir = apply_steps(raw, [{"step": "filter_bank", "bands": [[12.5, 13.5]]}])
    lo, hi = fir[0]["filters"][0]["passband"]
    assert lo < 12.0 and hi > 14.0


def test_filter_bank_steps_are_checked_naming_the_field():
    bad = [({"frequencies": [13], "bands": [[1, 2]]}, "exactly one of 'bands'"),
           ({"bands": [[14, 12]]}, "field 'bands': expected [low, high] with 0 < low < high"),
           ({"frequencies": ["13"]}, "field 'frequencies'"),
           ({"frequencies": [13], "harmonics": 0}, "field 'harmonics'"),
           ({"frequencies": [13], "width": 30}, "field 'width'"),
           ({"frequencies": [13], "method": "fft"}, "field 'method'"),
           ({"frequencies": [13], "order": 4}, "field 'order': an IIR order needs method 'iir'"),
           ({"bands": [[1, 2]], "harmonics": 2}, "fields 'harmonics'/'width' go with 'frequencies'"),
           ({"frequencies": [13, 13]}, "expected distinct bands")]
    for params, message in bad:
        with pytest.raises(ValueError, match="preprocessing step 0 \\('filter_bank'\\)") as err:
            check_steps([{"step": "filter_bank", **params}])
        assert message in str(err.value), params
    with pytest.raises(ValueError, match="below the Nyquist frequency 128 Hz"):
        apply_steps(_raw(), [{"step": "filter_bank", "frequencies": [50], "harmonics": 3}])


def test_ssvep_frequencies_are_read_from_the_labels():
    assert ssvep_frequencies(["rest", "13", "21", "17Hz", 13.0]) == [13.0, 17.0, 21.0]
    with pytest.raises(ValueError, match="field 'label': expected SSVEP labels naming stimulation frequencies"):
        ssvep_frequencies(["left", "right"])
    assert ssvep_steps([13, 17])[0] == {"step": "filter_bank", "frequencies": [13.0, 17.0], "harmonics": 2,
                                        "width": 1.0, "method": "fir"}


@pytest.mark.realdata
def test_ssvep_exo_reproduces_the_reference_and_the_recipe_with_harmonics_beats_it(shared_data):
    """The data README's SSVEP reference per subject (fundamentals only, the same FIR filters, folds and
    classifier) through the library's loader and ``evaluate``; the documented recipe (second harmonics added)
    above its mean on the same folds."""
    from neurodecode import evaluate
    from neurodecode.evaluation.classification import recipe_classifier
    from neurodecode.loaders.public import ssvep_exo

    ts = recipe_classifier("tangent_space", ["estimator=scm"])
    both = ssvep_exo(shared_data)                      # 8 channels × (13, 17, 21 Hz, then 26, 34, 42 Hz), band-major
    assert both.data.shape == (384, 48, 769) and both.sfreq == 256.0
    names = list(both.channels.names)
    assert names[:2] == ["Oz@12.5-13.5Hz", "O1@12.5-13.5Hz"] and names[24] == "Oz@25.5-26.5Hz"
    assert sorted(both.table.groupby(["subject", "session"]).size().unique()) == [32]
    assert both.table["label"].value_counts().to_dict() == {"rest": 96, "13": 96, "17": 96, "21": 96}
    # each band is filtered on its own: the fundamentals' channels are the reference's epochs (harmonics=1)
    ep = both.pick_channels(names[:24])
    acc = evaluate(ep, ts, "within_subject", seed=42).scores.query("metric == 'accuracy'")
    per_subject = acc.groupby("subject")["value"].mean()
    for subject, ref in REFERENCE.items():
        assert abs(per_subject[subject] - ref) < 6e-4, (subject, per_subject[subject], ref)
    recipe = evaluate(both, ts, "within_subject", seed=42).scores.query("metric == 'accuracy'")
    mean = recipe.groupby("subject")["value"].mean().mean()
    assert mean > np.mean(list(REFERENCE.values())) + 0.05, mean              # 0.891 against 0.786


@pytest.mark.realdata
def test_moabb_ssvep_classifiers_equal_moabb_called_directly(shared_data):
    """CCA and TRCA through :class:`SSVEPClassifier` (an EpochSet with labels '13', '17', '21') predict what MOABB's
    own classes predict on the same ``mne.Epochs``; 'rest' has no frequency and is refused."""
    from moabb.pipelines.classification import SSVEP_CCA, SSVEP_TRCA

    from neurodecode.core.mne_convert import to_mne
    from neurodecode.encoders.ssvep import SSVEPClassifier
    from neurodecode.loaders.public import ssvep_exo

    ep = ssvep_exo(shared_data, subjects=[3], steps=[{"step": "filter", "l_freq": 10.0, "h_freq": 45.0}])
    with pytest.raises(ValueError, match=r"field 'label': expected a stimulation frequency for every class .* "
                                         r"classes without one: \['rest'\]"):
        SSVEPClassifier("CCA").fit(ep, ep.table["label"].to_numpy())
    ep = ep[(ep.table["label"] != "rest").to_numpy()]
    y = ep.table["label"].to_numpy()
    train, test = np.arange(len(y)) % 2 == 0, np.arange(len(y)) % 2 == 1
    epochs = to_mne(ep)
    for ours, theirs in ((SSVEPClassifier("CCA"), SSVEP_CCA(freq_map={"13": 13.0, "17": 17.0, "21": 21.0})),
                         (SSVEPClassifier("TRCA", {"n_fbands": 3}), SSVEP_TRCA(n_fbands=3))):
        pred = ours.fit(ep[train], y[train]).predict(ep[test])
        ref = theirs.fit(epochs[train], y[train]).predict(epochs[test])
        np.testing.assert_array_equal(pred, np.asarray(ref).astype(str))
        np.testing.assert_allclose(ours.predict_proba(ep[test]), theirs.predict_proba(epochs[test]))
    assert np.mean(SSVEPClassifier("CCA").fit(ep[train], y[train]).predict(ep[test]) == y[test]) > 0.9
    with pytest.raises(ValueError, match="field 'method': expected one of MOABB's SSVEP classifiers"):
        SSVEPClassifier("FBCCA").fit(ep, y)
    with pytest.raises(ValueError, match="field 'sfreq': expected the sampling rate of array inputs"):
        SSVEPClassifier("CCA").fit(ep.data, y)
    with pytest.raises(ValueError, match="field 'X': expected epochs like the training ones"):
        SSVEPClassifier("CCA", sfreq=256.0).fit(ep, y).predict(ep.data[:, :4])


def test_an_ssvep_classifier_is_refused_as_a_checkpoint_component(tmp_path):
    from neurodecode.core.persistence import save_component
    from neurodecode.encoders.ssvep import SSVEPClassifier

    t = np.arange(64) / 64.0
    y = np.array(["8", "12"] * 6)
    X = np.sin(2 * np.pi * y.astype(float)[:, None, None] * t) + np.random.default_rng(0).standard_normal((12, 3, 64))
    est = SSVEPClassifier("CCA", sfreq=64.0).fit(X, y)
    assert (est.predict(X) == y).mean() > 0.9 and est.frequencies_ == {"12": 12.0, "8": 8.0}
    with pytest.raises(TypeError, match="SSVEPClassifier \\(CCA\\) cannot be saved as a checkpoint component"):
        save_component(est, tmp_path / "c")


def test_a_benchmark_result_records_how_its_epochs_were_made(tmp_path):
    """write_results(..., epochs=) stores the rate, window, shape and the steps as applied (filter bank with its
    actual pass bands, epoch window), without the per-event drop reports."""
    import argparse
    import json

    from neurodecode.core.epochs import concatenate
    from neurodecode.evaluation.benchmarks import write_results
    from neurodecode.evaluation.classification import paradigm_defaults
    from neurodecode.loaders.meeg import load_epochs

    raw = _raw(seconds=12.0)
    onsets = [2.0, 5.0, 8.0]
    ann = mne.Annotations(onsets, [0.0] * 3, ["13", "13", "13"])
    raw.set_annotations(ann)
    ep = load_epochs(raw, return_report=False, tmin=0.5, tmax=2.0, labels={"13": "13"}, subject="1",
                     steps=ssvep_steps([13], harmonics=1, method="iir"))
    two = concatenate([ep, ep.replace(data=ep.data * 1.5, table=ep.table.assign(run="2"))])   # another run
    path = write_results(argparse.Namespace(out=tmp_path, seed=0), "b", {"x": 1}, epochs={"ssvep": two})
    rec = json.loads(path.read_text())["epoching"]["ssvep"]
    assert rec["sfreq"] == 256.0 and rec["tmin"] == 0.5 and rec["n_times"] == 385 and rec["n_channels"] == 2
    steps = [s["step"] for s in rec["steps"]]
    assert steps == ["read", "filter_bank", "epochs"] and "drop_report" not in json.dumps(rec)
    lo, hi = rec["steps"][1]["filters"][0]["passband"]
    assert 12.5 < lo < 12.6 and 13.4 < hi < 13.5
    assert rec["steps"] == two.processing == ep.processing and "file" not in rec["steps"][0]   # per recording
    d = paradigm_defaults(two)                      # the step, found through the concatenated provenance
    assert (d.paradigm, d.reason) == ("ssvep", "a filter_bank step in the preprocessing")
