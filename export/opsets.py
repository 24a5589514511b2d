"""Which ONNX opsets an export may target: from 18 up to the newest that both onnx and onnxruntime know."""

from __future__ import annotations

import functools

__all__ = ["DEFAULT_OPSET", "MIN_OPSET", "check_opset", "supported_opsets"]

# 18 is the opset torch's ONNX translations are written in; older ones come only
# from down-conversion, which the exporter warns about.
MIN_OPSET = 18
# Recent and widely supported (onnxruntime >= 1.17); newer ones can be asked for.
DEFAULT_OPSET = 21


@functools.lru_cache(maxsize=1)
def _runtime_max_opset(newest: int) -> int:
    # onnxruntime has no API for this: load a one-node model at each opset, newest first (~1 ms each).
    import onnxruntime as ort
    from onnx import TensorProto, helper

    for opset in range(newest, MIN_OPSET - 1, -1):
        x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])
        y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])
        graph = helper.make_graph([helper.make_node("Identity", ["x"], ["y"])], "probe", [x], [y])
        opsets = [helper.make_opsetid("", opset)]
        # The oldest IR version that can hold the opset: a newer IR could be refused on its own.
        model = helper.make_model(graph, opset_imports=opsets, ir_version=helper.find_min_ir_version_for(opsets))
        try:
            ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
            return opset
        except Exception:  # noqa: BLE001  (any refusal means "not this opset")
            continue
    raise RuntimeError(f"onnxruntime {ort.__version__} loads no opset >= {MIN_OPSET}")


def supported_opsets() -> range:
    """Opsets this installation can export and run: ``MIN_OPSET`` .. min(onnx's newest, onnxruntime's newest)."""
    import onnx

    return range(MIN_OPSET, _runtime_max_opset(onnx.defs.onnx_opset_version()) + 1)


def check_opset(opset: int) -> int:
    """Return ``opset`` if it is supported.

    Raises:
        ValueError: not an integer in :func:`supported_opsets` (the exporter itself
            would silently fall back to opset 18 for one newer than onnx knows).
    """
    supported = supported_opsets()
    if isinstance(opset, bool) or not isinstance(opset, int) or opset not in supported:
        raise ValueError(
            f"unsupported ONNX opset {opset!r}: choose {supported.start}..{supported.stop - 1} "
            f"(default {DEFAULT_OPSET})"
        )
    return opset
