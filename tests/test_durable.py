"""model/store/durable.py: atomic replacement of files, directories and symlinks, and file
hashes."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from model.store import durable


def entries(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir())


def test_sha256_file_matches_hashlib(tmp_path: Path) -> None:
    path = tmp_path / "blob"
    data = os.urandom(3 * (1 << 20) + 17)  # more than one read block
    path.write_bytes(data)
    assert durable.sha256_file(path) == hashlib.sha256(data).hexdigest()


def test_write_text_replaces_whole_and_leaves_no_temporary(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "report.json"  # missing parents are created
    durable.write_text(path, "first\n")
    durable.write_text(path, "second ✓\n")
    assert path.read_text(encoding="utf-8") == "second ✓\n"
    assert entries(path.parent) == ["report.json"]
    durable.write_bytes(path, b"\x00\x01")
    assert path.read_bytes() == b"\x00\x01"


def test_replacing_keeps_the_old_file_when_the_writer_fails(tmp_path: Path) -> None:
    path = tmp_path / "cache.npz"
    path.write_bytes(b"old")
    with pytest.raises(RuntimeError), durable.replacing(path, suffix=".npz") as tmp:
        assert tmp.name.endswith(".npz") and tmp.parent == tmp_path
        tmp.write_bytes(b"half")
        raise RuntimeError("writer crashed")
    assert path.read_bytes() == b"old"
    assert entries(tmp_path) == ["cache.npz"]


def test_temporary_names_are_recognised(tmp_path: Path) -> None:
    tmp = durable.temporary_sibling(tmp_path / "current")
    assert tmp.parent == tmp_path and tmp.name.startswith(".current.tmp-")
    assert durable.is_temporary(tmp)
    assert not durable.is_temporary(tmp_path / "current")
    assert not durable.is_temporary(tmp_path / "v1.tmp-0123abcd")  # not hidden: a real name
    assert durable.temporary_sibling(tmp_path / "x") != durable.temporary_sibling(tmp_path / "x")


def test_publish_dir_replaces_a_directory_whole(tmp_path: Path) -> None:
    final = tmp_path / "last"
    for content in ("one", "two"):
        staging = tmp_path / ".last.staging"
        (staging / "nested").mkdir(parents=True)
        (staging / "nested" / "file.txt").write_text(content)
        durable.publish_dir(staging, final)
        assert (final / "nested" / "file.txt").read_text() == content
        assert not staging.exists()
    assert entries(tmp_path) == ["last"]  # the replaced copy is removed
    assert durable.previous_copies(final) == []


def test_previous_copies_lists_what_an_interrupted_publish_left(tmp_path: Path) -> None:
    final = tmp_path / "last"
    older, newer = tmp_path / ".last.old-00000001", tmp_path / ".last.old-00000002"
    older.mkdir()
    newer.mkdir()
    os.utime(older, (1_000_000, 1_000_000))
    assert durable.previous_copies(final) == [older, newer]


def test_replace_symlink_swaps_atomically(tmp_path: Path) -> None:
    (tmp_path / "versions" / "a").mkdir(parents=True)
    (tmp_path / "versions" / "b").mkdir()
    link = tmp_path / "current"
    durable.replace_symlink(link, "versions/a")
    assert os.readlink(link) == "versions/a"
    durable.replace_symlink(link, Path("versions") / "b")
    assert os.readlink(link) == "versions/b"
    assert entries(tmp_path) == ["current", "versions"]


def test_fsync_helpers_accept_files_and_trees(tmp_path: Path) -> None:
    (tmp_path / "a" / "b").mkdir(parents=True)
    (tmp_path / "a" / "b" / "f").write_text("x")
    durable.fsync_tree(tmp_path)
    durable.fsync_dir(tmp_path)
    durable.fsync_file(tmp_path / "a" / "b" / "f")
