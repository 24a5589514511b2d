"""Benchmark exported models in onnxruntime against the same models in eager torch (zoo's kernels).

For an MLP, two CNNs and a NIN preset (untrained weights: speed does not
depend on them), each model is exported with zoo.export and timed in the same
run: latency at batch 1 (ms per call) and throughput at a large batch (images
per second), median of repeated calls after warm-up, torch and onnxruntime
taking turns within each round. Both run on the CPU with the same number of
threads (--threads, default torch's).

    python bench/onnx_runtime.py                 # default models, batch 1 and 256
    python bench/onnx_runtime.py --markdown      # table as markdown, for docs/export.md
    python bench/onnx_runtime.py --only nin --fold-bn --threads 1
"""

from __future__ import annotations

import argparse
import platform
import tempfile
from pathlib import Path

import numpy as np
import onnxruntime as ort
import torch
from kernels import median_seconds  # bench/kernels.py: interleaved medians

from zoo.data import normalize
from zoo.export import export_model, preset_model

MODELS = ["mnist_mlp_1024_512", "mnist_cnn", "emnist_cnn_2conv", "nin_relu_bn"]
CPU = torch.device("cpu")


def bench_model(name: str, folder: Path, batch: int, fold_bn: bool, repeat_small: int, repeat_large: int,
                warmup: int) -> dict[str, float]:
    """Export ``name`` and time torch and onnxruntime at batch 1 and ``batch``."""
    model, info = preset_model(name)
    path = export_model(model, folder / f"{name}.onnx", info, fold_bn=fold_bn)
    options = ort.SessionOptions()
    options.intra_op_num_threads = torch.get_num_threads()  # same thread count as torch
    # onnxruntime's idle threads spin-wait by default; in turn-taking rounds that
    # spinning steals the cores torch's next call needs.
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    row: dict[str, float] = {"params": sum(p.numel() for p in model.parameters())}
    for size, repeat in ((1, repeat_small), (batch, repeat_large)):
        images = np.random.default_rng(0).integers(0, 256, (size, *info.input_shape), dtype=np.uint8)
        x = normalize(torch.from_numpy(images), info.mean, info.std)
        feed = {session.get_inputs()[0].name: x.numpy()}

        def run_torch() -> None:
            with torch.inference_mode():
                model(x)

        times = median_seconds({"torch": run_torch, "ort": lambda: session.run(None, feed)}, CPU, repeat, warmup)
        row[f"torch_{size}"], row[f"ort_{size}"] = times["torch"], times["ort"]
    return row


def main() -> None:
    """Parse options, run the benchmark, print the table."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch", type=int, default=256, help="the throughput batch size (default 256)")
    parser.add_argument("--repeat", type=int, default=30, help="timed calls at batch 1 (default 30)")
    parser.add_argument("--repeat-large", type=int, default=7, help="timed calls at the large batch (default 7)")
    parser.add_argument("--nin-repeat-large", type=int, default=3,
                        help="timed calls at the large batch for NIN, seconds each in eager torch (default 3)")
    parser.add_argument("--warmup", type=int, default=1, help="untimed calls first (default 1)")
    parser.add_argument("--fold-bn", action="store_true", help="export with batch norm folded into the convolutions")
    parser.add_argument("--threads", type=int, help="threads for torch and onnxruntime (default: torch's default)")
    parser.add_argument("--only", default="", help="run only models whose name contains this text")
    parser.add_argument("--markdown", action="store_true", help="print a markdown table")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    print(f"{platform.machine()} CPU, torch {torch.__version__} ({torch.get_num_threads()} threads), "
          f"onnxruntime {ort.__version__} (as many intra-op threads), float32, "
          f"batch norm {'folded' if args.fold_bn else 'kept'} in the export; medians")
    b = args.batch
    header = ["model", "params", "torch b1", "onnxruntime b1", "speed-up b1", f"torch b{b}", f"onnxruntime b{b}",
              f"speed-up b{b}"]
    if args.markdown:
        print("| " + " | ".join(header) + " |\n|" + "---|" * len(header))
    else:
        print("  ".join(f"{h:>16}" for h in header))
    with tempfile.TemporaryDirectory() as folder:
        for name in MODELS:
            if args.only not in name:
                continue
            large = args.nin_repeat_large if name.startswith("nin") else args.repeat_large
            r = bench_model(name, Path(folder), b, args.fold_bn, args.repeat, large, args.warmup)
            cells = [
                name, f"{int(r['params']):,}",
                f"{r['torch_1'] * 1e3:.3f} ms", f"{r['ort_1'] * 1e3:.3f} ms", f"{r['torch_1'] / r['ort_1']:.2f}x",
                f"{b / r[f'torch_{b}']:,.0f} img/s", f"{b / r[f'ort_{b}']:,.0f} img/s",
                f"{r[f'torch_{b}'] / r[f'ort_{b}']:.2f}x",
            ]
            print("| " + " | ".join(cells) + " |" if args.markdown else "  ".join(f"{c:>16}" for c in cells),
                  flush=True)


if __name__ == "__main__":
    main()
