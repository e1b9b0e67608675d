"""Riemannian potato artefact rejection: equal to pyRiemann's Potato/PotatoField on the same covariances, one potato
per subject, every rejection in the drop report, bad settings refused naming the field."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from neurodecode.core.epochs import Channels, EpochCollection, EpochSet, concatenate
from neurodecode.encoders import potato_rejection, potato_scores


def _epochs(subject="1", n_epochs=60, n_channels=6, bad=(3, 17, 40), seed=0, scale=1e-5):
    rng = np.random.default_rng(seed)
    mixing = rng.normal(size=(n_channels, n_channels))
    data = np.einsum("ij,ejt->eit", mixing, rng.normal(size=(n_epochs, n_channels, 200))) * scale
    for k in bad:                                 # a burst on two channels: the spatial covariance changes
        data[k, :2] += rng.normal(size=(2, 200)) * 8 * scale
    table = pd.DataFrame({"subject": subject, "session": "1", "label": ["a", "b"] * (n_epochs // 2),
                          "onset": np.arange(n_epochs) * 4.0})
    return EpochSet(data.astype(np.float32), 100.0, Channels([f"E{i}" for i in range(n_channels)], "eeg"), table)


def test_potato_rejects_the_bursts_as_pyriemann_does_and_reports_them():
    from pyriemann.artifact_detection import Potato
    from pyriemann.estimation import Covariances

    ep = _epochs()
    scores = potato_scores(ep)
    C = Covariances(estimator="oas").fit_transform(ep.data.astype(np.float64))
    pot = Potato(threshold=3).fit(C)
    np.testing.assert_allclose(scores["z"], pot.transform(C), rtol=1e-6, atol=1e-6)
    np.testing.assert_array_equal(scores["clean"], pot.predict(C) == 1)
    assert sorted(np.flatnonzero(~scores["clean"])) == [3, 17, 40]

    clean = potato_rejection(ep)
    assert clean.n_epochs == 57 and 3 not in clean.table["onset"].to_numpy() / 4.0
    report = clean.drop_report
    assert report.n_dropped == 3 and report.n_kept == 57
    dropped = report.events[~report.events["kept"]]
    assert list(dropped["event"]) == [3, 17, 40] and list(dropped["onset"]) == [12.0, 68.0, 160.0]
    assert dropped["reason"].str.match(r"Riemannian potato: z = \d+\.\d\d > 3 \(subject 1\)").all()
    step = [p for p in clean.provenance if p["step"] == "potato_rejection"][0]
    assert step["n_rejected"] == 3 and step["threshold"] == 3.0 and step["estimator"] == "oas"


def test_one_potato_per_subject():
    """A subject recorded at ten times the amplitude is not rejected wholesale: each head gets its own potato."""
    a, b = _epochs("1"), _epochs("2", seed=1, scale=1e-4, bad=(5,))
    both = concatenate([a, b.replace(provenance=a.provenance)])
    scores = potato_scores(both)
    assert list(np.flatnonzero(~scores["clean"])) == [3, 17, 40, 65]
    one = potato_scores(both, group_by=None)
    assert (~one["clean"]).sum() != 4          # a single potato over both heads sees another picture
    clean = potato_rejection(EpochCollection({"1": a, "2": b})["2"])
    assert clean.n_epochs == 59


def test_potato_field_equals_pyriemanns_on_channel_groups():
    from pyriemann.artifact_detection import PotatoField
    from pyriemann.estimation import Covariances

    ep = _epochs()
    groups = {"left": ["E0", "E1", "E2"], "right": ["E3", "E4", "E5"]}
    scores = potato_scores(ep, groups=groups)
    X = ep.data.astype(np.float64)
    C = [Covariances(estimator="oas").fit_transform(X[:, i]) for i in ([0, 1, 2], [3, 4, 5])]
    field = PotatoField(n_potatoes=2, z_threshold=3, p_threshold=0.01).fit(C)
    np.testing.assert_allclose(scores[["z[left]", "z[right]"]], field.transform(C), rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(scores["p_clean"], field.predict_proba(C), rtol=1e-6, atol=1e-9)
    np.testing.assert_array_equal(scores["clean"], field.predict(C) == 1)
    assert {3, 17, 40} <= set(np.flatnonzero(~scores["clean"]))
    clean = potato_rejection(ep, groups=groups)
    assert clean.drop_report.events.loc[3, "reason"].startswith("Riemannian potato field: p(clean) = ")


def test_bad_settings_are_refused_naming_the_field():
    ep = _epochs()
    with pytest.raises(ValueError, match="field 'threshold'"):
        potato_rejection(ep, threshold=0)
    with pytest.raises(ValueError, match="field 'estimator'"):
        potato_rejection(ep, estimator="mcd")
    with pytest.raises(ValueError, match=r"field 'groups\['g'\]'.*unknown \['Cz'\]"):
        potato_rejection(ep, groups={"g": ["E0", "Cz"]})
    with pytest.raises(ValueError, match=r"field 'groups\['g'\]': expected at least two channel names"):
        potato_rejection(ep, groups={"g": ["E0"]})
    with pytest.raises(ValueError, match="field 'p_threshold'"):
        potato_rejection(ep, groups={"g": ["E0", "E1"]}, p_threshold=1.5)
    with pytest.raises(ValueError, match=r"field 'table\['block'\]': expected a column"):
        potato_rejection(ep, group_by="block")
    with pytest.raises(ValueError, match=r"field 'table\['run'\]': expected a value for every epoch"):
        potato_rejection(ep, group_by="run")
    with pytest.raises(ValueError, match="at least 3 epochs per subject"):
        potato_rejection(ep[:2])
    with pytest.raises(TypeError, match="field 'epochs'"):
        potato_rejection(ep.data)


@pytest.mark.realdata
def test_potato_on_real_eeg_equals_pyriemann(shared_data):
    from pyriemann.artifact_detection import Potato
    from pyriemann.estimation import Covariances

    from neurodecode.loaders.public import eegmmidb

    ep = eegmmidb(shared_data, ["S001"], steps=[{"step": "rename", "preset": "eegbci"},
                                                {"step": "filter", "l_freq": 7.0, "h_freq": 30.0}])
    ep = ep.pick_channels([c for c in ep.channels.names if c.rstrip("z0123456789") in ("FC", "C", "CP")])
    scores = potato_scores(ep, threshold=2.0)
    C = Covariances(estimator="oas").fit_transform(ep.data.astype(np.float64))
    pot = Potato(threshold=2.0).fit(C)
    np.testing.assert_allclose(scores["z"], pot.transform(C), rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(scores["clean"], pot.predict(C) == 1)
    assert potato_rejection(ep, threshold=2.0).n_epochs == int((pot.predict(C) == 1).sum())


def test_the_online_potato_warms_up_then_judges_like_pyriemanns():
    from pyriemann.artifact_detection import Potato
    from pyriemann.estimation import Covariances

    from neurodecode.encoders import OnlinePotato

    ep = _epochs(n_epochs=30, bad=(25,))
    online = OnlinePotato(threshold=3.0, warmup=20)
    verdicts = [online.check(e) for e in ep.data]
    assert verdicts[:20] == [(True, None)] * 20 and online.ready
    C = Covariances(estimator="oas").fit_transform(ep.data.astype(np.float64))
    ref = Potato(threshold=3.0).fit(C[:20])
    assert verdicts[20][1] == pytest.approx(float(ref.transform(C[20:21])[0]), rel=1e-6)   # before any update
    assert [c for c, _ in verdicts[20:]] == [True] * 5 + [False] + [True] * 4
    for bad in ({"threshold": 0}, {"warmup": 2}, {"estimator": "x"}, {"alpha": 0}):
        with pytest.raises(ValueError, match=f"field '{next(iter(bad))}'"):
            OnlinePotato(**bad)
