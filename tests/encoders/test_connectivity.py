"""Functional connectivity: connectomes equal to nilearn's, graph measures equal to networkx's, windows, real fMRI."""

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import LeaveOneGroupOut, cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from neurodecode import Channels, EpochSet
from neurodecode.encoders.connectivity import KINDS, Connectivity, GraphFeatures, vectorize


def series(n_epochs=12, n_rois=6, n_times=60, seed=0):
    """ROI series with shared sources (correlated ROIs) and unequal scales, one subject offset by a mixing."""
    rng = np.random.default_rng(seed)
    mix = rng.normal(size=(n_rois, n_rois)) + 2 * np.eye(n_rois)
    X = mix @ rng.normal(size=(n_epochs, n_rois, n_times))
    return X * rng.uniform(0.5, 3.0, size=(1, n_rois, 1))


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("vec", [True, False])
def test_connectomes_equal_nilearns_connectivity_measure(kind, vec):
    from nilearn.connectome import ConnectivityMeasure

    X = series()
    ref = ConnectivityMeasure(kind=kind, vectorize=vec).fit_transform([x.T for x in X])
    ours = Connectivity(kind, vectorize=vec).fit_transform(X)
    assert ours.shape == ref.shape
    # nilearn's geometric mean stops at its own tolerance (1e-7), ours at pyRiemann's: equal to 1e-5 for 'tangent'
    np.testing.assert_allclose(ours, ref, rtol=1e-5 if kind == "tangent" else 1e-8,
                               atol=1e-7 * np.abs(ref).max())
    if vec:
        ref = ConnectivityMeasure(kind=kind, vectorize=True, discard_diagonal=True).fit_transform([x.T for x in X])
        got = Connectivity(kind, discard_diagonal=True).fit_transform(X)
        np.testing.assert_allclose(got, ref, rtol=1e-5, atol=1e-7 * np.abs(ref).max())


def test_vector_order_and_names_follow_nilearn():
    from nilearn.connectome import sym_matrix_to_vec

    M = np.random.default_rng(1).normal(size=(3, 5, 5))
    M = M + M.transpose(0, 2, 1)
    np.testing.assert_allclose(vectorize(M), sym_matrix_to_vec(M))
    np.testing.assert_allclose(vectorize(M, True), sym_matrix_to_vec(M, discard_diagonal=True))
    assert Connectivity().feature_names(["a", "b", "c"]) == ["a|a", "b|a", "b|b", "c|a", "c|b", "c|c"]


def test_subject_reference_centres_each_subject():
    """reference='subject': each subject's tangent connectomes average to zero (its own Riemannian mean), groups
    from the argument or from an EpochSet's table; a new subject is centred on its own windows."""
    X = np.concatenate([series(seed=0), 3 * series(seed=0)])   # subject b: the same windows, three times the scale
    table = pd.DataFrame({"subject": np.repeat(["a", "b"], 12)})
    ep = EpochSet(X, 0.5, Channels([f"r{i}" for i in range(6)], "fmri-roi"), table)
    conn = Connectivity("tangent", reference="subject", vectorize=False)
    T = conn.fit_transform(ep)
    for s in ("a", "b"):
        assert np.abs(T[table["subject"] == s].mean(0)).max() < 1e-6
    np.testing.assert_allclose(T[:12], T[12:], atol=1e-6)       # the scale offset is gone (to the mean's tolerance)
    np.testing.assert_allclose(conn.transform(ep.data, groups=table["subject"]), T, atol=1e-12)
    group = Connectivity("tangent", vectorize=False).fit_transform(X)
    assert np.abs(group[:12] - group[12:]).max() > 1.0          # one reference keeps it


