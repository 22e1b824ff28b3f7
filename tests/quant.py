"""Checks on int8 ONNX files shared by the classifier and detector tests."""

from __future__ import annotations

import numpy as np


def int8_weight_range(path) -> tuple[int, int]:
    """(min, max) over every int8 initializer (the quantised weights) of an ONNX file.

    ``maskwatch.train.export.quantize_qdq`` keeps weights in 7 bits, [-64, 64]: ONNX Runtime on CPUs
    without VNNI adds pairs of uint8 x int8 products in int16, and 2 * 255 * 64 = 32640 never saturates.
    """
    import onnx
    from onnx import numpy_helper

    values = [numpy_helper.to_array(t).ravel() for t in onnx.load(str(path)).graph.initializer
              if t.data_type == onnx.TensorProto.INT8]
    if not values:
        raise AssertionError(f"{path}: no int8 weights")
    allv = np.concatenate(values)
    return int(allv.min()), int(allv.max())
