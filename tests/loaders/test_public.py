"""Where the shared recordings are found (the gallery and the benchmarks read them through ``shared_data``)."""

import pytest

from neurodecode.loaders.public import shared_data


def test_shared_data_follows_the_environment_and_names_a_bad_folder(tmp_path, monkeypatch):
    monkeypatch.setenv("NEURODECODE_SHARED_DATA", str(tmp_path))
    assert shared_data() == tmp_path
    monkeypatch.setenv("NEURODECODE_SHARED_DATA", str(tmp_path / "missing"))
    with pytest.raises(FileNotFoundError, match=r"\$NEURODECODE_SHARED_DATA is .*missing.*not a folder"):
        shared_data()


def test_shared_data_beside_the_checkout(monkeypatch):
    from conftest import SHARED_DATA

    monkeypatch.delenv("NEURODECODE_SHARED_DATA", raising=False)
    if not SHARED_DATA.is_dir():
        with pytest.raises(FileNotFoundError, match="NEURODECODE_SHARED_DATA"):
            shared_data()
    else:
        assert shared_data().resolve() == SHARED_DATA.resolve()
