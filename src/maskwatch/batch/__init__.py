"""Batches of photos, from a folder to an archive of millions: engines that yield one result per
input, in input order, for `maskwatch detect` and for Python.

* `LocalEngine` — this machine: decoding and detection in a few threads, the caller writing.
* `RayEngine` / `detect_dataset` — a Ray Data job (the ``ray`` extra): stateful actors that load
  the models once, on a laptop or a cluster (`maskwatch.batch.raydata`).

Inputs are local files and folders or URIs (``s3://``, ``gs://``, ``file://``, fsspec's);
`expand_inputs` lists them, `read_bytes` reads one. See docs/scale.md.
"""

from .local import LocalEngine, Result, default_workers, detect_one, failure_message
from .sources import expand_inputs, is_uri, read_bytes

__all__ = ["LocalEngine", "RayEngine", "Result", "default_workers", "detect_dataset", "detect_one",
           "expand_inputs", "failure_message", "is_uri", "read_bytes"]


def __getattr__(name: str):  # the Ray engine imports ray: only when asked for
    if name in ("RayEngine", "detect_dataset"):
        from . import raydata

        return getattr(raydata, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
