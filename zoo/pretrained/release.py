"""``zoo release TAG``: train a tag from its recipe, check it reproduces the recorded accuracy, record it.

The tag's recipe is its manifest entry's ``train`` settings (for a new tag: the preset's recipe on the
tag's dataset). :func:`release` trains it with :func:`zoo.train.fit` (or takes a finished run of the
same settings, ``from_run``), then compares the test accuracy with the recorded one and, with
``write``, saves the weights into the package (``weights/TAG-SHA256[:8].pt``) and their metadata into
the manifest.
"""

from __future__ import annotations

import datetime
import os
import platform
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch

import zoo
from zoo.files import atomic_write, read_json, write_text
from zoo.models import create_model, model_config
from zoo.models.cost import count_flops, count_parameters
from zoo.pretrained import manifest
from zoo.pretrained.manifest import PretrainedTag, manifest_text, read_manifest, split_tag
from zoo.pretrained.loading import sha256_of
from zoo.train import TrainConfig, fit, load_checkpoint
from zoo.train.cli import train_command_line

__all__ = ["DEFAULT_TOLERANCE", "machine_description", "recipe", "release", "save_weights"]

# Test accuracy a retrained tag may differ by: another CPU model rounds differently (a few tenths of a
# point at most, see `zoo train --help`); the same machine and threads reproduce it exactly.
DEFAULT_TOLERANCE = 0.003


def recipe(tag: str) -> PretrainedTag:
    """The tag's manifest entry, or for a tag not in the manifest a new one from the preset's recipe.

    Raises:
        ValueError: not ``PRESET.DATASET`` of a registered preset and a known dataset.
    """
    tags = read_manifest()
    if tag in tags:
        return tags[tag]
    model, dataset = split_tag(tag)
    preset = model_config(model)
    config = TrainConfig.from_dict({**preset.recipe, "model": model, "dataset": dataset})
    return PretrainedTag(tag, model, dataset, config.identity())


def machine_description(threads: int | None) -> str:
    """``'CPU MODEL, N CPUs, T torch threads'`` (or the GPU's name) for the model card."""
    if torch.cuda.is_available():
        return f"{torch.cuda.get_device_name()} (CUDA {torch.version.cuda})"
    name = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                name = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{name}, {os.cpu_count()} CPUs, {threads or torch.get_num_threads()} torch thread(s)"


def save_weights(state_dict: dict[str, torch.Tensor], tag: str, folder: Path | None = None) -> Path:
    """Write a state_dict as ``folder/TAG-SHA256[:8].pt`` (torch.hub's naming; default folder: the
    package's weights), atomically; its path."""
    folder = manifest.WEIGHTS_DIR if folder is None else folder
    scratch = folder / f".{tag}.pt"
    computing = torch.serialization.get_crc32_options()
    torch.serialization.set_crc32_options(True)  # every record verifiable (zoo.archives.zip_damage)
    try:
        with atomic_write(scratch) as f:
            torch.save(state_dict, f)
    finally:
        torch.serialization.set_crc32_options(computing)
    path = folder / f"{tag}-{sha256_of(scratch)[:8]}.pt"
    os.replace(scratch, path)
    return path


def _weights_metadata(entry: PretrainedTag, config: TrainConfig, run_dir: Path, path: Path) -> dict[str, Any]:
    checkpoint = load_checkpoint(run_dir)
    results = read_json(run_dir / "results.json")
    model = create_model(entry.model, dataset=entry.dataset, **config.model_args)
    model.load_state_dict(checkpoint["state_dict"])
    info = checkpoint["data"]
    started = Path(run_dir / "config.json").stat().st_mtime
    return {
        "file": path.name, "sha256": sha256_of(path), "size_bytes": path.stat().st_size,
        "params": count_parameters(model), "flops": count_flops(model, (info["in_channels"], *info["image_size"])),
        "test_accuracy": results["test_acc"], "test_loss": results["test_loss"],
        "test_samples": results["test_samples"], "val_accuracy": results["final_val_acc"],
        "epochs": results["epochs"], "seed": config.seed, "train_time_s": round(results["train_time_s"], 1),
        "threads": config.threads, "machine": machine_description(config.threads),
        "torch_version": torch.__version__, "zoo_version": zoo.__version__,
        "date": datetime.date.fromtimestamp(started).isoformat(),
        "command": train_command_line(config),
    }


def release(
    tag: str,
    write: bool = False,
    out: str | Path | None = None,
    from_run: str | Path | None = None,
    threads: int | None = None,
    device: str | None = None,
    data_dir: str | None = None,
    tolerance: float = DEFAULT_TOLERANCE,
    quiet: bool = False,
) -> dict[str, Any]:
    """Train ``tag`` from its recipe (or take ``from_run``), compare it with the recorded accuracy, and
    with ``write`` record it as the tag's weights.

    Args:
        tag: ``PRESET.DATASET``.
        write: save the weights into the package and their metadata into the manifest.
        out: the run directory (default ``runs/release/TAG-<time>``).
        from_run: a finished run directory of exactly the tag's settings, used instead of training.
        threads: torch threads (default: those the tag was released with, else 1).
        device: default ``cuda`` for a tag that requires it, else ``cpu``.
        tolerance: how far the test accuracy may be from the recorded one.

    Returns:
        ``{tag, run_dir, test_accuracy, recorded_accuracy, difference, passed, same_weights, written}``;
        ``passed`` is None when nothing was recorded yet.

    Raises:
        ValueError: an unknown tag, or ``from_run`` is another run or unfinished.
    """
    entry = recipe(tag)
    recorded = entry.weights or {}
    config = TrainConfig.from_dict({
        **entry.train, "threads": threads or recorded.get("threads") or 1, "data_dir": data_dir, "quiet": quiet,
        "device": device or ("cuda" if entry.requires == "cuda" else "cpu"),
    })
    if from_run is not None:
        run_dir = Path(from_run)
        changed = config.differences(load_checkpoint(run_dir)["train_config"])
        if changed:
            raise ValueError(f"{run_dir} is not a run of {tag}'s recipe ({', '.join(changed)})")
        if not (run_dir / "results.json").is_file():
            raise ValueError(f"{run_dir}: unfinished run (no results.json)")
    else:
        run_dir = Path(out) if out else Path("runs") / "release" / f"{tag}-{time.strftime('%Y%m%d-%H%M%S')}"
        fit(config, run_dir)
    state = load_checkpoint(run_dir)["state_dict"]
    accuracy = read_json(run_dir / "results.json")["test_acc"]
    report: dict[str, Any] = {"tag": tag, "run_dir": str(run_dir), "test_accuracy": accuracy,
                              "recorded_accuracy": recorded.get("test_accuracy"), "difference": None,
                              "passed": None, "same_weights": None, "written": None}
    if recorded:
        report["difference"] = accuracy - recorded["test_accuracy"]
        report["passed"] = abs(report["difference"]) <= tolerance
        scratch = save_weights(state, f".check-{tag}", Path(run_dir))
        report["same_weights"] = sha256_of(scratch) == recorded["sha256"]
    if write:
        path = save_weights(state, tag)
        tags = read_manifest()
        old = tags.get(tag)
        tags[tag] = replace(entry, weights=_weights_metadata(entry, config, run_dir, path))
        write_text(manifest.MANIFEST_PATH, manifest_text(tags))
        if old is not None and old.weights is not None and old.weights["file"] != path.name:
            (manifest.WEIGHTS_DIR / old.weights["file"]).unlink(missing_ok=True)
        report["written"] = str(path)
    return report
