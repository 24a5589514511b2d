"""Export a zoo model to an ONNX file of standard operators, with its metadata.

The main path is ``torch.export`` followed by ``torch.onnx.export(dynamo=True)``
with :data:`zoo.export.translation.TRANSLATION_TABLE` mapping zoo's custom ops
to ``Conv`` / ``BatchNormalization``. The batch dimension is dynamic.

Quick use::

    from zoo.export import export_model, load_for_export
    model, info = load_for_export("runs/mnist_cnn")          # a checkpoint, run dir or preset name
    export_model(model, "mnist_cnn.onnx", info, fold_bn=True)
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import onnx
import torch
from torch import nn

import zoo
from zoo.export.metadata import INPUT_NAME, OUTPUT_NAME, ModelInfo, to_props
from zoo.export.opsets import DEFAULT_OPSET, check_opset
from zoo.export.translation import TRANSLATION_TABLE
from zoo.files import atomic_write
from zoo.models import create_model, list_models, model_config
from zoo.train import load_checkpoint, model_from_checkpoint

__all__ = ["export_model", "load_for_export", "checkpoint_model", "preset_model", "pretrained_model"]

# The largest batch the exported graph is traced for; ONNX itself keeps the dimension symbolic.
_MAX_BATCH = 1 << 20


def checkpoint_model(path: str | Path) -> tuple[nn.Module, ModelInfo]:
    """Rebuild a checkpoint's model (eval mode, CPU) and describe it for export.

    Raises:
        FileNotFoundError: no checkpoint there.
        ValueError: the file is damaged or not a zoo checkpoint (:class:`zoo.train.CheckpointError`).
    """
    checkpoint = load_checkpoint(path)
    model = model_from_checkpoint(checkpoint)
    data = checkpoint["data"]
    info = ModelInfo(
        model=checkpoint["model"]["name"],
        dataset=data["dataset"],
        classes=tuple(data["classes"]),
        mean=tuple(data["mean"]),
        std=tuple(data["std"]),
        input_shape=(data["in_channels"], *data["image_size"]),
        model_args=checkpoint["model"]["args"],
        val_size=checkpoint.get("train_config", {}).get("val_size"),
        epochs=int(checkpoint.get("epoch", 0)),
        version=zoo.__version__,
    )
    return model, info


def preset_model(name: str, dataset: str | None = None, **overrides: Any) -> tuple[nn.Module, ModelInfo]:
    """Build an untrained preset (eval mode) and describe it for export; ``dataset``/``overrides`` as in
    :func:`zoo.create_model`."""
    from zoo.data import dataset_info

    model = create_model(name, dataset=dataset, **overrides).eval()
    data = dataset_info(dataset or model_config(name).dataset)
    channels = overrides.get("in_channels", data.in_channels)
    size = tuple(overrides.get("input_size", data.image_size))
    num_classes = overrides.get("num_classes", data.num_classes)
    # Overridden shapes/class counts make the dataset's names and statistics meaningless.
    classes = data.classes if num_classes == data.num_classes else tuple(str(i) for i in range(num_classes))
    mean, std = (data.mean, data.std) if channels == data.in_channels else ((0.5,) * channels, (0.5,) * channels)
    info = ModelInfo(
        model=name, dataset=data.name, classes=classes, mean=mean, std=std, input_shape=(channels, *size),
        model_args=overrides, epochs=0, version=zoo.__version__,
    )
    return model, info


def pretrained_model(tag: str) -> tuple[nn.Module, ModelInfo]:
    """Build a released pretrained tag (``PRESET.DATASET``, weights checked; eval mode) and describe it for export.

    Raises:
        ValueError: an unknown or unreleased tag, or weights that fail their checks.
    """
    from zoo.data import dataset_info
    from zoo.pretrained import pretrained_tag

    entry = pretrained_tag(tag)
    model = create_model(tag, pretrained=True).eval()
    data = dataset_info(entry.dataset)
    info = ModelInfo(
        model=entry.model, dataset=data.name, classes=data.classes, mean=data.mean, std=data.std,
        input_shape=(data.in_channels, *data.image_size), model_args=dict(entry.train.get("model_args", {})),
        val_size=entry.train.get("val_size"), epochs=int(entry.weights["epochs"]) if entry.weights else 0,
        version=zoo.__version__,
    )
    return model, info


def load_for_export(source: str | Path) -> tuple[nn.Module, ModelInfo]:
    """A checkpoint file or run directory (trained), a preset name (untrained), or a released
    pretrained tag ``PRESET.DATASET`` (its shipped weights).

    Raises:
        FileNotFoundError: ``source`` is neither an existing path, a preset name nor a released tag.
        ValueError: the file is not a readable zoo checkpoint, or the tag's weights fail their checks.
    """
    from zoo.pretrained import list_pretrained

    if Path(source).exists():
        return checkpoint_model(source)
    if str(source) in list_models():
        return preset_model(str(source))
    if str(source) in list_pretrained():
        return pretrained_model(str(source))
    return checkpoint_model(source)


def _check_eval_mode(model: nn.Module) -> None:
    training = [name or type(model).__name__ for name, m in model.named_modules() if m.training]
    if training:
        raise ValueError(
            f"export needs an eval-mode model (call model.eval()): in training mode batch norm uses "
            f"batch statistics and dropout is random; modules in training mode: {', '.join(training[:5])}"
        )


def _check_translatable(program: torch.export.ExportedProgram) -> None:
    # A zoo op without a translation fails deep in the exporter with a generic message: say which and why.
    missing = sorted({
        str(node.target) for node in program.graph.nodes
        if node.op == "call_function" and str(node.target).startswith("zoo.") and node.target not in TRANSLATION_TABLE
    })
    if missing:
        raise ValueError(
            f"no ONNX translation for {', '.join(missing)}; batch_norm_train appears in eval mode only for "
            "BatchNorm layers with track_running_stats=False, which export does not support"
        )


def _optimize_keeping_batch_norm(model: Any) -> None:
    """onnxscript's default optimisation (constant folding, rewrites) minus the BatchNormalization fusions."""
    from unittest import mock

    from onnxscript import optimizer, rewriter

    try:
        from onnxscript.rewriter.rules.common import _fuse_batchnorm

        # optimize_ir reads rewriter._DEFAULT_REWRITE_RULES when called; no public argument selects the rules.
        fusions = set(_fuse_batchnorm.rules)
        kept = tuple(rule for rule in rewriter._DEFAULT_REWRITE_RULES if rule not in fusions)
    except (ImportError, AttributeError):  # another onnxscript layout: constant folding only (public API)
        optimizer.fold_constants(model)
        optimizer.remove_unused_nodes(model)
        return
    with mock.patch.object(rewriter, "_DEFAULT_REWRITE_RULES", kept):
        optimizer.optimize_ir(model)


