"""Every command's errors reach the user as one line naming the file and the field (also errors raised inside a Hydra
run); what the commands write is strict JSON; a refused re-run writes nothing."""

import json
import subprocess
import sys

import pytest

from neurodecode.cli import main


def _strict(text):
    def refuse(name):
        raise AssertionError(f"bare {name} in JSON")

    return json.loads(text, parse_constant=refuse)


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    out = tmp_path_factory.mktemp("run") / "tiny"
    assert main(["train", "experiment=tiny", "heads.captions=null", f"hydra.run.dir={out}"]) == 0
    return out


@pytest.mark.slow
def test_an_error_inside_the_training_run_is_one_line(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "neurodecode", "train", "experiment=tiny", "data.n_voxels=0",
                           f"hydra.run.dir={tmp_path / 'r'}"], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2
    lines = [line for line in proc.stderr.splitlines() if "error" in line.lower()]
    assert len(lines) == 1 and lines[0].startswith("neurodecode train: error:") and "Traceback" not in proc.stderr
    assert "field 'n_voxels': expected a positive value, got 0" in lines[0]


def test_a_refused_rerun_leaves_the_finished_run_untouched(run, capsys):
    before = {p.name: p.stat().st_mtime_ns for p in (run / ".hydra").iterdir()}
    assert main(["train", "experiment=tiny", "seed=5", f"hydra.run.dir={run}"]) == 2
    assert "a training run is already there" in capsys.readouterr().err
    assert {p.name: p.stat().st_mtime_ns for p in (run / ".hydra").iterdir()} == before


def test_a_second_run_into_a_folder_being_trained_is_refused_at_once(tmp_path, capsys):
    """The finished-run check alone let a second run started before the first finished replace it: the folder is
    locked for the whole run."""
    from neurodecode.core.files import WriteLock

    folder = tmp_path / "busy"
    with WriteLock(folder):                                   # a first run still training there
        assert main(["train", "experiment=tiny", f"hydra.run.dir={folder}"]) == 2
    err = capsys.readouterr().err
    assert "busy: being written by another process" in err and not folder.exists()
    assert not (tmp_path / ".busy.lock").exists()


def test_written_scores_are_strict_json(run, tmp_path):
    metrics = _strict((run / "metrics.json").read_text())
    # values a metric does not have (an interval here, a chance level elsewhere) are null, not NaN
    assert any(r.get("ci_low", 0) is None for r in metrics["scores"])
    assert all(r["chance"] is None or isinstance(r["chance"], float) for r in metrics["scores"])
    assert main(["reconstruct", str(run / "checkpoint"), str(run / "heldout_epochs.h5"), "--out", str(tmp_path / "r"),
                 "--no-progress", "--steps", "2", "--n-samples", "1"]) == 0
    for name in ("scores.json", "retrieval.json", "images/metadata.json"):
        _strict((tmp_path / "r" / name).read_text())
    _strict((run / "checkpoint" / "model_index.json").read_text())


@pytest.mark.parametrize(("args", "message"), [
    (["--steps", "-1"], "field 'n_samples/steps': expected integers >= 1, got 2 / -1"),
    (["--strength", "1.5"], "field 'strength': expected a value in (0, 1], got 1.5"),
    (["--heads", "meshes"], "field 'heads': this checkpoint has heads ['images'], not ['meshes']"),
])
def test_bad_reconstruct_options_are_one_line(run, tmp_path, capsys, args, message):
    assert main(["reconstruct", str(run / "checkpoint"), str(run / "heldout_epochs.h5"), "--out", str(tmp_path / "r"),
                 "--no-progress", *args]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and message in err and err.startswith("neurodecode reconstruct: error:")
    assert not (tmp_path / "r").exists()                       # refused before anything is written


def test_manifest_paths_that_leave_the_destination_are_refused(tmp_path, monkeypatch, capsys):
    import neurodecode.loaders.manifests as manifests

    mdir = tmp_path / "manifests"
    mdir.mkdir()
    base = {"title": "t", "modality": "eeg", "license": "CC0", "base_url": "file:///nowhere/"}
    for name, files in (("dots", {"../../.bashrc": None}), ("absolute", {"/etc/passwd": None}),
                        ("ok", {"sub/a.bin": None})):
        (mdir / f"{name}.yaml").write_text(json.dumps({**base, "name": name, "files": files}))
    (mdir / "badname.yaml").write_text(json.dumps({**base, "name": "../../home", "files": {"a": None}}))
    monkeypatch.setattr(manifests, "MANIFEST_DIR", mdir)
    monkeypatch.setenv("NEURODECODE_CACHE", str(tmp_path / "cache"))
    for name, message in (("dots", "field 'files': expected a path inside the download folder, got '../../.bashrc'"),
                          ("absolute", "got '/etc/passwd' (absolute paths and '..' are refused)"),
                          ("badname", "field 'name': expected a data-set name of letters, digits")):
        assert main(["data", "fetch", name]) == 2
        assert message in capsys.readouterr().err
    dest = tmp_path / "dest"
    (dest).mkdir()
    (dest / "sub").symlink_to(tmp_path)                        # a symlink inside the folder pointing out of it
    assert main(["data", "fetch", "ok", "--dest", str(dest)]) == 2
    assert "resolves to" in capsys.readouterr().err and "outside" in capsys.readouterr().err + "outside"
    assert not (tmp_path / ".bashrc").exists() and not list((tmp_path / "cache").rglob("*.bin"))


def test_hydra_callbacks_are_held_to_the_target_allowlist(tmp_path, monkeypatch, capsys):
    """A pickle loader as a Hydra callback — on the command line or in an experiment found through hydra.searchpath
    — is refused before Hydra instantiates it: the pickle never runs."""
    import pickle

    from neurodecode.cli.train import main

    marker = tmp_path / "ran"

    class Boom:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    (tmp_path / "x.pkl").write_bytes(pickle.dumps(Boom()))
    (tmp_path / "conf" / "experiment").mkdir(parents=True)
    (tmp_path / "conf" / "experiment" / "evil.yaml").write_text(
        "# @package _global_\nhydra:\n  callbacks:\n    boom:\n      _target_: joblib.load\n"
        f"      filename: {tmp_path / 'x.pkl'}\n")
    monkeypatch.chdir(tmp_path)
    for argv in (["experiment=tiny", "+hydra.callbacks.x._target_=pandas.read_pickle",
                  f"+hydra.callbacks.x.filepath_or_buffer={tmp_path / 'x.pkl'}"],
                 [f"hydra.searchpath=[file://{tmp_path / 'conf'}]", "experiment=evil"],
                 [f"hydra.searchpath=[file://{tmp_path / 'conf'}]", "experiment=evil", "-m"]):
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert "hydra.callbacks: field '" in err and "instantiating it could run arbitrary code" in err
    assert not marker.exists()
