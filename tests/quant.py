"""Checks on int8 ONNX files shared by the classifier and detector tests."""

from __future__ import annotations

import numpy as np


def assert_7_bit_weights(path) -> None:
    """Every int8 initializer (the quantised weights) of an ONNX file lies in [-64, 64], and the range is used.

    ``maskwatch.train.export.quantize_qdq`` keeps weights in 7 bits: ONNX Runtime on CPUs without VNNI
    adds pairs of uint8 x int8 products in int16, and 2 * 255 * 64 = 32640 never saturates.
    """
    import onnx
    from onnx import numpy_helper

    values = [numpy_helper.to_array(t).ravel() for t in onnx.load(str(path)).graph.initializer
              if t.data_type == onnx.TensorProto.INT8]
    if not values:
        raise AssertionError(f"{path}: no int8 weights")
    allv = np.concatenate(values)
    lo, hi = int(allv.min()), int(allv.max())
    assert -64 <= lo and hi <= 64, f"{path}: int8 weights span [{lo}, {hi}], not 7 bits"
    assert hi - lo > 64, f"{path}: int8 weights span only [{lo}, {hi}]"
