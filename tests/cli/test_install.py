"""A built wheel holds every package and every YAML of conf/ and data_manifests/, and a training run works from a
non-editable install (nothing read from the source tree)."""

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory):
    out = tmp_path_factory.mktemp("wheel")
    # --no-build-isolation: the test environment has setuptools (the [test] extra), so nothing is downloaded
    proc = subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation",
                           str(ROOT), "-w", str(out)], capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    (path,) = out.glob("neurodecode-*.whl")
    return path


def test_the_wheel_contains_every_config_and_manifest(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    for folder, package in (("conf", "neurodecode/conf"), ("data_manifests", "neurodecode/data_manifests")):
        yamls = sorted(p.relative_to(ROOT / folder).as_posix() for p in (ROOT / folder).rglob("*.yaml"))
        assert yamls, folder
        missing = [y for y in yamls if f"{package}/{y}" not in names]
        assert not missing, missing
    packages = {p.parent.relative_to(ROOT).as_posix() for p in (ROOT / "neurodecode").rglob("__init__.py")}
    assert {f"{p}/__init__.py" for p in packages} <= names


@pytest.mark.slow
def test_train_runs_from_a_non_editable_install(wheel, tmp_path):
    target = tmp_path / "site"
    proc = subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-index", "--target",
                           str(target), str(wheel)], capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    env = dict(os.environ, PYTHONPATH=str(target), HF_HUB_OFFLINE="1")
    cwd = tmp_path / "elsewhere"                      # not the repository: conf/ must come from the installed package
    cwd.mkdir()
    where = subprocess.run([sys.executable, "-c", "import neurodecode, neurodecode.core.configs as c; "
                            "print(neurodecode.__file__); print(c.conf_dir())"], capture_output=True, text=True,
                           env=env, cwd=cwd, check=True).stdout.split()
    assert all(Path(p).is_relative_to(target) for p in where), where
    run = subprocess.run([sys.executable, "-m", "neurodecode", "train", "experiment=tiny",
                          f"hydra.run.dir={tmp_path / 'run'}"], capture_output=True, text=True, env=env, cwd=cwd,
                         timeout=600, check=False)
    assert run.returncode == 0, run.stderr[-3000:]
    assert (tmp_path / "run" / "metrics.json").is_file() and (tmp_path / "run" / "checkpoint" / "model_index.json").is_file()
    listed = subprocess.run([sys.executable, "-m", "neurodecode", "data", "list"], capture_output=True, text=True,
                            env=env, cwd=cwd, check=True).stdout
    assert "eegmmidb" in listed and "nsd" in listed
