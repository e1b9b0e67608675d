"""``neurodecode benchmark``: datasets × pipelines × evaluations on the shared recordings (two subjects of each set
here; the default run uses all of them), its results table against ``evaluate`` called directly, MOABB's own
evaluation beside it, resuming, and the configs it refuses."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from neurodecode.core.configs import compose, options
from neurodecode.evaluation.benchmarks import RESULT_COLUMNS, parse_evaluation, run_benchmark

#: two subjects of each set, the evaluations that read them, every default pipeline
SMALL = ["datasets.eegmmidb.epochs.default.subjects=[S001,S002]",
         "datasets.eegmmidb.evaluations=[within_session,cross_subject+recenter]",
         "datasets.ssvep_exo.epochs.default.subjects=[1,2]", "datasets.ssvep_exo.epochs.raw.subjects=[1,2]",
         "datasets.ssvep_exo.evaluations=[cross_session]"]


def _config(shared, out, *extra):
    return compose([*SMALL, f"data_root={shared}", f"out_dir={out}", *extra], config_name="benchmark")


@pytest.fixture(scope="module")
def small_run(tmp_path_factory):
    from conftest import SHARED_DATA

    out = tmp_path_factory.mktemp("benchmark")
    lines: list[str] = []
    result = run_benchmark(_config(SHARED_DATA, out), log=lines.append)
    return out, result, lines


@pytest.mark.slow
@pytest.mark.realdata
def test_the_benchmark_table_equals_evaluate_called_directly(small_run, shared_data):
    from neurodecode import evaluate
    from neurodecode.evaluation.classification import recipe_classifier
    from neurodecode.loaders.public import eegmmidb, ssvep_exo

    out, result, lines = small_run
    table = pd.read_csv(out / "results.csv")
    assert list(table.columns) == RESULT_COLUMNS
    assert set(table["dataset"]) == {"eegmmidb", "ssvep_exo"}
    assert (table[["fit_seconds", "predict_seconds"]] > 0).all().all()
    # the table's numbers are evaluate's on the loader's epochs with the same seed and folds
    ep = eegmmidb(shared_data, ["S001", "S002"])
    direct = evaluate(ep, recipe_classifier("tangent_space", ["estimator=oas"]), "within_session", seed=42).scores
    mine = table[(table["dataset"] == "eegmmidb") & (table["evaluation"] == "within_session")
                 & (table["pipeline"] == "TS+LR")]
    np.testing.assert_allclose(mine.sort_values(["subject", "fold", "metric"])["score"].to_numpy(),
                               direct.sort_values(["subject", "fold", "metric"])["value"].to_numpy(), atol=1e-12)
    ssvep = ssvep_exo(shared_data, [1, 2])
    direct = evaluate(ssvep, recipe_classifier("tangent_space", ["estimator=scm"]), "cross_session", seed=42).scores
    mine = table[(table["dataset"] == "ssvep_exo") & (table["evaluation"] == "cross_session")
                 & (table["pipeline"] == "TS+LR")]
    acc = lambda t, col: t[t["metric"] == "accuracy"].groupby("subject")[col].mean().to_numpy()  # noqa: E731
    np.testing.assert_allclose(acc(mine, "score"), acc(direct, "value"), atol=1e-12)
    # per-subject means, intervals over subjects, chance from each cell's classes (CCA: the 3 flicker classes)
    s = result.summary.set_index(["dataset", "evaluation", "pipeline", "metric"])
    row = s.loc[("ssvep_exo", "cross_session", "TS+LR", "accuracy")]
    assert row["mean"] == pytest.approx(acc(mine, "score").mean()) and row["n_subjects"] == 2
    assert row["chance"] == 0.25 and s.loc[("ssvep_exo", "cross_session", "CCA (MOABB)", "accuracy"),
                                           "chance"] == pytest.approx(1 / 3)
    assert s.loc[("eegmmidb", "within_session", "TS+LR", "roc_auc"), "chance"] == 0.5
    # not applicable cells are listed with the reason, never silently left out
    skipped = {(c["dataset"], c["evaluation"], c["pipeline"]): c["reason"] for c in result.skipped}
    assert "the dataset is ssvep" in skipped[("ssvep_exo", "cross_session", "csp_lda")]
    assert "covariance step" in skipped[("eegmmidb", "cross_subject+recenter", "csp_lda")]
    assert "covariance step" in skipped[("eegmmidb", "cross_subject+recenter", "fbcsp")]
    assert "the dataset is ssvep" in skipped[("ssvep_exo", "cross_session", "fbcsp")]
    assert ("eegmmidb", "within_session", "cca") in skipped
    assert any("not run" in line for line in lines) and any("[1/" in line for line in lines)
    # paired comparisons with the baseline, trial by trial; CCA (other trials) is not compared
    cmp = result.comparisons
    row = cmp[(cmp["dataset"] == "ssvep_exo") & (cmp["evaluation"] == "cross_session")
              & (cmp["pipeline"] == "MDM") & (cmp["metric"] == "accuracy")].iloc[0]
    assert row["unit"] == "trials" and row["n_items"] == 128 and row["baseline_name"] == "TS+LR"
    assert not (cmp["pipeline"] == "CCA (MOABB)").any()
    # the files: JSON with each cell's epoching, the summary table, a figure per dataset
    record = json.loads((out / "results.json").read_text())
    cell = record["cells"]["ssvep_exo/cross_session/TS+LR"]
    assert cell["epoching"]["n_channels"] == 48 and "filter_bank" in [st["step"] for st in cell["epoching"]["steps"]]
    assert cell["epoching"]["tmin"] == 2.0 and cell["labels"] == ["13", "17", "21", "rest"]
    bank = record["cells"]["eegmmidb/within_session/FBCSP+SVM"]["epoching"]      # 6 bands × 64 channels
    assert bank["n_channels"] == 384 and "filter_bank" in [st["step"] for st in bank["steps"]]
    assert {"FgMDM", "FBCSP+SVM"} <= set(result.summary["pipeline"])
    summary = (out / "summary.md").read_text()
    assert "| TS+LR | " in summary and "paired trials" in summary
    assert (out / "eegmmidb.png").stat().st_size > 10_000 and (out / "ssvep_exo.png").is_file()


@pytest.mark.slow
@pytest.mark.realdata
def test_a_finished_cell_is_read_back_and_changed_settings_recompute(small_run, shared_data):
    out, first, _ = small_run
    lines: list[str] = []
    again = run_benchmark(_config(shared_data, out), datasets=["ssvep_exo"], pipelines=["ts_lr", "mdm"],
                          log=lines.append)
    assert not any(c["computed"] for c in again.cells.values()) and len(again.cells) == 2
    assert all("read back" in line for line in lines if "×" in line)
    key = ["dataset", "evaluation", "pipeline", "subject", "fold", "metric"]
    old = first.scores[first.scores["dataset"] == "ssvep_exo"].merge(again.scores, on=key)
    assert len(old) == len(again.scores) and np.array_equal(old["score_x"], old["score_y"])
    changed = run_benchmark(_config(shared_data, out, "datasets.ssvep_exo.epochs.default.tmax=4.0"),
                            datasets=["ssvep_exo"], pipelines=["ts_lr"])
    assert [c["computed"] for c in changed.cells.values()] == [True]
    assert changed.cells["ssvep_exo/cross_session/TS+LR"]["epoching"]["n_times"] == 513


@pytest.mark.slow
@pytest.mark.realdata
def test_moabb_scores_the_same_pipeline_beside_neurodecode(tmp_path, shared_data):
    """MOABB's WithinSessionEvaluation of TS+LR on MOABB's epochs of the shared EDF files equals neurodecode's
    evaluation of the same pipeline on the same epochs, subject by subject."""
    cfg = _config(shared_data, tmp_path, "datasets.eegmmidb.moabb.subjects=[1,2]",
                  "datasets.eegmmidb.evaluations=[moabb_within_session]")
    result = run_benchmark(cfg, datasets=["eegmmidb"], pipelines=["ts_lr"])
    sc = result.subjects[result.subjects["metric"] == "roc_auc"].pivot(index="subject", columns="source",
                                                                        values="score")
    assert list(sc.index) == ["1", "2"] and sc["moabb"].between(0.5, 1).all()
    np.testing.assert_allclose(sc["neurodecode"], sc["moabb"], atol=1e-6)
    assert "MOABB" not in result.table("eegmmidb") or "/" in result.table("eegmmidb")
    assert f"{sc['moabb'].mean():.3f} / {sc['neurodecode'].mean():.3f}" in result.table("eegmmidb")


@pytest.mark.slow
@pytest.mark.realdata
def test_every_dataset_and_pipeline_option_runs(tmp_path, shared_data):
    """The options the default run leaves out (braindecode's networks) run too, a few training epochs here."""
    assert set(options("dataset")) == {"eegmmidb", "ssvep_exo"}
    deep = ["atcnet", "eeg_conformer", "eegnet", "shallow_fbcsp"]
    extra = [*deep, "mean_field", "ts_svm"]
    assert set(options("pipeline")) - set(compose([], config_name="benchmark").pipelines) == set(extra)
    cfg = _config(shared_data, tmp_path, *(f"+pipeline@pipelines.{p}={p}" for p in extra),
                  *(f"pipelines.{p}.steps.0.trainer.max_epochs=2" for p in deep),
                  "datasets.eegmmidb.epochs.default.subjects=[S001,S002,S003]",
                  "datasets.eegmmidb.epochs.wide.tmax=3.0",           # shorter than the benchmark's: quicker here
                  "datasets.eegmmidb.evaluations=[cross_subject]")
    result = run_benchmark(cfg, datasets=["eegmmidb"], pipelines=[*extra, "ts_lr_selected"])
    assert set(result.summary["pipeline"]) == {"EEGNet (braindecode)", "ShallowFBCSPNet (braindecode)",
                                               "ATCNet (braindecode)", "EEGConformer (braindecode)", "MeanField",
                                               "TS+SVM", "TS+LR, window and re-centring chosen on the training subjects"}
    assert result.summary["mean"].between(0, 1).all()
    cells = result.cells
    # the selection reads the wide epochs (0.5-3 s here), for leave-one-subject-out only
    assert cells["eegmmidb/cross_subject/TS+LR, window and re-centring chosen on the training subjects"][
        "epoching"]["n_times"] == 401
    within = run_benchmark(_config(shared_data, tmp_path), datasets=["eegmmidb"], pipelines=["ts_lr_selected"],
                           evaluations=["within_session"])
    assert [c["reason"] for c in within.skipped] == ["the pipeline is for evaluations ['cross_subject']"]


def test_bad_benchmark_configs_are_refused_naming_the_field(tmp_path):
    with pytest.raises(ValueError, match="field 'evaluations'.*cross_subject\\+recenter"):
        parse_evaluation("within_session+recenter")
    with pytest.raises(ValueError, match="field 'evaluations'"):
        parse_evaluation("leave_one_out")
    cfg = compose([f"out_dir={tmp_path}", "data_root=/nonexistent"], config_name="benchmark")
    with pytest.raises(ValueError, match="--datasets.*nope"):
        run_benchmark(cfg, datasets=["nope"])
    bad = compose([f"out_dir={tmp_path}", "datasets.eegmmidb.evaluations=[within_sesion]"], config_name="benchmark")
    with pytest.raises(ValueError, match="conf/dataset/eegmmidb.yaml.*field 'evaluations'.*within_sesion"):
        run_benchmark(bad, datasets=["eegmmidb"])
    bad = compose([f"out_dir={tmp_path}", "datasets.eegmmidb.paradigm=p300"], config_name="benchmark")
    with pytest.raises(ValueError, match="field 'paradigm'.*p300"):
        run_benchmark(bad, datasets=["eegmmidb"])
    bad = compose([f"out_dir={tmp_path}", "pipelines.mdm.name=TS+LR"], config_name="benchmark")
    with pytest.raises(ValueError, match="distinct names"):
        run_benchmark(bad)
    # a step's _target_ outside the allowlist is refused before anything is imported or run
    evil = compose([f"out_dir={tmp_path}", "+pipelines.evil={name: evil, paradigms: [ssvep], "
                    "steps: [{_target_: joblib.load, filename: x.pkl}]}"], config_name="benchmark")
    with pytest.raises(ValueError, match="pipelines.evil.steps\\[0\\]._target_.*joblib.load"):
        run_benchmark(evil)
    assert not (tmp_path / "results.json").exists()


def test_a_second_run_into_the_same_folder_is_refused(tmp_path):
    from neurodecode.core.files import WriteLock

    cfg = compose([f"out_dir={tmp_path}", "data_root=/nonexistent"], config_name="benchmark")
    with WriteLock(tmp_path / "results.json"):
        with pytest.raises(FileExistsError, match="being written by another process"):
            run_benchmark(cfg)


def test_the_benchmark_command_prints_its_config_and_help(capsys):
    from neurodecode.cli import main

    assert main(["benchmark", "--cfg", "+pipeline@pipelines.eegnet=eegnet"]) == 0
    out = capsys.readouterr().out
    assert "eegnet:" in out and "ssvep_exo:" in out and "${dataset.covariance}" in out
    assert main(["benchmark", "pipelines.eegnet.epochs=wide", "--cfg"]) == 2         # a new key needs a +
    assert "+pipelines.eegnet.epochs=wide" in capsys.readouterr().err
    assert main(["benchmark", "pipelines.mdm.epochs=wide", "--cfg"]) == 2
    assert "`neurodecode benchmark --cfg`" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["benchmark", "--help"])
    assert "not recomputed" in capsys.readouterr().out


