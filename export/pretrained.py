"""The ONNX file of a pretrained tag, for ``zoo predict TAG``: exported and validated on first use, then cached.

The file goes to ``<zoo cache>/onnx/TAG-SHA256[:8].onnx`` (``$ZOO_CACHE_DIR``, default
``~/.cache/zoo/cache``), named after the weights it holds, so new weights never reuse an old
export. Creating it needs torch; using it afterwards needs onnxruntime only.
"""

from __future__ import annotations

from pathlib import Path

from zoo.data import cache_root
from zoo.pretrained.manifest import pretrained_tag

__all__ = ["pretrained_onnx"]

# Random images compared between torch and onnxruntime when the file is made (no data needed).
_CHECK_IMAGES = 64


def pretrained_onnx(tag: str, cache_dir: str | Path | None = None) -> Path:
    """The path of the released tag's ONNX file, exporting it (and checking it against torch) if not cached.

    Raises:
        ValueError: an unknown or unreleased tag, weights that fail their checks, or an export that
            does not match torch.
    """
    entry = pretrained_tag(tag)
    if entry.weights is None:
        raise ValueError(f"{tag} is a recipe without released weights; `zoo release {tag} --write` trains it")
    path = cache_root(cache_dir) / "onnx" / f"{tag}-{entry.weights['sha256'][:8]}.onnx"
    if path.is_file():
        return path
    from zoo.export.onnx_export import export_model, pretrained_model  # torch, onnx: only to make the file
    from zoo.export.validate import random_images, validate_export

    model, info = pretrained_model(tag)
    export_model(model, path, info)
    report = validate_export(path, model, info, random_images(info, _CHECK_IMAGES), None,
                             f"{_CHECK_IMAGES} random uint8 images", batch_sizes=(1, _CHECK_IMAGES),
                             write_report=False)
    if not report["passed"]:
        path.unlink()
        raise ValueError(f"{tag}: the ONNX export does not give torch's answers; use a run directory instead")
    return path
