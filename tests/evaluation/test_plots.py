"""The figures: they return their Figure, show scikit-learn's numbers, draw chance where it is, refuse bad input."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from sklearn.metrics import confusion_matrix, roc_auc_score  # noqa: E402

from neurodecode.evaluation import plot_confusion_matrix, plot_roc_curve  # noqa: E402


def test_confusion_matrix_shows_sklearns_row_normalised_matrix_and_saves(tmp_path):
    y = np.array(["a", "a", "a", "b", "b", "c", "c", "c"])
    p = np.array(["a", "b", "a", "b", "c", "c", "c", "a"])
    fig = plot_confusion_matrix(y, p)
    shown = fig.axes[0].images[0].get_array()
    np.testing.assert_allclose(shown, confusion_matrix(y, p, normalize="true"))
    assert "accuracy 0.625" in fig.axes[0].get_title()
    plt.close(fig)
    out = tmp_path / "cm.png"
    fig = plot_confusion_matrix(y, p, classes=["c", "b", "a"], normalize=False, path=out)
    assert out.stat().st_size > 1000 and not plt.fignum_exists(fig.number)     # saved, then closed
    np.testing.assert_array_equal(fig.axes[0].images[0].get_array(), confusion_matrix(y, p, labels=["c", "b", "a"]))


def test_roc_curve_reports_sklearns_area_and_refuses_three_classes():
    rng = np.random.default_rng(0)
    y = np.array(["left", "right"] * 20)
    s = (y == "right") + rng.normal(0, 1.0, 40)
    fig = plot_roc_curve(y, s, name="TS+LR")
    label = fig.axes[0].get_legend().get_texts()[0].get_text()
    assert f"{roc_auc_score(y == 'right', s):.2f}" in label
    plt.close(fig)
    with pytest.raises(ValueError, match="field 'y_true': a ROC curve needs two classes, got 3"):
        plot_roc_curve(["a", "b", "c"], [0.1, 0.2, 0.3])
    with pytest.raises(ValueError, match="field 'positive'"):
        plot_roc_curve(y, s, positive="up")
    with pytest.raises(ValueError, match="field 'scores'"):
        plot_roc_curve(y, s[:-1])


def test_evaluation_plot_returns_its_figure_with_the_majority_share_as_chance(epochs):
    from sklearn.dummy import DummyClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import FunctionTransformer

    from neurodecode.evaluation import evaluate

    flat = FunctionTransformer(lambda x: np.asarray(x).reshape(len(x), -1))
    res = evaluate(epochs, make_pipeline(flat, DummyClassifier()), "within_session", n_splits=2)
    fig = res.plot()
    shares = res.trials["label"].value_counts(normalize=True)
    panel = [ax for ax in fig.axes if ax.get_title() == "accuracy"][0]
    chance = [line.get_ydata()[0] for line in panel.get_lines() if line.get_linestyle() == "--"]
    assert chance == pytest.approx([shares.max()])
    plt.close(fig)