def test_graph_measures_equal_networkx():
    import networkx as nx

    rng = np.random.default_rng(2)
    X = series(n_epochs=5, n_rois=9, n_times=80, seed=3)
    conn = Connectivity("correlation", vectorize=False).fit_transform(X)
    gf = GraphFeatures(density=0.3).fit(conn)
    A = gf.adjacency(conn)
    F = gf.transform(conn)
    assert F.shape == (5, 27) and gf.feature_names(list("abcdefghi"))[9] == "clustering:a"
    n_kept = round(0.3 * 36)
    for a, f, c in zip(A, F, conn):
        assert a.sum() / 2 == n_kept and np.allclose(a, a.T) and not a.diagonal().any()
        kept = np.abs(c[np.triu_indices(9, 1)])[a[np.triu_indices(9, 1)] == 1]
        assert kept.min() >= np.abs(c[np.triu_indices(9, 1)])[a[np.triu_indices(9, 1)] == 0].max()  # the strongest
        G = nx.from_numpy_array(a)
        np.testing.assert_allclose(f[:9], [d for _, d in G.degree()])
        np.testing.assert_allclose(f[9:18], [nx.clustering(G)[i] for i in range(9)])
        np.testing.assert_allclose(f[18:], [nx.triangles(G)[i] for i in range(9)])
    del rng


def test_connectivity_errors():
    X = series()
    with pytest.raises(ValueError, match=r"field 'kind': expected one of \['covariance', 'correlation', 'partial "
                                         r"correlation', 'precision', 'tangent'\], got 'coherence'"):
        Connectivity("coherence").fit(X)
    with pytest.raises(ValueError, match=r"field 'X': expected windows of at least 2 samples, got 1"):
        Connectivity().fit(X[:, :, :1])
    with pytest.raises(ValueError, match=r"field 'X': expected 6 ROIs as in fit, got 5"):
        Connectivity().fit(X).transform(X[:, :5])
    with pytest.raises(ValueError, match=r"field 'density': expected a share of connections in \(0, 1\], got 0"):
        GraphFeatures(density=0).fit(np.eye(3)[None])
    with pytest.raises(ValueError, match=r"field 'features': expected some of \['degree', 'clustering', 'cycles3'\]"):
        GraphFeatures(features=["betweenness"]).fit(np.eye(3)[None])
    with pytest.raises(ValueError, match=r"field 'X': expected connectomes of shape \(n_epochs, n, n\)"):
        GraphFeatures().fit(Connectivity().fit_transform(X))      # vectors, not matrices


def test_sliding_windows_stay_inside_runs_and_blocks():
    from neurodecode.loaders.rois import sliding_windows

    tr = 2.0
    # two runs of 10 volumes; volumes 4-5 of run 1 dropped (rest), so run 1 has segments of 4 and 4 volumes
    keep = np.r_[np.arange(4), np.arange(6, 10)]
    rows = [{"subject": "s", "run": "1", "onset": v * tr, "label": "ab"[int(v >= 6)]} for v in keep]
    rows += [{"subject": "s", "run": "2", "onset": v * tr, "label": "ab"[v >= 5]} for v in range(10)]
    table = pd.DataFrame(rows)
    data = np.arange(len(table) * 3, dtype=float).reshape(len(table), 3, 1)
    ep = EpochSet(data, 1 / tr, Channels(["x", "y", "z"], "fmri-roi"), table)
    w = sliding_windows(ep, window=6.0, stride=2.0)                 # 3 volumes, step 1
    # run 1: 2 + 2 windows (none across the gap); run 2: 8 windows, of which the 2 spanning the a|b change drop
    assert w.shape == (4 + 6, 3, 3)
    assert w.table["onset"].tolist() == [0, 2, 12, 14, 0, 2, 4, 10, 12, 14]
    np.testing.assert_array_equal(w.data[0], data[:3, :, 0].T)
    assert (w.table["n_volumes"] == 3).all() and w.sfreq == 0.5
    maj = sliding_windows(ep, window=6.0, stride=2.0, mixed="majority")
    assert len(maj) == 12 and maj.table["label"].tolist()[4:9] == ["a", "a", "a", "a", "b"]  # 2 of 3 volumes win
    with pytest.raises(ValueError, match=r"field 'window/stride': expected a window of at least 2 volumes"):
        sliding_windows(ep, window=2.0, stride=2.0)
    with pytest.raises(ValueError, match=r"field 'epochs': expected one volume per epoch"):
        sliding_windows(w, window=6.0, stride=2.0)


