"""mobilebench.files: readers see the old file or the new one, never half of either."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from mobilebench.errors import MobilebenchError
from mobilebench.files import atomic_writer, write_bytes_atomic, write_text_atomic


def mode_of(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_new_files_are_readable_and_replaced_files_keep_their_mode(tmp_path: Path) -> None:
    target = tmp_path / "sub" / "report.csv"
    write_text_atomic(target, "a,b\n")
    assert target.read_text() == "a,b\n" and mode_of(target) == 0o644  # not mkstemp's 0600
    target.chmod(0o640)
    write_bytes_atomic(target, b"new")
    assert target.read_bytes() == b"new" and mode_of(target) == 0o640
    write_bytes_atomic(target, b"key", mode=0o600)
    assert mode_of(target) == 0o600
    assert [p.name for p in target.parent.iterdir()] == ["report.csv"]


def test_a_failed_write_keeps_the_old_file_and_leaves_nothing(tmp_path: Path) -> None:
    target = tmp_path / "model.pte"
    target.write_bytes(b"old")
    with pytest.raises(RuntimeError, match="serializer crashed"):
        with atomic_writer(target, suffix=".partial") as handle:
            handle.write(b"half of the new")
            (partial,) = [p for p in tmp_path.iterdir() if p != target]
            assert partial.name.startswith(".model.pte.") and partial.name.endswith(".partial")
            raise RuntimeError("serializer crashed")
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["model.pte"]


def test_streaming_writes_land_whole(tmp_path: Path) -> None:
    target = tmp_path / "big.bin"
    with atomic_writer(target) as handle:
        for _ in range(64):
            handle.write(b"x" * 4096)
        assert not target.exists()  # nothing under the final name until the block ends
    assert target.stat().st_size == 64 * 4096


def test_a_directory_is_not_overwritten(tmp_path: Path) -> None:
    with pytest.raises(MobilebenchError, match="is a directory"):
        write_bytes_atomic(tmp_path, b"x")


def test_file_sha256_is_hashlib_over_the_whole_file(tmp_path: Path) -> None:
    import hashlib

    from mobilebench.files import file_digest, file_sha256

    data = bytes(range(256)) * 9000  # more than one read buffer
    target = tmp_path / "blob.bin"
    target.write_bytes(data)
    assert file_sha256(target) == hashlib.sha256(data).hexdigest()
    assert file_digest(target, "md5") == hashlib.md5(data).hexdigest()


def test_an_os_error_while_writing_names_the_file(tmp_path: Path) -> None:
    import errno

    target = tmp_path / "results.sqlite"
    with pytest.raises(OSError) as info:
        with atomic_writer(target) as handle:
            handle.write(b"x")
            raise OSError(errno.ENOSPC, "No space left on device")
    assert (info.value.errno, info.value.filename) == (errno.ENOSPC, str(target))
    assert list(tmp_path.iterdir()) == []


def test_confined_writes_never_follow_a_link(tmp_path: Path) -> None:
    import os

    from mobilebench.files import atomic_writer_at, open_dir_beneath

    root, outside = tmp_path / "root", tmp_path / "outside"
    outside.mkdir()
    (root / "a").mkdir(parents=True)
    (root / "a" / "b").symlink_to(outside)  # a directory swapped for a link
    (root / "a" / "f").symlink_to(outside / "f")
    root_fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY)
    try:
        for parts in (["a", "b"], ["a", "b", "c"], ["a", ".."], ["a", "f"]):
            with pytest.raises(OSError):
                os.close(open_dir_beneath(root_fd, parts, create=True))
        made = open_dir_beneath(root_fd, ["a", "new", "deeper"], create=True, mode=0o750)
        os.close(made)
        assert mode_of(root / "a" / "new" / "deeper") == 0o750
        a = open_dir_beneath(root_fd, ["a"])
        try:
            with atomic_writer_at(a, "f", mode=0o640, fsync=False) as handle:
                handle.write(b"inside")
        finally:
            os.close(a)
    finally:
        os.close(root_fd)
    # The link named f was replaced by the file, not written through.
    assert (root / "a" / "f").read_bytes() == b"inside" and not (root / "a" / "f").is_symlink()
    assert mode_of(root / "a" / "f") == 0o640
    assert list(outside.iterdir()) == []
