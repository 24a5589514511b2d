"""What each rank runs in the distributed tests (spawned by zoo.train.launch, so importable by name)."""

from __future__ import annotations

import torch

import zoo
from zoo.train.distributed import from_environment

# (global batch shape, per-rank sizes, channels_last, affine, dtype): equal and unequal shares, an empty
# share, 2-D to 5-D input, both layouts.
SYNC_BN_CASES = [
    ((8, 3), (4, 4), False, True, torch.float64),
    ((7, 4, 5), (5, 2), False, False, torch.float64),
    ((6, 3, 4, 4), (3, 3), False, True, torch.float64),
    ((5, 3, 4, 4), (2, 3), True, True, torch.float64),
    ((4, 2, 3, 3), (4, 0), False, True, torch.float64),
    ((4, 2, 2, 3, 3), (2, 2), False, True, torch.float64),
    ((16, 6, 5, 5), (8, 8), False, True, torch.float32),
]


def sync_batch_norm_case(out_dir: str) -> int:
    """Forward, backward and running statistics of zoo.nn.SyncBatchNorm on this rank's share of each case."""
    torch.set_num_threads(1)
    shard = from_environment("cpu", timeout_s=60)
    results = []
    for index, (shape, sizes, channels_last, affine, dtype) in enumerate(SYNC_BN_CASES):
        generator = torch.Generator().manual_seed(index)  # the same global batch on every rank
        x = (torch.randn(shape, generator=generator, dtype=dtype) * 2 + 3)
        dy = torch.randn(shape, generator=generator, dtype=dtype)
        start = sum(sizes[:shard.rank])
        part = slice(start, start + sizes[shard.rank])
        layer = zoo.nn.SyncBatchNorm.convert_sync_batchnorm(
            torch.nn.BatchNorm2d(shape[1], affine=affine, momentum=0.3)).to(dtype)
        if affine:
            with torch.no_grad():
                layer.weight.copy_(torch.rand(shape[1], generator=generator, dtype=dtype) + 0.5)
                layer.bias.copy_(torch.randn(shape[1], generator=generator, dtype=dtype))
        local = x[part].clone()
        if channels_last:
            local = local.contiguous(memory_format=torch.channels_last)
        local.requires_grad_()
        for _ in range(2):  # two steps: running statistics follow over steps
            y = layer(local)
        (y * dy[part]).sum().backward()
        results.append({
            "y": y.detach(), "dx": local.grad, "running_mean": layer.running_mean.clone(),
            "running_var": layer.running_var.clone(), "num_batches_tracked": layer.num_batches_tracked.clone(),
            "dweight": layer.weight.grad if affine else None, "dbias": layer.bias.grad if affine else None,
        })
    torch.save(results, f"{out_dir}/rank{shard.rank}.pt")
    return 0