@pytest.mark.slow
@pytest.mark.realdata
def test_haxby_block_connectivity_beside_the_per_volume_decoder(shared_data):
    """Haxby 2001 slice: 16 k-means parcels, one 22.5 s window per category block (9 volumes), leave one run out.
    Block connectomes sit near chance (0.125); the window's mean activity is what decodes (per-volume SVM 0.645)."""
    from neurodecode.loaders.fmri import read_volumes
    from neurodecode.loaders.rois import kmeans_parcels, pool_rois, sliding_windows

    d = shared_data / "haxby2001_slice" / "tutorial_slice"
    attrs = np.loadtxt(d / "attributes_literal.txt", dtype=str)
    ep = read_volumes(d / "bold.nii.gz", d / "mask.nii.gz", labels=attrs[:, 0], runs=attrs[:, 1], subject="1")
    parcels = kmeans_parcels(d / "mask.nii.gz", 16)
    assert sorted(np.unique(np.asarray(parcels.dataobj)).tolist()) == list(range(17))
    w = sliding_windows(pool_rois(ep, parcels), window=22.5, stride=22.5)
    assert w.shape == (96, 16, 9) and w.table.groupby("run").size().eq(8).all()
    y, runs = w.table["label"].to_numpy(), w.table["run"].to_numpy()

    def score(first, X):
        pipe = make_pipeline(*first, StandardScaler(), LogisticRegression(C=0.1, max_iter=2000))
        return cross_val_score(pipe, X, y, groups=runs, cv=LeaveOneGroupOut()).mean()

    fc = {k: score([Connectivity(k)], w.data) for k in ("correlation", "partial correlation", "tangent")}
    graph = score([Connectivity(vectorize=False), GraphFeatures(0.2)], w.data)
    mean = score([], w.data.mean(-1))
    print("\nHaxby blocks (96 windows × 16 parcels): " + ", ".join(f"{k} {v:.3f}" for k, v in fc.items())
          + f", graph {graph:.3f}; window-mean activity {mean:.3f} (per-volume SVM 0.645, chance 0.125)")
    assert mean > 0.55 and max(fc.values()) < mean - 0.3


def test_connectivity_recipes_name_their_features_and_use_the_subjects():
    from neurodecode.encoders.features import extract_features

    X = np.concatenate([series(seed=0), 3 * series(seed=0)]).astype(np.float32)
    table = pd.DataFrame({"subject": np.repeat(["a", "b"], 12), "label": np.tile(["x", "y"], 12)})
    ep = EpochSet(X, 0.5, Channels([f"r{i}" for i in range(6)], "fmri-roi"), table)
    f = extract_features(ep, "connectivity", kind="partial correlation")
    assert f.X.shape == (24, 21) and f.names[:3] == ["r0|r0", "r1|r0", "r1|r1"] and f.recipe["kind"] == "partial correlation"
    t = extract_features(ep, "connectivity", kind="tangent", reference="subject")
    np.testing.assert_allclose(t.X[:12], t.X[12:], atol=1e-5)   # each subject at its own mean: the offset is gone
    g = extract_features(ep, "graph_connectivity", density=0.4)
    assert g.X.shape == (24, 18) and g.names[0] == "degree:r0" and g.names[-1] == "cycles3:r5"
    assert (g.X[:, :6].sum(1) == 2 * round(0.4 * 15)).all()     # degrees add up to twice the kept connections


