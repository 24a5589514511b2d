"""Numerical gradient check of a whole network: central finite differences vs autograd, in float64.

The network runs on zoo's own kernels (``zoo.nn`` batch norm and convolution
have float64 CPU kernels), so this checks their backward passes in place,
together with everything around them, on the actual loss a study trains.
"""

from __future__ import annotations

import copy
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["H", "REL_FLOOR", "ParamCheck", "check_gradients", "gradient_cost"]

H = 1e-6  # default finite-difference step
REL_FLOOR = 1e-6  # smallest denominator of the relative error


@dataclass
class ParamCheck:
    """Agreement of analytic and numerical gradients for one parameter tensor.

    Attributes:
        name: the parameter's name in ``model.named_parameters()``.
        module: the class of the layer holding it (``'Linear'``, ``'BatchNorm1d'``...).
        shape: its shape.
        checked: how many entries were compared.
        max_abs_err: ``max |analytic - numerical|``.
        max_rel_err: ``max |a - n| / max(|a| + |n|, 1e-6)``; the floor keeps exactly-zero
            gradients (e.g. a bias just before batch norm, which cancels it) from reading as 100% error.
        max_abs_grad: ``max |analytic|`` over the checked entries (the scale of the errors).
        passed: every checked entry has ``|a - n| <= atol + rtol * |n|``.
    """

    name: str
    module: str
    shape: tuple[int, ...]
    checked: int
    max_abs_err: float
    max_rel_err: float
    max_abs_grad: float
    passed: bool

    def to_dict(self) -> dict:
        """JSON-ready dict."""
        return asdict(self)


def gradient_cost(model: nn.Module, images: torch.Tensor, labels: torch.Tensor, l2: float = 0.0) -> torch.Tensor:
    """Mean cross-entropy plus ``l2 * sum(W**2)`` over the Linear/Conv weights (the cost the gradient is of)."""
    loss = F.cross_entropy(model(images), labels)
    if l2 > 0:
        weights = [m.weight for m in model.modules() if isinstance(m, (nn.Linear, nn.Conv2d))]
        loss = loss + l2 * sum((w * w).sum() for w in weights)
    return loss


def _deterministic_train_mode(model: nn.Module) -> None:
    # Batch norm keeps using batch statistics (training mode) while dropout is switched off,
    # so the cost is a deterministic function of the parameters.
    model.train()
    for module in model.modules():
        if isinstance(module, nn.modules.dropout._DropoutNd):
            module.eval()


@torch.no_grad()
def _numerical(cost, param: torch.Tensor, index: int, h: float) -> float:
    flat = param.view(-1)
    original = flat[index].item()
    flat[index] = original + h
    plus = cost().item()
    flat[index] = original - h
    minus = cost().item()
    flat[index] = original
    return (plus - minus) / (2 * h)


def check_gradients(
    model: nn.Module,
    images: torch.Tensor,
    labels: torch.Tensor,
    l2: float = 0.0,
    h: float = H,
    max_entries: int = 100,
    rtol: float = 1e-5,
    atol: float = 1e-8,
    seed: int = 0,
) -> list[ParamCheck]:
    """Compare autograd's gradient of :func:`gradient_cost` with central differences, per parameter.

    The model is copied and converted to float64 (``model`` itself is not
    changed); batch norm uses batch statistics, dropout is off.

    Args:
        model: the network (any dtype; CPU).
        images, labels: a small batch (2+ images, so batch norm has a variance).
        l2: weight of the ``sum(W**2)`` term in the cost.
        h: finite-difference step (1e-6: small enough that a step rarely crosses a ReLU kink,
            large enough that float64 rounding stays near 1e-9).
        max_entries: entries checked per parameter tensor; larger tensors get a
            random subset (seeded by ``seed``), smaller ones are checked whole.
        rtol, atol: an entry passes when ``|a - n| <= atol + rtol * |n|``.

    Returns:
        One :class:`ParamCheck` per parameter, in ``named_parameters()`` order.
    """
    net = copy.deepcopy(model).to(torch.float64)
    _deterministic_train_mode(net)
    x = images.to(torch.float64)

    def cost() -> torch.Tensor:
        return gradient_cost(net, x, labels, l2)

    net.zero_grad(set_to_none=True)
    cost().backward()
    generator = torch.Generator().manual_seed(seed)
    owners = {f"{prefix}.{pname}".lstrip("."): type(module).__name__
              for prefix, module in net.named_modules() for pname, _ in module.named_parameters(recurse=False)}
    checks = []
    for name, param in net.named_parameters():
        analytic = param.grad.detach().reshape(-1).clone()
        count = param.numel()
        if count <= max_entries:
            indices = torch.arange(count)
        else:
            indices = torch.randperm(count, generator=generator)[:max_entries]
        numeric = torch.tensor([_numerical(cost, param.data, int(i), h) for i in indices], dtype=torch.float64)
        chosen = analytic[indices]
        abs_err = (chosen - numeric).abs()
        rel_err = abs_err / (chosen.abs() + numeric.abs()).clamp(min=REL_FLOOR)
        checks.append(ParamCheck(
            name=name, module=owners[name], shape=tuple(param.shape), checked=len(indices),
            max_abs_err=float(abs_err.max()),
            max_rel_err=float(rel_err.max()), max_abs_grad=float(chosen.abs().max()),
            passed=bool((abs_err <= atol + rtol * numeric.abs()).all()),
        ))
    return checks
