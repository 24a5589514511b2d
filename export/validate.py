"""Prove an exported file gives the torch model's answers: ONNX checker, then onnxruntime vs torch.

Both sides start from the same uint8 images: torch normalises them with
:func:`zoo.data.normalize` and the checkpoint's mean/std; onnxruntime goes
through :class:`zoo.export.predict.Classifier`, i.e. the file's own metadata,
exactly as deployment will. Each available provider (CPU; CUDA when present)
is compared at batch 1 and at a large batch: max abs difference of the logits
and top-1 agreement (plus accuracy of both when labels are known). The report
is written as JSON beside the ``.onnx`` file.
"""

from __future__ import annotations

import datetime
import hashlib
import platform
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import onnxruntime as ort
import torch
from torch import nn

import zoo
from zoo.data import normalize
from zoo.export.metadata import ModelInfo
from zoo.export.predict import Classifier
from zoo.export.session import providers as default_providers
from zoo.files import write_json

__all__ = ["DEFAULT_ATOL", "random_images", "compare", "validate_export", "report_path"]

DEFAULT_ATOL = 1e-4


def report_path(onnx_path: str | Path) -> Path:
    """Where the validation report of ``model.onnx`` goes: ``model.validation.json`` beside it."""
    return Path(onnx_path).with_suffix(".validation.json")


def random_images(info: ModelInfo, count: int, seed: int = 0) -> np.ndarray:
    """``count`` uniformly random uint8 images of the model's shape (for untrained models or no data)."""
    return np.random.default_rng(seed).integers(0, 256, size=(count, *info.input_shape), dtype=np.uint8)


def _torch_logits(model: nn.Module, images: np.ndarray, info: ModelInfo, batch_size: int) -> np.ndarray:
    parts = []
    with torch.inference_mode():
        for i in range(0, len(images), batch_size):
            x = normalize(torch.from_numpy(images[i:i + batch_size]), info.mean, info.std)
            parts.append(model(x).numpy())
    return np.concatenate(parts)


def compare(model: nn.Module, classifier: Classifier, images: np.ndarray, info: ModelInfo, batch_size: int,
            labels: np.ndarray | None = None, atol: float = DEFAULT_ATOL) -> dict[str, Any]:
    """Run torch and onnxruntime on the same images at ``batch_size``; return the comparison as a dict.

    ``passed`` needs the max abs logit difference within ``atol``; a top-1
    disagreement is tolerated only where torch's two best logits are within
    ``2 * atol`` (a tie at float32 precision, where either answer is right).
    """
    start = time.perf_counter()
    expected = _torch_logits(model, images, info, batch_size)
    torch_seconds = time.perf_counter() - start
    start = time.perf_counter()
    got = classifier.logits(images, batch_size)
    onnx_seconds = time.perf_counter() - start
    diff = np.abs(got.astype(np.float64) - expected)
    top_torch, top_onnx = expected.argmax(axis=1), got.argmax(axis=1)
    disagree = top_torch != top_onnx
    best_two = np.sort(expected, axis=1)[:, -2:] if expected.shape[1] > 1 else np.zeros((len(expected), 2))
    ties = (best_two[:, 1] - best_two[:, 0]) <= 2 * atol
    result: dict[str, Any] = {
        "provider": classifier.session.get_providers()[0],
        "batch_size": batch_size,
        "samples": len(images),
        "max_abs_diff": float(diff.max()),
        "mean_abs_diff": float(diff.mean()),
        "max_abs_logit": float(np.abs(expected).max()),
        "top1_agreement": float(1.0 - disagree.mean()),
        "top1_disagreements": int(disagree.sum()),
        "torch_seconds": round(torch_seconds, 4),
        "onnxruntime_seconds": round(onnx_seconds, 4),
    }
    if labels is not None:
        result["torch_accuracy"] = float((top_torch == labels).mean())
        result["onnxruntime_accuracy"] = float((top_onnx == labels).mean())
    result["passed"] = bool(result["max_abs_diff"] <= atol and not (disagree & ~ties).any())
    return result


def validate_export(
    onnx_path: str | Path,
    model: nn.Module,
    info: ModelInfo,
    images: np.ndarray,
    labels: np.ndarray | None = None,
    inputs: str = "random images",
    batch_sizes: Sequence[int] = (1, 256),
    batch1_samples: int | None = 1000,
    atol: float = DEFAULT_ATOL,
    providers: Sequence[str] | None = None,
    write_report: bool = True,
) -> dict[str, Any]:
    """Check ``onnx_path`` with the ONNX checker and compare it with ``model`` in onnxruntime.

    Args:
        model: the torch model it was exported from (eval mode).
        info: the torch side's facts (normalisation); the onnxruntime side reads the file's metadata.
        images, labels: uint8 ``(N, C, H, W)`` and optional int labels.
        inputs: what the images are, for the report (e.g. ``"mnist test split"``).
        batch_sizes: batch sizes to compare at.
        batch1_samples: at batch size 1 use only the first this many images (None: all),
            as torch's per-call overhead makes 10,000 single-image calls slow on big models.
        providers: onnxruntime providers (default: CUDA when available, and CPU).
        write_report: write the report to :func:`report_path`.

    Returns:
        The report: checker result, one comparison per (provider, batch size), and ``passed``.

    Raises:
        FileNotFoundError, ValueError: the file is missing or not a loadable zoo ONNX model.
    """
    onnx_path = Path(onnx_path)
    if not atol >= 0:
        raise ValueError(f"atol must be >= 0, got {atol}")
    if not onnx_path.is_file():
        raise FileNotFoundError(f"{onnx_path}: no ONNX file")
    try:
        onnx.checker.check_model(str(onnx_path), full_check=True)
        checker = "passed (full_check=True)"
    except (onnx.checker.ValidationError, onnx.shape_inference.InferenceError) as err:
        checker = f"failed: {err}"
    proto = onnx.load(str(onnx_path), load_external_data=False)
    comparisons = []
    for provider in providers or default_providers():
        classifier = Classifier(onnx_path, provider)
        for batch_size in batch_sizes:
            count = len(images) if batch_size != 1 or batch1_samples is None else min(len(images), batch1_samples)
            subset_labels = None if labels is None else labels[:count]
            comparisons.append(compare(model, classifier, images[:count], info, batch_size, subset_labels, atol))
    report = {
        "onnx": onnx_path.name,
        "sha256": hashlib.sha256(onnx_path.read_bytes()).hexdigest(),
        "created": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
        "model": info.model,
        "dataset": info.dataset,
        "epochs": info.epochs,
        "opset": next((o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")), None),
        "bn_folded": {p.key: p.value for p in proto.metadata_props}.get("zoo.bn_folded") == "true",
        "nodes": len(proto.graph.node),
        "operators": sorted({node.op_type for node in proto.graph.node}),
        "inputs": inputs,
        "atol": atol,
        "checker": checker,
        "comparisons": comparisons,
        "versions": {"zoo": zoo.__version__, "torch": torch.__version__, "onnx": onnx.__version__,
                     "onnxruntime": ort.__version__, "python": platform.python_version()},
        "machine": platform.machine(),
        "torch_threads": torch.get_num_threads(),
        "passed": checker.startswith("passed") and all(c["passed"] for c in comparisons),
    }
    if write_report:
        write_json(report_path(onnx_path), report, indent=2)
    return report