@contextlib.contextmanager
def _quiet_exporter() -> Iterator[None]:
    # The exporter logs a torchvision notice and pytree deprecation warnings on every call.
    logger = logging.getLogger("torch.onnx")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", category=FutureWarning)
            warnings.filterwarnings("ignore", category=DeprecationWarning)
            yield
    finally:
        logger.setLevel(level)


def to_onnx(model: nn.Module, input_shape: tuple[int, ...], opset: int = DEFAULT_OPSET,
            fold_bn: bool = False) -> onnx.ModelProto:
    """Trace ``model`` (eval mode, float32 ``(N, *input_shape)`` input, dynamic N) into an ONNX ``ModelProto``.

    Args:
        opset: ONNX opset to target (see :func:`zoo.export.opsets.supported_opsets`).
        fold_bn: fold each BatchNormalization into the Conv/Gemm before it
            (fewer nodes); else keep BatchNormalization nodes with the running statistics.

    Raises:
        ValueError: a module is in training mode, the opset is unsupported, or the
            model uses a zoo op without an ONNX translation.
    """
    _check_eval_mode(model)
    check_opset(opset)
    # Batch 2, not 1: torch.export specialises a dimension traced at size 1.
    example = torch.randn(2, *input_shape)
    batch = torch.export.Dim("batch", min=1, max=_MAX_BATCH)
    with _quiet_exporter():
        program = torch.export.export(model, (example,), dynamic_shapes=({0: batch},))
        _check_translatable(program)
        onnx_program = torch.onnx.export(
            program, (example,), dynamo=True, custom_translation_table=TRANSLATION_TABLE, opset_version=opset,
            input_names=[INPUT_NAME], output_names=[OUTPUT_NAME], optimize=fold_bn, verbose=False,
        )
        if not fold_bn:
            _optimize_keeping_batch_norm(onnx_program.model)
    proto = onnx_program.model_proto
    produced = {o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")}
    if produced != {opset}:  # the converter falls back to opset 18 when it cannot convert
        raise ValueError(f"asked for ONNX opset {opset}, the exporter produced {sorted(produced)}")
    foreign = sorted({f"{n.domain}::{n.op_type}" for n in proto.graph.node if n.domain not in ("", "ai.onnx")})
    if foreign:
        raise ValueError(f"the exported graph uses non-standard operators: {', '.join(foreign)}")
    return proto


def export_model(model: nn.Module, path: str | Path, info: ModelInfo, opset: int = DEFAULT_OPSET,
                 fold_bn: bool = False) -> Path:
    """Export ``model`` to ``path`` with ``info`` as metadata (``info.bn_folded`` is set from ``fold_bn``).

    The file is written atomically (a temporary file, then a rename) and checked
    with ``onnx.checker.check_model(full_check=True)`` before it replaces ``path``.

    Returns:
        The path written.

    Raises:
        ValueError: as :func:`to_onnx`, or the graph fails the ONNX checker.
    """
    path = Path(path)
    proto = to_onnx(model, info.input_shape, opset, fold_bn)
    info = dataclasses.replace(info, bn_folded=fold_bn)
    del proto.metadata_props[:]  # the exporter's own entries describe torch.export internals
    for key, value in to_props(info).items():
        proto.metadata_props.add(key=key, value=value)
    proto.doc_string = (f"zoo {info.model} ({info.dataset}, {info.epochs} epochs): "
                        "logits = model((image/255 - mean)/std)")
    try:
        with atomic_write(path) as f:
            onnx.save_model(proto, f)
            f.flush()
            onnx.checker.check_model(f.name, full_check=True)  # the written file, before it replaces path
    except onnx.checker.ValidationError as err:
        raise ValueError(f"exported model fails the ONNX checker: {err}") from err
    return path
