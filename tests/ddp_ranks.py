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


# ------------------------------------------------------------------ training
# Global batches of 16, 16 and 5 images: the last one splits 3 / 2 over two ranks.
BATCH_SIZES = (16, 16, 5)
# The presets of the step-by-step test, with batch norm on and dropout off (each rank draws its own masks).
STEP_MODELS = {
    "mlp": ("emnist_dnn_2x100", {"hidden": [16], "batch_norm": True, "num_classes": 10, "in_channels": 1}),
    "cnn": ("mnist_cnn", {"batch_norm": True}),
}


def step_setup(name: str):
    """The model, optimizer and global batches of the step-by-step test, identical in every process."""
    from zoo.models import create_model
    from zoo.train.rng import seed_everything

    preset, args = STEP_MODELS[name]
    seed_everything(0)
    model = create_model(preset, **args)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    generator = torch.Generator().manual_seed(1)
    batches = [(torch.randn(n, 1, 28, 28, generator=generator), torch.randint(0, 10, (n,), generator=generator))
               for n in BATCH_SIZES]
    return model, optimizer, batches


def train_steps_case(out_dir: str) -> int:
    """Each preset trained one global batch at a time through DistributedDataParallel: the loss of every step
    (train_one_epoch over one batch) and the final weights."""
    from torch.nn.parallel import DistributedDataParallel

    from zoo.train.loop import train_one_epoch

    torch.set_num_threads(1)
    shard = from_environment("cpu", timeout_s=60)
    results = {}
    for name in STEP_MODELS:
        model, optimizer, batches = step_setup(name)
        model = zoo.nn.SyncBatchNorm.convert_sync_batchnorm(model)
        ddp = DistributedDataParallel(model, forward_sync_buffers=False)
        losses = [train_one_epoch(ddp, optimizer, [batch], torch.device("cpu"), shard=shard).loss
                  for batch in batches]
        results[name] = {"losses": losses, "state_dict": model.state_dict()}
    torch.save(results, f"{out_dir}/rank{shard.rank}.pt")
    return 0


def fit_case(out_dir: str, config: dict, kill_rank1_at_step: int | None = None, resume: bool = False) -> int:
    """fit() on this rank; rank 1 kills itself (SIGKILL) at its ``kill_rank1_at_step``-th training step if given."""
    import os
    import signal

    import zoo.train.loop as loop
    from zoo.train import TrainConfig, fit

    torch.set_num_threads(1)
    shard = from_environment("cpu", timeout_s=30)
    if kill_rank1_at_step is not None and shard.rank == 1:
        step, steps = loop._step, [0]

        def dying_step(*args, **kwargs):
            steps[0] += 1
            if steps[0] == kill_rank1_at_step:
                os.kill(os.getpid(), signal.SIGKILL)
            return step(*args, **kwargs)

        loop._step = dying_step
    result = fit(TrainConfig(**config), f"{out_dir}/run", resume=resume, shard=shard)
    torch.save({"history": result.history, "test_acc": result.test.accuracy,
                "state_dict": torch.load(f"{out_dir}/run/checkpoint.pt")["state_dict"] if shard.is_main else None},
               f"{out_dir}/rank{shard.rank}.pt")
    return 0
