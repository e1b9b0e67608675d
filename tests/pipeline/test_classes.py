"""Class decoding as a training run (``objective=labels``, ``experiment=classes``): EEG epochs and their labels,
no stimulus table → metrics.json with accuracy, balanced accuracy, ROC-AUC and the confusion matrix, equal to the
same pipeline fitted by hand; the checkpoint reconstructs the raw recordings of the held-out run with the same
scores, and bad class inputs are refused naming the field."""

from __future__ import annotations

import json

import numpy as np
import pytest

from neurodecode.core.configs import compose

pytestmark = pytest.mark.realdata

RUNS = (4, 8, 12)


def _overrides(shared):
    paths = ",".join(repr(str(shared / "eegmmidb_S001" / f"S001R{r:02d}.edf")) for r in RUNS)
    return ["experiment=classes", f"data.path=[{paths}]", "data.labels={T1:left,T2:right}", "data.tmin=1.0",
            "data.tmax=2.0"]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    from conftest import SHARED_DATA

    from neurodecode.pipeline.fitting import run

    out = tmp_path_factory.mktemp("classes") / "run"
    cfg = compose(_overrides(SHARED_DATA))
    return cfg, run(cfg, out), out


@pytest.mark.slow
def test_class_decoding_run_scores_equal_the_pipeline_fitted_by_hand(trained):
    from sklearn.metrics import accuracy_score, balanced_accuracy_score, roc_auc_score

    from neurodecode.alignment.aligners import RidgeAlignment
    from neurodecode.core.storage import load
    from neurodecode.encoders.features import make_recipe
    from neurodecode.pipeline.fitting import load_data, split_heldout

    cfg, metrics, out = trained
    saved = json.loads((out / "metrics.json").read_text())
    values = {r["metric"]: r["value"] for r in saved["scores"]}
    assert set(values) == {"accuracy", "balanced_accuracy", "roc_auc"}
    assert {r["kind"] for r in saved["scores"]} == {"classification"}
    assert {r["chance"] for r in saved["scores"]} == {0.5}
    # the same split, recipe and ridge onto one-hot classes, fitted here
    epochs = load_data(cfg.data)
    train, held = split_heldout(epochs, cfg.split, classes=True)
    assert len(held) == saved["n_heldout"] == 15 and len(train) == saved["n_train"] == 30
    y = epochs.table["label"].astype(str).to_numpy()
    recipe = make_recipe("tangent_space", estimator="oas").fit(epochs.data[train])
    onehot = (y[train][:, None] == np.array(["left", "right"])[None]).astype(float)
    ridge = RidgeAlignment().fit(recipe.transform(epochs.data[train]), onehot)
    z = ridge.predict(recipe.transform(epochs.data[held]))
    pred = np.array(["left", "right"])[z.argmax(1)]
    assert values["accuracy"] == pytest.approx(accuracy_score(y[held], pred))
    assert values["balanced_accuracy"] == pytest.approx(balanced_accuracy_score(y[held], pred))
    assert values["roc_auc"] == pytest.approx(roc_auc_score(y[held] == "right", z[:, 1] - z[:, 0]))
    cm = saved["confusion"]
    assert cm["classes"] == ["left", "right"] and np.sum(cm["matrix"]) == 15
    assert np.trace(cm["matrix"]) == round(values["accuracy"] * 15)
    # the held-out trials as stored: each trial's class is its "stimulus", the classes the stimulus table
    held_ep = load(out / "heldout_epochs.h5")
    assert held_ep.table["stimulus"].tolist() == y[held].tolist()
    assert saved["baseline"]["comparison"][0]["metric"] == "accuracy"


@pytest.mark.slow
def test_the_checkpoint_reconstructs_the_held_out_run_from_its_raw_file(trained, shared_data, tmp_path):
    from neurodecode.pipeline.decoding import reconstruct
    from neurodecode.pipeline.fitting import load_data, split_heldout

    cfg, metrics, out = trained
    epochs = load_data(cfg.data)
    held_run = sorted(set(epochs.table["run"].iloc[split_heldout(epochs, cfg.split, classes=True)[1]]))
    assert len(held_run) == 1
    edf = shared_data / "eegmmidb_S001" / f"S001R{RUNS[int(held_run[0]) - 1]:02d}.edf"
    res = reconstruct(out / "checkpoint", [edf], tmp_path / "rec", progress=False)
    mine = {r["metric"]: r["value"] for r in res["scores"] if r["kind"] == "classification"
            and r.get("pipeline") != metrics["baseline"]["name"]}
    assert mine == pytest.approx({r["metric"]: r["value"] for r in metrics["scores"]})
    assert res["confusion"] == json.loads((out / "metrics.json").read_text())["confusion"]
    assert json.loads((tmp_path / "rec" / "confusion.json").read_text())["matrix"] == res["confusion"]["matrix"]
    retrieval = json.loads((tmp_path / "rec" / "retrieval.json").read_text())
    assert {r["top5"][0] for r in retrieval} <= {"left", "right"}
    page = (tmp_path / "rec" / "report.html").read_text()
    assert "confusion" in page
    # the confusion matrix and the ROC curve are drawn and embedded beside the scores; the drawn matrix is the file's
    from PIL import Image

    for name in ("confusion", "roc"):
        with Image.open(tmp_path / "rec" / f"{name}.png") as im:
            assert im.size[0] > 200
        assert f"alt='{name}'" in page


def test_labels_objective_refuses_heads_missing_columns_and_unknown_classes(shared_data, tmp_path):
    from neurodecode.alignment.targets import TargetSpace
    from neurodecode.pipeline.fitting import run

    with pytest.raises(ValueError, match="heads.images.*labels objective.*head@heads.images=null"):
        run(compose([*_overrides(shared_data), "head@heads.images=tiny_unclip"]), tmp_path / "a")
    with pytest.raises(ValueError, match="objective.column.*'condition'"):
        run(compose([*_overrides(shared_data), "objective.column=condition"]), tmp_path / "b")
    space = TargetSpace("labels").fit(None, ["left", "right"])
    assert space.dim == 2 and space.transform(None, ["right", "left"]).tolist() == [[0, 1], [1, 0]]
    with pytest.raises(ValueError, match="field 'label'.*'feet'.*training classes"):
        space.transform(None, ["feet"])
    with pytest.raises(ValueError, match="at least 2 training classes"):
        TargetSpace("labels").fit(None, ["left"])
    with pytest.raises(ValueError, match="field 'objective.kind'"):
        TargetSpace("classes")
