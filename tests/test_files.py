"""zoo.files: the one atomic writer of train, data, studies and export."""

from __future__ import annotations

import pytest

from zoo.files import atomic_write, read_json, write_json


def test_atomic_write_replaces_whole_file(tmp_path):
    path = tmp_path / "sub" / "a.json"  # missing parents are created
    write_json(path, {"x": 1})
    write_json(path, [1, 2], indent=2)
    assert read_json(path) == [1, 2] and path.read_text() == "[\n  1,\n  2\n]\n"
    assert [p.name for p in path.parent.iterdir()] == ["a.json"]  # no temporary file left


def test_failed_write_keeps_the_old_file(tmp_path):
    path = tmp_path / "a.bin"
    path.write_bytes(b"old")
    with pytest.raises(RuntimeError), atomic_write(path) as f:
        f.write(b"half")
        raise RuntimeError("killed mid-write")
    assert path.read_bytes() == b"old" and [p.name for p in tmp_path.iterdir()] == ["a.bin"]
