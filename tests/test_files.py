"""``tunery._files.write_atomic``: whole files or none, flushed before the rename."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tunery._files as files
from tunery._files import write_atomic


@settings(max_examples=25, deadline=None)
@given(first=st.binary(max_size=2048), second=st.binary(max_size=2048))
def test_the_file_holds_exactly_the_last_bytes_written(
    tmp_path_factory: pytest.TempPathFactory, first: bytes, second: bytes
) -> None:
    folder = tmp_path_factory.mktemp("atomic")
    target = folder / "data.bin"
    write_atomic(target, first)
    write_atomic(target, second)
    assert target.read_bytes() == second
    assert os.listdir(folder) == ["data.bin"]  # no temporary file left


def test_the_data_is_flushed_before_the_rename(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[str] = []
    real_fsync, real_replace = os.fsync, os.replace
    monkeypatch.setattr(files.os, "fsync", lambda fd: (calls.append("fsync"), real_fsync(fd)))
    monkeypatch.setattr(
        files.os, "replace", lambda a, b: (calls.append("replace"), real_replace(a, b))
    )
    write_atomic(tmp_path / "a.bin", b"abc")
    assert calls[:2] == ["fsync", "replace"]
    calls.clear()
    write_atomic(tmp_path / "b.bin", b"abc", durable=False)
    assert calls == ["replace"]


def test_a_failed_write_keeps_the_old_file_and_leaves_no_temporary(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "checkpoint.npz"
    target.write_bytes(b"old")

    def full_disk(fd: int) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(files.os, "fsync", full_disk)
    with pytest.raises(OSError, match="No space left"):
        write_atomic(target, b"new")
    assert target.read_bytes() == b"old"
    assert os.listdir(tmp_path) == ["checkpoint.npz"]
