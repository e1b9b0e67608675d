"""The command line, the manifests and the built-in example on real EEG."""

import json
import subprocess
import sys

import pytest
from conftest import make_epochs

import neurodecode
from neurodecode import EpochCollection, save
from neurodecode.cli import main
from neurodecode.loaders.manifests import fetch_file, load_manifest, verify_file


def test_version_and_help():
    out = subprocess.run([sys.executable, "-m", "neurodecode", "--version"], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == f"neurodecode {neurodecode.__version__}"
    helptext = subprocess.run([sys.executable, "-m", "neurodecode", "--help"], capture_output=True, text=True,
                              check=True).stdout
    assert "example" in helptext and "info" in helptext


def test_every_subcommand_has_help(capsys):
    from neurodecode.cli import build_parser

    commands = sorted(build_parser()._subparsers._group_actions[0].choices)
    assert {"example", "features", "info", "pretrain", "adapt"} <= set(commands)
    for command in commands:
        with pytest.raises(SystemExit) as exit_:
            main([command, "--help"])
        assert exit_.value.code == 0
        assert f"usage: neurodecode {command}" in capsys.readouterr().out


def test_info_describes_a_store(tmp_path, capsys):
    coll = EpochCollection([make_epochs(subject="sub-01"), make_epochs(n_channels=3, subject="sub-02")])
    save(coll, tmp_path / "c.h5")
    assert main(["info", str(tmp_path / "c.h5"), "--table", "2"]) == 0
    out = capsys.readouterr().out
    assert "collection of 2 subject(s)" in out
    assert "[sub-02] 7 epochs × 3 channels × 11 times, 128 Hz" in out
    assert "reaction_time" in out


def test_cli_errors_are_one_clear_line(tmp_path, capsys):
    assert main(["info", str(tmp_path / "none.h5")]) == 2
    assert "neurodecode info: error: " in capsys.readouterr().err
    assert main(["example", "no_such_key=1"]) == 2
    assert "overrides name unknown keys ['no_such_key']" in capsys.readouterr().err


def test_manifest_checksum_and_offline_fetch(tmp_path, monkeypatch):
    manifest = load_manifest("eegmmidb")
    assert manifest["files"]["S001/S001R04.edf"].startswith("3d161f88")
    (tmp_path / "f.edf").write_bytes(b"not the file")
    with pytest.raises(ValueError, match=r"f.edf: field 'sha256': expected 3d161f88.* got [0-9a-f]{64}; the file is corrupt"):
        verify_file(tmp_path / "f.edf", manifest["files"]["S001/S001R04.edf"])
    monkeypatch.setenv("NEURODECODE_CACHE", str(tmp_path / "cache"))
    offline = dict(manifest, base_url="http://127.0.0.1:9/")  # nothing listens there
    with pytest.raises(ConnectionError, match=r"could not download http://127.0.0.1:9/S001/S001R04.edf .* Offline\?"):
        fetch_file(offline, "S001/S001R04.edf")
    with pytest.raises(FileNotFoundError, match="no manifest named 'nope'"):
        load_manifest("nope")


@pytest.mark.slow
@pytest.mark.realdata
def test_example_reproduces_the_reference(tmp_path):
    """The README's main command: real EEGMMIDB runs 4/8/12 → store → Dataset → 0.733 (pyRiemann reference)."""
    from neurodecode.cli.example import run_example

    res = run_example([f"out_dir={tmp_path}"], verbose=False)
    assert res["shape"] == [45, 64, 161]
    assert res["class_counts"] == {"left": 23, "right": 22}
    assert res["cv_accuracy_mean"] >= 0.70
    assert res["cv_accuracy_mean"] == pytest.approx(0.733, abs=0.005)
    assert set(res["leave_one_run_out"]) == {"4", "8", "12"}
    assert (res["augmented"]["order"], res["augmented"]["lag"]) == (3, 3)
    assert res["augmented"]["cv_accuracy_mean"] == pytest.approx(0.778, abs=0.005)
    assert json.loads((tmp_path / "scores_tangent_space.json").read_text())["summary"][0]["metric"] == "accuracy"
    assert json.loads((tmp_path / "results.json").read_text())["cv_fold_accuracy"] == res["cv_fold_accuracy"]
    assert (tmp_path / "accuracy.png").stat().st_size > 1000
    stored = neurodecode.load(tmp_path / "sub-S001_eegmmidb.h5")
    assert stored.channels.coord_frame == "head" and stored.sfreq == 160.0
    prov = stored.provenance[0]
    assert prov["step"] == "concatenate" and [s["file"] for s in (src[0] for src in prov["sources"])] == \
        ["S001R04.edf", "S001R08.edf", "S001R12.edf"]
    assert [s["step"] for s in prov["processing"]] == ["read", "rename", "montage", "filter", "epochs"]
    assert sorted(stored.table["run"].unique()) == ["12", "4", "8"]


def test_realdata_tests_skip_with_a_message_without_shared_data(tmp_path):
    env = dict(__import__("os").environ, NEURODECODE_SHARED_DATA=str(tmp_path / "absent"))
    out = subprocess.run([sys.executable, "-m", "pytest", "-rs", "-q", "-p", "no:cacheprovider",
                          "tests/core/test_mne_convert.py::test_eeglab_recording_round_trip"],
                         capture_output=True, text=True, env=env, cwd=__import__("pathlib").Path(__file__).parents[2])
    assert out.returncode == 0, out.stdout
    assert "1 skipped" in out.stdout and "real recordings not found at" in out.stdout


@pytest.mark.slow
def test_import_is_light_and_heavy_names_load_on_use():
    code = ("import sys, neurodecode as nd; assert 'torch' not in sys.modules; "
            "from neurodecode.features import extract_features; assert nd.extract_features is extract_features; "
            "print('ok')")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.stdout.strip() == "ok", out.stderr


def test_recipe_overrides_reach_nested_and_mandatory_keys():
    from neurodecode.cli.example import load_config
    from neurodecode.encoders.features import load_recipe_config

    assert load_config(["decoder.covariance=lwf"]).decoder.covariance == "lwf"
    with pytest.raises(ValueError, match=r"overrides name unknown keys \['decoder.shrinkage'\]"):
        load_config(["decoder.shrinkage=0.1"])
    with pytest.raises(ValueError, match=r"overrides: expected key=value items, got \['tmax'\]"):
        load_config(["tmax"])
    assert load_recipe_config("filterbank_tangent_space", ["sfreq=100"])["sfreq"] == 100  # a ??? entry


def test_evaluate_command(tmp_path, capsys):
    import numpy as np

    from neurodecode import EpochSet

    rng = np.random.default_rng(0)
    labels = np.array(["a", "b"] * 20)
    data = rng.normal(size=(40, 4, 200))
    data[labels == "b", 0] *= 3  # class b: more variance on channel 0
    save(EpochSet.from_array(data, 100.0, [f"c{i}" for i in range(4)], "eeg",
                             table={"subject": ["1"] * 40, "session": ["1"] * 40, "label": labels}), tmp_path / "e.h5")
    assert main(["evaluate", str(tmp_path / "e.h5"), "--recipe", "tangent_space", "estimator=lwf",
                 "--out", str(tmp_path / "cls")]) == 0
    out = capsys.readouterr().out
    assert "within_session" in out and (tmp_path / "cls" / "scores.json").is_file()
    acc = [r["value"] for r in json.loads((tmp_path / "cls" / "scores.json").read_text())["scores"]
           if r["metric"] == "accuracy"]
    assert len(acc) == 5 and np.mean(acc) > 0.9  # the planted variance difference is found in every fold
    T = rng.normal(size=(20, 8))
    np.save(tmp_path / "t.npy", T)
    np.save(tmp_path / "p.npy", T + 0.1 * rng.normal(size=T.shape))
    assert main(["evaluate", "--kind", "retrieval", "--pred", str(tmp_path / "p.npy"), "--true", str(tmp_path / "t.npy"),
                 "--k", "1", "--pool-size", "0", "--out", str(tmp_path / "ret")]) == 0
    rows = {r["metric"]: r["value"] for r in json.loads((tmp_path / "ret" / "scores.json").read_text())}
    assert rows["image_top1"] == 1.0 and rows["two_way"] == 1.0
    (tmp_path / "p.txt").write_text("a cat on a mat\ntwo dogs\n")
    (tmp_path / "r.txt").write_text("a cat on a mat\ntwo dogs\n")
    assert main(["evaluate", "--kind", "captions", "--pred", str(tmp_path / "p.txt"), "--true",
                 str(tmp_path / "r.txt")]) == 0
    assert "bleu4" in capsys.readouterr().out
    assert main(["evaluate", "--kind", "retrieval", "--pred", str(tmp_path / "p.txt"), "--true",
                 str(tmp_path / "t.npy")]) == 2
    assert "field '--kind': text files hold captions, got --kind retrieval" in capsys.readouterr().err
    assert main(["evaluate", "--kind", "images", "--pred", str(tmp_path / "p.npy")]) == 2
    assert "give both files" in capsys.readouterr().err
    assert main(["evaluate"]) == 2
    assert "give the store" in capsys.readouterr().err
