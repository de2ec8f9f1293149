"""Atomic writes (``rag.atomic``): the old file or the new one, never half, nothing left over."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

import rag.atomic as atomic_mod
from rag._manifest import write_json_atomic
from rag.atomic import atomic_write, replace_durably


def test_atomic_write_replaces_text_and_bytes_and_creates_the_folder(tmp_path):
    target = tmp_path / "new" / "collection.json"
    atomic_write(target, "first ✓")
    assert target.read_text(encoding="utf-8") == "first ✓"
    atomic_write(target, b"\x00second")
    assert target.read_bytes() == b"\x00second"
    assert sorted(p.name for p in target.parent.iterdir()) == ["collection.json"]


def test_a_failed_write_keeps_the_old_file_and_removes_its_temporary(tmp_path, monkeypatch):
    target = tmp_path / "documents.json"
    write_json_atomic(target, {"documents": {"a": 1}})

    def crash(src, dst):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(atomic_mod.os, "replace", crash)
    with pytest.raises(OSError, match="No space left"):
        write_json_atomic(target, {"documents": {}})
    assert json.loads(target.read_text()) == {"documents": {"a": 1}}
    assert [p.name for p in tmp_path.iterdir()] == ["documents.json"]


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="names open descriptors through /proc (Linux)")
def test_the_file_and_its_folder_are_flushed_before_and_after_the_rename(tmp_path, monkeypatch):
    events: list[str] = []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(fd):
        events.append("fsync " + os.readlink(f"/proc/self/fd/{fd}"))
        real_fsync(fd)

    def replace(src, dst):
        events.append("replace")
        real_replace(src, dst)

    monkeypatch.setattr(atomic_mod.os, "fsync", fsync)
    monkeypatch.setattr(atomic_mod.os, "replace", replace)
    folder = tmp_path.resolve()
    atomic_write(folder / "manifest.json", "{}")
    assert len(events) == 3 and events[1] == "replace"
    assert events[0].startswith(f"fsync {folder}/manifest.json.") and events[0].endswith(".tmp")
    assert events[2] == f"fsync {folder}"


def test_a_crash_before_the_rename_leaves_a_temporary_that_recovery_recognises(tmp_path, monkeypatch):
    """``Indexer.recover`` removes ``*.json.*.tmp`` beside the registry: the name must match."""

    def killed(src, dst):
        raise KeyboardInterrupt

    monkeypatch.setattr(atomic_mod, "replace_durably", killed)
    monkeypatch.setattr(atomic_mod.Path, "unlink", lambda self, missing_ok=False: None)  # killed: no clean-up
    with pytest.raises(KeyboardInterrupt):
        atomic_write(tmp_path / "documents.json", "{}")
    (left,) = tmp_path.iterdir()
    assert left.match("*.json.*.tmp") and not (tmp_path / "documents.json").exists()


def test_replace_durably_moves_a_file_another_writer_finished(tmp_path):
    upload = tmp_path / ".upload-x1"
    upload.write_bytes(b"%PDF-1.7 ...")
    replace_durably(upload, tmp_path / "manual.pdf")
    assert not upload.exists() and (tmp_path / "manual.pdf").read_bytes() == b"%PDF-1.7 ..."