def test_dynamic_connectivity_sequences_are_epochs_of_window_connectomes():
    from neurodecode.encoders.connectivity import connectivity_sequence

    X = series(n_epochs=3, n_times=40)
    pos = np.random.default_rng(1).normal(size=(6, 3)) * 0.05
    ep = EpochSet(X.astype(np.float32), 0.5, Channels([f"r{i}" for i in range(6)], "fmri-roi", pos),
                  pd.DataFrame({"subject": ["s"] * 3, "label": ["a", "b", "a"]}))
    seq = connectivity_sequence(ep, window=20.0, stride=4.0)                  # 10 samples, step 2 → 16 windows
    assert seq.shape == (3, 15, 16) and seq.sfreq == pytest.approx(0.25)
    assert list(seq.channels.names[:3]) == ["r1|r0", "r2|r0", "r2|r1"]
    np.testing.assert_allclose(seq.channels.pos[0], (pos[1] + pos[0]) / 2)
    third = Connectivity("correlation", vectorize=True, discard_diagonal=True).fit_transform(
        ep.data[:, :, 4:14].astype(np.float64))                             # window 2 of every epoch
    np.testing.assert_allclose(seq.data[:, :, 2], third, atol=1e-6)
    assert seq.provenance[-1]["step"] == "connectivity_sequence" and seq.table.equals(ep.table)
    with pytest.raises(ValueError, match=r"field 'kind': expected one of"):
        connectivity_sequence(ep, window=20.0, stride=4.0, kind="tangent")
    with pytest.raises(ValueError, match=r"field 'window/stride': expected a window of 3 to 40 samples"):
        connectivity_sequence(ep, window=200.0, stride=4.0)


@pytest.mark.slow
@pytest.mark.realdata
def test_masked_pretraining_on_dynamic_connectivity_beside_static_fc(shared_data):
    """Haxby blocks → 16 parcels → 5 sliding windows (12.5 s, stride 2.5 s) per block → 120 edges × 5 windows;
    the tiny MAE learns to reconstruct masked windows, but its probe decodes categories no better than static FC
    (both near chance 0.125; the window-mean activity decodes, test above)."""
    import torch

    from neurodecode import build
    from neurodecode.encoders import EncoderFeatures, pretrain
    from neurodecode.encoders.connectivity import connectivity_sequence
    from neurodecode.loaders.fmri import read_volumes
    from neurodecode.loaders.rois import kmeans_parcels, pool_rois, sliding_windows

    d = shared_data / "haxby2001_slice" / "tutorial_slice"
    attrs = np.loadtxt(d / "attributes_literal.txt", dtype=str)
    ep = read_volumes(d / "bold.nii.gz", d / "mask.nii.gz", labels=attrs[:, 0], runs=attrs[:, 1], subject="1")
    w = sliding_windows(pool_rois(ep, kmeans_parcels(d / "mask.nii.gz", 16)), window=22.5, stride=22.5)
    seq = connectivity_sequence(w, window=12.5, stride=2.5)
    assert seq.shape == (96, 120, 5)
    torch.manual_seed(0)
    res = pretrain(seq, build("encoder", "tiny_mae_fc"), trainer={"max_epochs": 30, "batch_size": 16, "lr": 1e-3,
                                                                 "progress": False}, seed=0)
    y, runs = w.table["label"].to_numpy(), w.table["run"].to_numpy()

    def score(first, X):
        pipe = make_pipeline(*first, StandardScaler(), LogisticRegression(C=0.1, max_iter=2000))
        return cross_val_score(pipe, X, y, groups=runs, cv=LeaveOneGroupOut()).mean()

    static = score([Connectivity("correlation")], w.data)
    probe = score([EncoderFeatures.for_epochs(res.model, seq, pool="mean")], seq.data)
    print(f"\nHaxby dynamic FC: masked-window error {res.val_error_before:.3f} → {res.val_error_after:.3f}; "
          f"MAE probe {probe:.3f}, static FC {static:.3f} (chance 0.125)")
    assert res.val_error_after < 0.9 * res.val_error_before
    assert max(probe, static) < 0.3
