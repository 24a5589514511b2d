"""The ``zoo release`` command, and the pretrained table of ``zoo list --pretrained``."""

from __future__ import annotations

import argparse
import fnmatch
import json

from zoo.command import Command, add_data_dir, add_device, add_json, add_threads, require_positive
from zoo.pretrained.manifest import read_manifest

__all__ = ["RELEASE", "add_release_arguments", "print_pretrained", "release_command"]

_RELEASE_HELP = """\
Retrain a pretrained tag (PRESET.DATASET) from scratch with the settings recorded in
zoo's manifest (a new tag: the preset's recipe on that dataset), then compare its test
accuracy with the recorded one (exit status 1 if it is further than --tolerance).
--write records the result as the tag's weights: the state_dict goes into the package
(zoo/pretrained/weights/TAG-SHA256[:8].pt) and its sha256, accuracy, command, seed,
torch version, train time, machine and date into zoo/pretrained/manifest.json; then
regenerate docs/models.md with `python -m zoo.pretrained.cards docs/models.md`.
"""


def add_release_arguments(p: argparse.ArgumentParser) -> None:
    """Add the options of ``zoo release``."""
    p.add_argument("tag", help="PRESET.DATASET, e.g. mnist_cnn_32_64.mnist (`zoo list --pretrained`)")
    p.add_argument("--write", action="store_true", help="record the result as the tag's shipped weights")
    p.add_argument("--from-run", metavar="DIR",
                   help="use this finished run of exactly the tag's settings instead of training")
    p.add_argument("--out", metavar="DIR", help="run directory (default: runs/release/TAG-<time>)")
    p.add_argument("--tolerance", type=float, help="largest accepted test-accuracy difference (default: 0.003)")
    add_threads(p)
    add_device(p, default=None)
    add_data_dir(p)
    p.add_argument("--quiet", action="store_true", help="no per-epoch lines")
    add_json(p, "the release report")


def release_command(args: argparse.Namespace) -> int:
    """Carry out ``zoo release``; 1 if the accuracy is not reproduced."""
    from zoo.pretrained.release import DEFAULT_TOLERANCE, release  # training: slow to import

    require_positive(args, "threads")
    tolerance = DEFAULT_TOLERANCE if args.tolerance is None else args.tolerance
    report = release(args.tag, args.write, args.out, args.from_run, args.threads, args.device, args.data_dir,
                     tolerance, args.quiet)
    if args.json:
        print(json.dumps(report))
    else:
        line = f"{args.tag}: test accuracy {report['test_accuracy']:.4f}"
        if report["passed"] is not None:
            line += (f", recorded {report['recorded_accuracy']:.4f} (difference {report['difference']:+.4f}, "
                     f"tolerance {tolerance}): {'reproduced' if report['passed'] else 'NOT REPRODUCED'}; weights "
                     f"{'bit-identical' if report['same_weights'] else 'differ'}")
        print(line + (f"; written to {report['written']}" if report["written"] else ""))
    return 0 if report["passed"] is not False else 1


def print_pretrained(pattern: str) -> None:
    """The ``zoo list --pretrained`` table: every tag matching ``pattern``, released or recipe only."""
    print(f"{'tag':<36} {'params':>9} {'MFLOPs':>8} {'test acc':>8} {'size':>8}  command / status")
    for tag, entry in read_manifest().items():
        if not (fnmatch.fnmatch(tag, pattern) or fnmatch.fnmatch(entry.model, pattern)):
            continue
        w = entry.weights
        if w is None:
            needs = f" (needs {entry.requires})" if entry.requires else ""
            print(f"{tag:<36} {'':>9} {'':>8} {'':>8} {'':>8}  recipe only{needs}: zoo release {tag} --write")
            continue
        print(f"{tag:<36} {w['params']:>9,} {w['flops'] / 1e6:>8.2f} {w['test_accuracy']:>8.4f} "
              f"{w['size_bytes'] / 1e6:>6.2f}MB  {w['command']}")


RELEASE = Command("release", "retrain a pretrained tag and check (or record) its accuracy", _RELEASE_HELP,
                  add_release_arguments, release_command, preformatted=True)
