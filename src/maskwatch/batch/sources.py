"""Where the photos of a batch come from: local files and folders, or URIs of anything pyarrow's
file systems (``s3://``, ``gs://``, ``hdfs://``, ``file://``) or fsspec (``az://``, ``http://``, ...)
read; `expand_inputs` lists them in order, `read_bytes` reads one.

A local folder is searched by content (`maskwatch.imageio.expand_inputs`); a folder (prefix) of an
object store by file name (`maskwatch.imageio.IMAGE_SUFFIXES`), so that listing a million objects
reads none of them. A source is a `~pathlib.Path` for a local file and the URI, unchanged, for a
remote one: ``str(source)`` is what the JSON line records either way.
"""

from __future__ import annotations

import functools
import os
import re
from collections import Counter
from pathlib import Path, PurePosixPath
from typing import Any, Union

from ..errors import ImageReadError, ImageTooLargeError, MaskwatchError
from ..imageio import DEFAULT_MAX_FILE_BYTES, IMAGE_SUFFIXES, Inputs, display_name, read_file
from ..imageio import expand_inputs as expand_local

Source = Union[Path, str]

_SCHEME = re.compile(r"^([a-zA-Z][a-zA-Z0-9+.-]+)://")


def is_uri(name: str | os.PathLike) -> bool:
    """Whether ``name`` is a URI (``scheme://...``) rather than a local path."""
    return isinstance(name, str) and _SCHEME.match(name) is not None


def _parts(uri: str) -> tuple[str, str, str]:
    """``(scheme, authority, key)``: ``s3://bucket/a/b.jpg`` -> ``("s3", "bucket", "a/b.jpg")``."""
    scheme = _SCHEME.match(uri).group(1).lower()
    authority, _, key = uri[len(scheme) + 3:].partition("/")
    return scheme, authority, key.strip("/")


@functools.lru_cache(maxsize=32)
def _arrow_root(scheme: str, authority: str):
    """pyarrow's file system of ``scheme://authority/`` and the path of that root in it (one per
    process: an S3 file system looks up its region once), or ``None`` for a scheme pyarrow lacks."""
    try:
        import pyarrow.fs as pafs
    except ImportError:
        raise MaskwatchError(f"{scheme}:// URIs need pyarrow: pip install 'maskwatch[ray]'") from None
    try:
        return pafs.FileSystem.from_uri(f"{scheme}://{authority}/")
    except ValueError as exc:  # pyarrow.ArrowInvalid
        if "nrecognized" in str(exc) or "not supported" in str(exc) or "ot built with" in str(exc):
            return None
        raise MaskwatchError(f"{scheme}://{authority}: cannot open the file system ({exc})") from None
    except OSError as exc:  # a scheme pyarrow knows but cannot open (credentials, region)
        raise MaskwatchError(f"{scheme}://{authority}: cannot open the file system ({exc})") from None


def _split(uri: str) -> tuple[Any, str]:
    """``(pyarrow file system, path in it)`` of a URI: pyarrow's own file systems, else fsspec's."""
    scheme, authority, key = _parts(uri)
    root = _arrow_root(scheme, authority)
    if root is not None:
        fs, base = root
        return fs, (base.rstrip("/") + "/" + key) if key else base
    try:  # fsspec's file systems (az://, http://, ...), through pyarrow's adapter
        import fsspec
        from pyarrow.fs import FSSpecHandler, PyFileSystem
    except ImportError:
        raise MaskwatchError(f"{scheme}://: not a file system pyarrow knows; install fsspec and its "
                             f"{scheme} package") from None
    try:
        fs, path = fsspec.core.url_to_fs(uri)
    except (ImportError, ValueError) as exc:
        raise MaskwatchError(f"{scheme}://: no file system for it ({exc})") from None
    return PyFileSystem(FSSpecHandler(fs)), path


def _uri_of(uri: str, path: str) -> str:
    """The URI of ``path``, a file found under the prefix ``uri`` (the inverse of `_split`)."""
    scheme, authority, _ = _parts(uri)
    root = _arrow_root(scheme, authority)
    if root is None:
        return f"{scheme}://{path}"
    base = root[1].rstrip("/")
    return f"{scheme}://{authority}/{path[len(base):].lstrip('/')}"


def expand_inputs(inputs: list[str]) -> Inputs:
    """`maskwatch.imageio.expand_inputs` for local inputs; a URI is a file or a prefix (listed
    recursively, image suffixes only, sorted). One item per input with nothing to read, like local."""
    out = Inputs()
    for item in inputs:
        if not is_uri(item) or os.path.lexists(item):  # a local name that looks like a URI stays local
            local = expand_local([item])
            out.items.extend(local.items)
            out.skipped.update(local.skipped)
            continue
        out.items.extend(_expand_uri(item, out.skipped))
    return out


def _expand_uri(uri: str, skipped: Counter) -> list[tuple[Source, str | None]]:
    try:
        fs, path = _split(uri)
        import pyarrow.fs as pafs

        info = fs.get_file_info(path)
        if info.type == pafs.FileType.File:
            return [(uri, None)]
        if info.type == pafs.FileType.NotFound:
            return [(uri, f"{display_name(uri)}: no such file")]
        found = []
        for entry in fs.get_file_info(pafs.FileSelector(path, recursive=True)):
            if entry.type != pafs.FileType.File:
                continue
            if PurePosixPath(entry.path).suffix.lower() in IMAGE_SUFFIXES:
                found.append(_uri_of(uri, entry.path))
            else:
                skipped["not an image (by its name)"] += 1
    except MaskwatchError as exc:
        return [(uri, str(exc))]
    except (OSError, ValueError) as exc:
        return [(uri, f"{display_name(uri)}: cannot list ({exc})")]
    if not found:
        return [(uri, f"{display_name(uri)}: is a folder of no images")]
    return [(name, None) for name in sorted(found)]


def read_bytes(source: Source, max_bytes: int = DEFAULT_MAX_FILE_BYTES) -> bytes:
    """The bytes of a local file (`maskwatch.imageio.read_file`: FIFOs and devices refused) or of a URI.

    Raises:
        ImageReadError: missing, unreadable, not a file.
        ImageTooLargeError: larger than ``max_bytes``.
    """
    if not is_uri(source):
        return read_file(source, max_bytes)
    shown = display_name(source)
    try:
        fs, path = _split(source)
        import pyarrow.fs as pafs

        info = fs.get_file_info(path)
        if info.type == pafs.FileType.NotFound:
            raise ImageReadError(f"{shown}: no such file")
        if info.type != pafs.FileType.File:
            raise ImageReadError(f"{shown}: is a folder, not an image")
        if info.size is not None and info.size > max_bytes:
            raise ImageTooLargeError(f"{shown}: file is {info.size / 2**20:.0f} MiB, above the limit of "
                                     f"{max_bytes / 2**20:.0f} MiB")
        with fs.open_input_stream(path) as fh:
            data = fh.read(max_bytes + 1)
    except MaskwatchError:
        raise
    except (OSError, ValueError) as exc:
        raise ImageReadError(f"{shown}: cannot read ({exc})") from None
    if len(data) > max_bytes:
        raise ImageTooLargeError(f"{shown}: file is above the limit of {max_bytes / 2**20:.0f} MiB")
    return data
