"""A kernel demo: train a small conv+batch-norm net built from zoo's layers beside its torch twin.

Run with ``python -m zoo.demo``. Both nets start from the same weights and see
the same batches; the demo prints how far apart their losses and weights are
after training, and the time each took. (The zoo models and the real-data
training command will replace this as the main job.)
"""

from __future__ import annotations

import argparse
import time

import torch

import zoo


def make_net(conv: type, bn2d: type, bn1d: type) -> torch.nn.Sequential:
    """A small CNN for 1x28x28 inputs, with the given conv and batch-norm layer classes."""
    return torch.nn.Sequential(
        conv(1, 8, 3, padding=1), bn2d(8), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
        conv(8, 16, 3, padding=1), bn2d(16), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
        torch.nn.Flatten(), torch.nn.Linear(16 * 7 * 7, 64), bn1d(64), torch.nn.ReLU(), torch.nn.Linear(64, 10),
    )


def train(net: torch.nn.Module, batches: list[tuple[torch.Tensor, torch.Tensor]]) -> tuple[list[float], float]:
    """SGD with momentum over the batches; returns the losses and the seconds taken."""
    optimizer = torch.optim.SGD(net.parameters(), lr=0.05, momentum=0.9)
    losses = []
    start = time.perf_counter()
    for x, y in batches:
        optimizer.zero_grad()
        loss = torch.nn.functional.cross_entropy(net(x), y)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    return losses, time.perf_counter() - start


def main(argv: list[str] | None = None) -> None:
    """Train the zoo and torch twins on the same synthetic batches and report the differences."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=50, help="training steps (default 50)")
    parser.add_argument("--batch-size", type=int, default=100, help="batch size (default 100)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    args = parser.parse_args(argv)

    torch.manual_seed(args.seed)
    # Class-dependent blobs, so the loss has something to learn.
    centres = torch.randn(10, 1, 28, 28)
    batches = []
    for _ in range(args.steps):
        y = torch.randint(0, 10, (args.batch_size,))
        batches.append((centres[y] + torch.randn(args.batch_size, 1, 28, 28), y))

    ours = make_net(zoo.nn.Conv2d, zoo.nn.BatchNorm2d, zoo.nn.BatchNorm1d)
    ref = make_net(torch.nn.Conv2d, torch.nn.BatchNorm2d, torch.nn.BatchNorm1d)
    ref.load_state_dict(ours.state_dict())
    our_losses, our_time = train(ours, batches)
    ref_losses, ref_time = train(ref, batches)

    weight_gap = max((a - b).abs().max().item() for a, b in zip(ours.state_dict().values(), ref.state_dict().values()))
    print(f"steps: {args.steps}, batch size: {args.batch_size}, threads: {torch.get_num_threads()}")
    print(f"loss  first -> last   zoo: {our_losses[0]:.4f} -> {our_losses[-1]:.4f}   torch: {ref_losses[0]:.4f} -> {ref_losses[-1]:.4f}")
    print(f"max |loss gap| over steps: {max(abs(a - b) for a, b in zip(our_losses, ref_losses)):.2e}")
    print(f"max |weight/buffer gap| after training: {weight_gap:.2e}")
    print(f"time   zoo: {our_time:.2f} s   torch: {ref_time:.2f} s")


if __name__ == "__main__":
    main()
