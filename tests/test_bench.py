"""The benchmark scripts still run: bench/models.py and bench/kernels.py in a tiny configuration, in subprocesses.

Nothing here checks a time; the scripts' printed tables are checked for the
rows and summary lines they must have, and the pieces that decide what is
compared (the torch twin of a model, the layers a preset runs) are checked
in-process.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

import zoo

BENCH = Path(__file__).resolve().parent.parent / "bench"
sys.path.insert(0, str(BENCH))

import kernels  # noqa: E402
import models  # noqa: E402
from common import median_seconds, model_variants  # noqa: E402

TINY = ["--rounds", "1", "--warmup", "0", "--threads", "1"]


def run_script(name: str, *args: str) -> str:
    """Run bench/<name> with ``args``; return its stdout, failing the test with its output if it fails."""
    result = subprocess.run([sys.executable, str(BENCH / name), *args], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, f"{name} {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}"
    return result.stdout


def test_models_script_prints_speedups_and_memory() -> None:
    out = run_script("models.py", "--only", "mnist_cnn", *TINY)
    row = next(line for line in out.splitlines() if line.startswith("mnist_cnn "))
    assert row.count("x") >= 3 and row.endswith("MiB"), row
    assert "n/a" not in row  # peak RSS measured in child processes (Linux)
    assert "geomean speed-up (torch time / ours) over 1 models: train" in out
    assert "geomean peak training memory ratio" in out


def test_models_script_markdown_bn_variant() -> None:
    out = run_script("models.py", "--only", "emnist_dnn_2x100+bn", "--markdown", "--no-memory", *TINY)
    lines = out.splitlines()
    header = next(i for i, line in enumerate(lines) if line.startswith("| preset |"))
    assert lines[header + 1].startswith("|---|")
    assert lines[header + 2].startswith("| emnist_dnn_2x100+bn | 128 |") and "skipped" in lines[header + 2]


def test_models_script_with_malloc_keeping_freed_blocks() -> None:
    out = run_script("models.py", "--only", "emnist_dnn_2x100+bn", "--no-memory", "--keep-freed-memory", *TINY)
    assert "malloc keeping freed blocks" in out.splitlines()[0]
    assert any(line.startswith("emnist_dnn_2x100+bn ") for line in out.splitlines())


def test_kernels_script_times_a_presets_layers() -> None:
    out = run_script("kernels.py", "--only", "mnist_cnn", "--markdown", *TINY)
    assert "reference copy bandwidth:" in out
    assert "| conv 1→4 k3 p1, 128x1x28x28 |" in out
    assert "| conv 4→4 k3 p1, 128x4x14x14 |" in out
    assert "geomean speed-up (torch time / ours): forward" in out


def test_kernels_script_sets_batch_norm_against_a_copy() -> None:
    out = run_script("kernels.py", "--only", "BN1d+ReLU train 128x100", *TINY)
    row = next(line for line in out.splitlines() if line.startswith("BN1d+ReLU train 128x100"))
    assert "% of copy)" in row, row
    assert "batch-norm training forward / copy of x timed in the same rounds, every batch-norm layer (1): median" in out


def test_kernels_list_covers_every_preset() -> None:
    out = run_script("kernels.py", "--list", "--large")
    for label in (v.label for v in model_variants()):
        if label.startswith(("emnist_dnn", "mnist_mlp", "cifar10_mlp")) and not label.endswith("+bn"):
            continue  # MLPs without batch norm have no zoo layer
        assert label in out, label
    assert "conv 96→192 k5 p2, 128x96x16x16" in out and "conv 96→192 k5 p2, 256x96x16x16" in out
    assert "BN2d train 128x192x32x32" in out and "BN1d+ReLU train 100x50" in out
    assert "BN2d+ReLU train 128x192x32x32" in out  # nin_relu_bn's, with the fused ReLU
    assert "maxpool k3 s2 p1, 128x96x32x32" in out and "dropout p0.5, 128x96x16x16" in out


def test_layers_of_records_shapes_at_the_recipe_batch() -> None:
    variant = next(v for v in model_variants() if v.label == "mnist_cnn_32_64")
    layers = kernels.layers_of(variant)
    assert [layer.name for layer in layers] == [
        "conv 1→32 k3 p1, 128x1x28x28", "BN2d+ReLU train 128x32x28x28", "maxpool k2, 128x32x28x28",
        "conv 32→64 k3 p1, 128x32x14x14", "BN2d+ReLU train 128x64x14x14", "maxpool k2, 128x64x14x14",
        "linear 3136→128, 128x3136", "BN1d+ReLU train 128x128",
        "dropout p0.5, 128x128", "linear 128→10, 128x128",
    ]


def test_kernels_still_exports_median_seconds() -> None:
    assert callable(kernels.median_seconds)  # bench/onnx_runtime.py imports it from there


@pytest.mark.parametrize("label", ["mnist_cnn_32_64", "nin_maxout_bn", "nin_elu", "nin_leaky_bn"])
def test_torch_twin_has_torch_layers_and_same_outputs(label: str) -> None:
    variant = next(v for v in model_variants() if v.label == label)
    pair = models.build_pair(variant, torch.device("cpu"))
    zoo_layers = (zoo.nn.Conv2d, zoo.nn.Linear, zoo.nn.BatchNorm1d, zoo.nn.BatchNorm2d, zoo.nn.MaxPool2d,
                  zoo.nn.Dropout, zoo.nn.Maxout, zoo.nn.ELU)
    assert any(isinstance(m, zoo_layers) for m in pair["ours"].modules())
    assert not any(isinstance(m, zoo_layers) for m in pair["torch"].modules())
    assert pair["ours"].state_dict().keys() == pair["torch"].state_dict().keys()
    models.check_same_function(pair["ours"], pair["torch"], torch.randn(variant.input_shape(2)))


def test_median_seconds_times_short_calls_in_loops() -> None:
    calls = []

    def sleep_1ms() -> None:
        calls.append(None)
        time.sleep(0.001)

    seconds = median_seconds({"sleep": sleep_1ms}, torch.device("cpu"), repeat=3, warmup=0, min_sample_seconds=0.01)
    assert len(calls) >= 1 + 3 * 5  # one calibrating call, then samples of several calls each
    assert 0.001 <= seconds["sleep"] < 0.005  # per call, not per sample
