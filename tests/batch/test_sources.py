"""Batch sources: local paths through the imageio gate, URIs through pyarrow's / fsspec's file systems."""

from __future__ import annotations

import pytest

from maskwatch.batch.sources import expand_inputs, is_uri, read_bytes
from maskwatch.errors import ImageReadError, ImageTooLargeError

from badinputs import write_jpeg


@pytest.mark.parametrize("name, uri", [
    ("s3://bucket/photos/", True), ("gs://b/k.jpg", True), ("file:///tmp/x", True), ("az://c/p", True),
    ("/tmp/photos", False), ("photos/a.jpg", False), ("C:\\photos", False), ("weird:name.jpg", False),
])
def test_is_uri(name, uri):
    assert is_uri(name) is uri


@pytest.fixture
def archive(tmp_path, astronaut):
    pytest.importorskip("pyarrow.fs", reason="URIs are read through pyarrow's file systems (the `ray` extra)")
    root = tmp_path / "archive"
    (root / "2024" / "jan").mkdir(parents=True)
    write_jpeg(root / "2024" / "jan" / "b.jpg", astronaut)
    write_jpeg(root / "2024" / "a.JPG", astronaut)
    (root / "2024" / "notes.txt").write_text("not a photo")
    return root


def test_a_uri_prefix_is_listed_recursively_by_image_suffix_in_order(archive):
    inputs = expand_inputs([f"file://{archive}", f"file://{archive}/2024/jan/b.jpg"])
    assert inputs.items == [(f"file://{archive}/2024/a.JPG", None), (f"file://{archive}/2024/jan/b.jpg", None),
                            (f"file://{archive}/2024/jan/b.jpg", None)]
    assert inputs.skipped == {"not an image (by its name)": 1}


def test_local_inputs_keep_the_local_expansion_and_mix_with_uris(archive):
    inputs = expand_inputs([str(archive / "2024" / "jan"), f"file://{archive}/2024/a.JPG"])
    assert inputs.items == [(archive / "2024" / "jan" / "b.jpg", None), (f"file://{archive}/2024/a.JPG", None)]


@pytest.mark.parametrize("suffix, why", [("missing.jpg", "no such file"), ("empty", "is a folder of no images")])
def test_a_uri_with_nothing_to_read_is_one_item_with_its_problem(tmp_path, suffix, why):
    pytest.importorskip("pyarrow.fs", reason="URIs are read through pyarrow's file systems (the `ray` extra)")
    (tmp_path / "empty").mkdir()
    uri = f"file://{tmp_path}/{suffix}"
    ((source, problem),) = expand_inputs([uri]).items
    assert source == uri and problem == f"{uri}: {why}"


def test_a_scheme_no_file_system_knows_is_an_item_with_its_problem():
    pytest.importorskip("pyarrow.fs", reason="URIs are read through pyarrow's file systems (the `ray` extra)")
    ((source, problem),) = expand_inputs(["nosuchfs://bucket/key.jpg"]).items
    assert source == "nosuchfs://bucket/key.jpg" and "nosuchfs://: no file system" in problem


def test_read_bytes_of_a_uri_and_of_a_path(archive):
    path = archive / "2024" / "a.JPG"
    assert read_bytes(f"file://{path}") == path.read_bytes() == read_bytes(path)


def test_read_bytes_refuses_what_is_not_a_readable_file(archive):
    with pytest.raises(ImageReadError, match="no such file"):
        read_bytes(f"file://{archive}/nope.jpg")
    with pytest.raises(ImageReadError, match="is a folder, not an image"):
        read_bytes(f"file://{archive}/2024")
    with pytest.raises(ImageTooLargeError, match="above the limit"):
        read_bytes(f"file://{archive}/2024/a.JPG", max_bytes=100)
