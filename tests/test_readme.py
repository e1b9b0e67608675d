"""The README and the documentation's pages are executed: every bash command and Python block runs (on tiny configs
and ../shared/data), so the documentation cannot drift from the code. How a block runs is said by markers in the
page (see ``readme_blocks.py``); the variables and files a block takes for granted come from ``readme_setups.py``.
The gallery (``examples/plot_*.py``) runs when the site is built (``make -C docs html``)."""

import os
import re
import runpy
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

import readme_setups
from readme_blocks import commands, parse_all

BLOCKS = [b for b in parse_all() if b.lang in ("bash", "python")]
BIN = Path(sys.executable).parent
SHELL = re.compile(r"[|;&<>`$]")


def test_the_pages_have_no_unmarked_language_fences():
    """A fence is bash, python, plain text or a MyST directive (``{toctree}``); any other language would silently
    not run."""
    other = {f"{b.where}: {b.lang}" for b in parse_all()
             if b.lang not in ("bash", "python", "") and not b.lang.startswith("{")}
    assert not other


@pytest.fixture(scope="module")
def previous():
    return {}


def _environment(folder: Path, shared_data: Path) -> dict:
    env = dict(os.environ, HF_HUB_OFFLINE="1", NEURODECODE_SHARED_DATA=str(shared_data),
               NEURODECODE_CACHE=str(folder.parent / "cache"), MPLBACKEND="Agg")
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    return env


def _check_usage(block, env):
    help_text = subprocess.run(block.usage.split() + ["--help"], capture_output=True, text=True, env=env,
                               timeout=120, check=True).stdout
    options = set(re.findall(r"(--[a-z][a-z-]*)", block.code))
    missing = sorted(o for o in options if o not in help_text)
    assert not missing, f"{block.where}: {block.usage} --help does not know {missing}"


def _run_command(cmd: str, block, folder: Path, env: dict, capsys) -> None:
    """A ``neurodecode ...`` command without shell syntax runs in this process through the console script's entry
    point (``neurodecode.cli.main``: the same code, without ~7 s of imports per command), likewise ``python
    benchmarks/...``; anything else in bash."""
    words = shlex.split(cmd, comments=True)
    if words and words[0] == "neurodecode" and not SHELL.search(cmd):
        from neurodecode.cli.main import main

        rc = main(words[1:])
        out = capsys.readouterr()
        assert rc == 0, f"{block.where}: `{cmd}` exited {rc}:\n{out.out[-1500:]}\n{out.err[-3000:]}"
        return
    if words[:1] == ["python"] and len(words) > 1 and words[1].startswith("benchmarks/") and not SHELL.search(cmd):
        argv = sys.argv
        sys.argv = words[1:]
        try:                                  # a benchmark as `python benchmarks/x.py ...` runs it, in this process
            runpy.run_path(str(folder / words[1]), run_name="__main__")
        except SystemExit as exit_:
            assert exit_.code in (0, None), f"{block.where}: `{cmd}` exited {exit_.code}"
        finally:
            sys.argv = argv
        return
    proc = subprocess.run(["bash", "-o", "pipefail", "-c", cmd], cwd=folder, env=env, capture_output=True,
                          text=True, timeout=600, check=False)
    assert proc.returncode == 0, (f"{block.where}: `{cmd}` exited {proc.returncode}:\n"
                                  f"{proc.stdout[-1500:]}\n{proc.stderr[-3000:]}")


@pytest.mark.slow
@pytest.mark.realdata
@pytest.mark.parametrize("block", BLOCKS, ids=[b.id for b in BLOCKS])
def test_readme_block(block, tmp_path, previous, shared_data, monkeypatch, capsys):
    if block.skip:
        pytest.skip(f"{block.where}: {block.skip}")
    for text, reason in block.drop:
        print(f"{block.where}: left out {text!r}: {reason}")
    if block.cont:
        if previous.get("next") != (block.page, block.line):
            pytest.skip(f"{block.where} continues the block before it, which did not run")
        folder, namespace = previous["folder"], previous["namespace"]
    else:
        folder, namespace = tmp_path / "work", {}
        folder.mkdir()
        (tmp_path / "shared").symlink_to(shared_data.parent)   # the README's ../shared/data
    env = _environment(folder, shared_data)
    if block.usage:
        _check_usage(block, env)
        return
    monkeypatch.chdir(folder)
    for key in ("HF_HUB_OFFLINE", "NEURODECODE_SHARED_DATA", "NEURODECODE_CACHE"):
        monkeypatch.setenv(key, env[key])
    if block.setup:
        made = dict(getattr(readme_setups, block.setup)(folder, shared_data) or {})
        for key, value in made.pop("__env__", {}).items():   # environment the block's reader would have set
            monkeypatch.setenv(key, value)
        namespace.update(made)
    code = block.runnable()
    if block.lang == "python":
        exec(compile(code, f"{block.page}:{block.line}", "exec"), namespace)  # noqa: S102 - our own documentation
    else:
        for cmd in commands(code):
            _run_command(cmd, block, folder, env, capsys)
    following = [(b.page, b.line) for b in BLOCKS if b.page == block.page and b.line > block.line]
    previous.update(folder=folder, namespace=namespace, next=following[0] if following else None)
