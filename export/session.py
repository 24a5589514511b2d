"""Open an ONNX file in onnxruntime with clear errors; pick execution providers (torch-free)."""

from __future__ import annotations

from pathlib import Path

import onnxruntime as ort

__all__ = ["providers", "open_session"]

_PREFERRED = ("CUDAExecutionProvider", "CPUExecutionProvider")


def providers() -> list[str]:
    """The execution providers to use and validate with: CUDA when this onnxruntime has it, and always CPU."""
    available = set(ort.get_available_providers())
    return [p for p in _PREFERRED if p in available]


def open_session(path: str | Path, provider: str = "CPUExecutionProvider") -> ort.InferenceSession:
    """Load ``path`` into an onnxruntime session running on ``provider``.

    Raises:
        FileNotFoundError: no file there.
        ValueError: onnxruntime cannot load it (not an ONNX model, truncated, unsupported opset...),
            or ``provider`` is not available.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no ONNX file")
    if provider not in ort.get_available_providers():
        raise ValueError(f"onnxruntime provider {provider!r} is not available; have {ort.get_available_providers()}")
    options = ort.SessionOptions()
    options.log_severity_level = 3  # errors only: onnxruntime warns about unused initializers and such
    try:
        return ort.InferenceSession(str(path), options, providers=[provider])
    except Exception as err:  # noqa: BLE001  (onnxruntime raises its own exception types for bad files)
        first_line = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise ValueError(f"{path}: not a loadable ONNX model ({first_line[:300]})") from None
