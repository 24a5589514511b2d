"""ONNX export of zoo models, onnxruntime validation, and torch-free prediction (installed as ``zoo.export``).

Quick use::

    from zoo.export import load_for_export, export_model, validate_export, random_images
    model, info = load_for_export("runs/mnist_cnn")            # checkpoint, run dir, or preset name
    path = export_model(model, "mnist_cnn.onnx", info, opset=21, fold_bn=True)
    report = validate_export(path, model, info, random_images(info, 256))

    from zoo.export import Classifier                          # onnxruntime + numpy + Pillow only
    Classifier("mnist_cnn.onnx").predict_files(["digit.png"])

Modules: ``translation`` (zoo ops -> ONNX), ``opsets``, ``metadata``,
``onnx_export``, ``validate``, ``session``, ``predict``. Names load lazily, so
importing this package (or :mod:`zoo.export.predict`) does not import torch.
"""

from __future__ import annotations

from zoo.lazy import lazy_names

# name -> submodule defining it
_LAZY = {
    "export_model": "onnx_export",
    "to_onnx": "onnx_export",
    "load_for_export": "onnx_export",
    "checkpoint_model": "onnx_export",
    "preset_model": "onnx_export",
    "pretrained_model": "onnx_export",
    "pretrained_onnx": "pretrained",
    "validate_export": "validate",
    "random_images": "validate",
    "report_path": "validate",
    "DEFAULT_ATOL": "validate",
    "Classifier": "predict",
    "read_image": "predict",
    "ModelInfo": "metadata",
    "DEFAULT_OPSET": "opsets",
    "supported_opsets": "opsets",
    "check_opset": "opsets",
    "TRANSLATION_TABLE": "translation",
}

__all__ = sorted(_LAZY)
__getattr__, __dir__ = lazy_names(__name__, {name: f"{__name__}.{module}" for name, module in _LAZY.items()})
