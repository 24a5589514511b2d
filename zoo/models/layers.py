"""Building blocks shared by the model families: activations (Maxout included) and weight init."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

import zoo.nn
from zoo.nn.maxout import Maxout  # the layer lives with zoo's other layers; importable here as before

__all__ = ["ACTIVATIONS", "INITS", "Maxout", "check_rates", "check_widths", "make_activation",
           "normalized_activation", "width_factor", "init_weights"]

ACTIVATIONS = ("relu", "leaky_relu", "elu", "selu", "maxout")
INITS = ("default", "he", "normal")

# Slope of LeakyReLU / alpha of ELU when none is given (torch's own defaults).
_DEFAULT_ALPHA = {"leaky_relu": 0.01, "elu": 1.0}


def _check_activation(name: str) -> None:
    if name not in ACTIVATIONS:
        raise ValueError(f"unknown activation {name!r}; expected one of {ACTIVATIONS}")


def check_widths(name: str, widths: Sequence[int]) -> None:
    """Raise ValueError unless every layer width in ``widths`` is at least 1 (a 0-wide layer passes nothing on)."""
    if any(width < 1 for width in widths):
        raise ValueError(f"{name} must be layer widths >= 1, got {list(widths)}")


def check_rates(**rates: float) -> None:
    """Raise ValueError unless every dropout rate is in [0, 1) (1 would drop everything)."""
    for name, rate in rates.items():
        if not 0 <= rate < 1:
            raise ValueError(f"{name} must be in [0, 1), got {rate}")


def width_factor(activation: str, pieces: int) -> int:
    """How many pre-activation channels each output channel needs: ``pieces`` for maxout, else 1."""
    _check_activation(activation)
    return pieces if activation == "maxout" else 1


def make_activation(activation: str, alpha: float | None = None, pieces: int = 2) -> nn.Module:
    """Return the activation module.

    Args:
        activation: ``'relu'``, ``'leaky_relu'`` (slope ``alpha``, default 0.01),
            ``'elu'`` (``alpha``, default 1.0), ``'selu'`` or ``'maxout'``
            (``pieces`` linear pieces; the layer before it must have
            :func:`width_factor` times more outputs).
        alpha: parameter of LeakyReLU / ELU; must be None for the others.
        pieces: maxout pieces (ignored by the other activations).
    """
    _check_activation(activation)
    if alpha is not None and activation not in _DEFAULT_ALPHA:
        raise ValueError(f"alpha is only used by leaky_relu and elu, not {activation!r}")
    if activation == "relu":
        return nn.ReLU()
    if activation == "leaky_relu":
        return nn.LeakyReLU(_DEFAULT_ALPHA["leaky_relu"] if alpha is None else alpha)
    if activation == "elu":  # zoo's kernel: torch's CPU ELU is bound by its exp
        return zoo.nn.ELU(_DEFAULT_ALPHA["elu"] if alpha is None else alpha)
    if activation == "selu":
        return nn.SELU()
    return Maxout(pieces)


def normalized_activation(features: int, batch_norm: bool, activation: str, alpha: float | None = None,
                          pieces: int = 2, *, dims: int) -> list[nn.Module]:
    """The layers after a conv (``dims=2``) or linear (``dims=1``) layer of ``features`` outputs: [batch norm,] activation.

    Batch norm then ReLU, LeakyReLU or ELU is one layer (:class:`zoo.nn.BatchNormReLU2d`,
    :class:`zoo.nn.BatchNormLeakyReLU2d`, :class:`zoo.nn.BatchNormELU2d`, or their 1d forms), a single pass
    over the activations forward and backward instead of two, and an ``nn.Identity`` in the activation's
    place: every later layer keeps its index, and with it the state_dict keys of checkpoints saved when
    these were two layers.
    """
    act = make_activation(activation, alpha, pieces)
    if not batch_norm:
        return [act]
    if isinstance(act, nn.ReLU):
        fused = zoo.nn.BatchNormReLU2d if dims == 2 else zoo.nn.BatchNormReLU1d
        return [fused(features), nn.Identity()]
    if isinstance(act, nn.LeakyReLU):
        fused = zoo.nn.BatchNormLeakyReLU2d if dims == 2 else zoo.nn.BatchNormLeakyReLU1d
        return [fused(features, negative_slope=act.negative_slope), nn.Identity()]
    if isinstance(act, nn.ELU):
        fused = zoo.nn.BatchNormELU2d if dims == 2 else zoo.nn.BatchNormELU1d
        return [fused(features, alpha=act.alpha), nn.Identity()]
    plain = zoo.nn.BatchNorm2d if dims == 2 else zoo.nn.BatchNorm1d
    return [plain(features), act]


@torch.no_grad()
def init_weights(model: nn.Module, init: str = "default", std: float = 0.01) -> None:
    """Re-initialise every Linear and Conv2d layer of ``model``.

    Args:
        init: ``'default'`` keeps torch's initialisation; ``'he'`` draws weights
            from N(0, 2/fan_in) (He et al. 2015, fan_in = inputs x kernel area);
            ``'normal'`` draws them from N(0, std^2). Biases are zeroed for
            ``'he'`` and ``'normal'``.
        std: standard deviation for ``'normal'``.
    """
    if init not in INITS:
        raise ValueError(f"unknown init {init!r}; expected one of {INITS}")
    if init == "normal" and not std > 0:
        raise ValueError(f"init_std must be > 0, got {std}")
    if init == "default":
        return
    for module in model.modules():
        if isinstance(module, (nn.Linear, nn.Conv2d)):
            if init == "he":
                nn.init.kaiming_normal_(module.weight, mode="fan_in", nonlinearity="relu")
            else:
                nn.init.normal_(module.weight, 0.0, std)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
