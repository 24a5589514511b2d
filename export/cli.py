"""The ``zoo export`` command: load a checkpoint or preset, export it to ONNX, validate it, print the outcome."""

from __future__ import annotations

import argparse
import json

import torch

from zoo.command import Command, add_data_dir, add_json, add_split, add_threads, require_positive
from zoo.export.opsets import DEFAULT_OPSET, MIN_OPSET, check_opset
from zoo.export.predict import model_split
from zoo.export.validate import DEFAULT_ATOL, random_images, report_path, validate_export

__all__ = ["EXPORT", "add_export_arguments", "export_command"]

_EXPORT_HELP = """\
Export a checkpoint (or run directory, a pretrained tag such as mnist_cnn_32_64.mnist,
or an untrained preset by name) to ONNX
with standard operators only (Conv, BatchNormalization, Gemm...), a dynamic
batch dimension and zoo metadata (model, classes, mean/std, input shape,
dataset, version). Then validate it: onnx.checker (full_check), and onnxruntime
(CPU, and CUDA when present) against the torch model on the checkpoint's test
split (random images for an untrained preset or with --random) at batch 1 and
--batch-size: max abs logit difference within --atol and the same top-1 class.
The report goes to OUTPUT with the suffix .validation.json. Exit status 1 if
validation fails.
"""


def add_export_arguments(p: argparse.ArgumentParser) -> None:
    """Add the options of ``zoo export``."""
    p.add_argument("checkpoint", help="checkpoint file, run directory, pretrained tag PRESET.DATASET "
                   "(`zoo list --pretrained`), or a preset name (exported untrained)")
    p.add_argument("-o", "--output", required=True, metavar="FILE", help="the .onnx file to write")
    p.add_argument("--opset", type=int, default=DEFAULT_OPSET,
                   help=f"ONNX opset, {MIN_OPSET} up to what onnxruntime supports (default: {DEFAULT_OPSET})")
    p.add_argument("--fold-bn", action="store_true",
                   help="fold batch norm into the preceding Conv/Gemm (default: keep BatchNormalization nodes)")
    v = p.add_argument_group("validation")
    add_split(v)
    add_data_dir(v)
    v.add_argument("--samples", type=int, help="use only the first N images of the split (default: all)")
    v.add_argument("--random", type=int, metavar="N",
                   help="validate on N random images instead of data (default for untrained presets: 256)")
    v.add_argument("--batch-size", type=int, default=256, help="the large batch size compared (default: 256)")
    v.add_argument("--batch1-samples", type=int, default=1000,
                   help="images compared one at a time (default: 1000; 0: all)")
    v.add_argument("--atol", type=float, default=DEFAULT_ATOL,
                   help=f"max abs logit difference (default: {DEFAULT_ATOL})")
    add_threads(v)
    add_json(v, "the validation report")


def export_command(args: argparse.Namespace) -> int:
    """Carry out ``zoo export`` with parsed ``args``: export, validate, report; 1 if validation fails."""
    from zoo.export.onnx_export import export_model, load_for_export  # the exporter: slow to import

    require_positive(args, "samples", "random", "batch_size", "threads")
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.batch1_samples < 0 or not args.atol >= 0:
        raise ValueError("--batch1-samples and --atol must be >= 0")
    check_opset(args.opset)  # before the slow steps
    model, info = load_for_export(args.checkpoint)
    # Read the validation data before exporting, so a missing dataset fails before any file is written.
    if args.random is not None or info.epochs == 0:
        count = args.random or 256
        images, labels, inputs = random_images(info, count), None, f"{count} random uint8 images"
    else:
        images, labels = model_split(info, None, args.split, args.data_dir)
        images, labels = images[:args.samples], labels[:args.samples]
        inputs = f"{info.dataset} {args.split} split ({len(labels)} images)"
    path = export_model(model, args.output, info, args.opset, args.fold_bn)
    report = validate_export(path, model, info, images, labels, inputs, batch_sizes=(1, args.batch_size),
                             batch1_samples=args.batch1_samples or None, atol=args.atol)
    if args.json:
        print(json.dumps(report))
        return 0 if report["passed"] else 1
    print(f"exported {info.model} ({info.dataset}, {info.epochs} epochs) -> {path}: opset {report['opset']}, "
          f"{report['nodes']} nodes ({', '.join(report['operators'])}), batch norm "
          f"{'folded' if args.fold_bn else 'kept'}, {path.stat().st_size / 1e6:.2f} MB")
    print(f"onnx.checker: {report['checker']}")
    for c in report["comparisons"]:
        accuracy = (f"  accuracy torch {c['torch_accuracy']:.4f} / onnxruntime {c['onnxruntime_accuracy']:.4f}"
                    if "torch_accuracy" in c else "")
        print(f"{c['provider']} batch {c['batch_size']}: {c['samples']} images, max |logit diff| "
              f"{c['max_abs_diff']:.2e}, top-1 agreement {100 * c['top1_agreement']:.2f}%{accuracy}"
              f"{'' if c['passed'] else '  FAILED'}")
    print(f"validation {'passed' if report['passed'] else 'FAILED'} on {inputs} (atol {args.atol:g}) "
          f"-> {report_path(path)}")
    return 0 if report["passed"] else 1


EXPORT = Command("export", "export a checkpoint to ONNX and validate it in onnxruntime", _EXPORT_HELP,
                 add_export_arguments, export_command, preformatted=True)
