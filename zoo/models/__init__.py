"""The model zoo: MLP (DNN), CNN and Network in Network families, and the preset registry.

Quick use::

    import zoo
    zoo.list_models()                                   # every preset
    net = zoo.create_model("nin_relu_bn")               # CIFAR-10 NIN with batch norm
    net = zoo.create_model("mnist_cnn", dataset="fashion-mnist", batch_norm=True)
    zoo.model_config("emnist_dnn_2x100").recipe         # recommended training settings
"""

from __future__ import annotations

from zoo.models.cnn import CNN, ConvBlock
from zoo.models.dnn import DNN
from zoo.models.layers import ACTIVATIONS, INITS, Maxout, init_weights, make_activation
from zoo.models.nin import NIN
from zoo.models.registry import ModelConfig, create_model, list_models, model_config, register_model

__all__ = [
    "ACTIVATIONS",
    "CNN",
    "ConvBlock",
    "DNN",
    "INITS",
    "Maxout",
    "ModelConfig",
    "NIN",
    "create_model",
    "init_weights",
    "list_models",
    "make_activation",
    "model_config",
    "register_model",
]