def test_frequency_labels_are_kept_and_a_set_without_any_is_refused_naming_its_labels():
    from conftest import make_epochs

    from neurodecode.evaluation.benchmarks import _frequency_epochs

    ep = make_epochs(n_epochs=6)                                     # labels face / house
    with pytest.raises(ValueError, match="field 'label'.*'face', 'house'"):
        _frequency_epochs(ep, "test")
    ssvep = ep.replace(table=ep.table.assign(label=["13", "rest", "17Hz", "rest", "13", "21"]))
    assert _frequency_epochs(ssvep, "test").table["label"].tolist() == ["13", "17Hz", "13", "21"]


def test_a_pipeline_whose_library_is_missing_names_the_package_to_install(monkeypatch):
    """A pipeline step from an optional library (MOABB's FilterBank, ...) that is not installed: the error names the
    config field and the package, not Hydra's wrapped ImportError."""
    import builtins

    from neurodecode.evaluation.benchmarks import build_pipeline

    real_import = builtins.__import__

    def no_moabb(name, *args, **kwargs):
        if name == "moabb" or name.startswith("moabb."):
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_moabb)
    for mod in [m for m in list(__import__("sys").modules) if m == "moabb" or m.startswith("moabb.")]:
        monkeypatch.delitem(__import__("sys").modules, mod)
    pipe = compose([], config_name="benchmark").pipelines.fbcsp
    with pytest.raises(ModuleNotFoundError, match=r"pipelines.fbcsp: field 'steps\[1\]': "
                                                  r"moabb.pipelines.utils.FilterBank needs the package 'moabb'"):
        build_pipeline(pipe, "pipelines.fbcsp")
