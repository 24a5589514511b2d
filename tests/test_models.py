"""Tests for zoo.models: every preset builds, runs forward/backward on every dataset shape, and uses zoo's layers."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

import zoo
import zoo.nn
from zoo.data import DATASETS, dataset_info
from zoo.models import CNN, DNN, NIN, ConvBlock, Maxout, create_model, list_models, model_config, register_model
from zoo.train import TrainConfig

ALL = list_models()


# Training-heavy tests run on one thread: faster on 2 shared cores, and deterministic.
pytestmark = pytest.mark.usefixtures("one_thread")


def foreign_layers(model: nn.Module) -> list[str]:
    """Conv/BN layers that are torch's own classes rather than zoo's subclasses."""
    return [
        f"{name}: {type(m).__module__}.{type(m).__name__}"
        for name, m in model.named_modules()
        if isinstance(m, (nn.Conv2d, nn.modules.batchnorm._BatchNorm)) and not type(m).__module__.startswith("zoo")
    ]


def test_registry_lists_every_study_architecture():
    expected = {
        "emnist_dnn_2x100", "emnist_dnn_4x100", "emnist_cnn_1conv", "emnist_cnn_2conv",
        "mnist_mlp_1024_512", "mnist_cnn", "mnist_cnn_32_64", "cifar10_mlp_3layer", "cifar10_mlp_9layer",
        "mnist_cnn_flagship", "fashion_cnn_flagship",  # beyond the studies: the pretrained flagships
    }
    nin = {f"nin_{a}{bn}{he}" for a in ("relu", "elu", "leaky", "maxout") for bn in ("", "_bn") for he in ("", "_he")}
    assert set(ALL) == expected | nin
    assert list_models("nin_maxout*") == sorted(n for n in nin if n.startswith("nin_maxout"))
    assert zoo.list_models is list_models and zoo.create_model is create_model


@pytest.mark.parametrize("name", ALL)
def test_preset_forward_backward_with_zoo_layers(name):
    config = model_config(name)
    model = create_model(name)
    x = torch.randn(3, config.in_channels, *config.input_size)
    out = model(x)
    assert out.shape == (3, config.num_classes)
    out.logsumexp(1).sum().backward()
    for pname, p in model.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), pname
    assert foreign_layers(model) == []
    assert config.description and config.dataset in DATASETS
    # Every recipe is a valid set of training settings.
    TrainConfig.from_dict({"model": name, "dataset": config.dataset, **config.recipe})


@pytest.mark.parametrize("name", ALL)
def test_preset_runs_on_every_dataset(name):
    model = create_model(name, batch_norm=True)
    assert foreign_layers(model) == []
    for dataset in DATASETS:
        info = dataset_info(dataset)
        net = create_model(name, dataset=dataset).eval()
        with torch.no_grad():
            out = net(torch.randn(2, info.in_channels, *info.image_size))
        assert out.shape == (2, info.num_classes), dataset


def test_explicit_overrides():
    net = create_model("emnist_dnn_2x100", num_classes=5, in_channels=3, input_size=(8, 8))
    assert net(torch.randn(4, 3, 8, 8)).shape == (4, 5)
    net = create_model("mnist_cnn", input_size=[16, 16], hidden=[7])  # lists, as from JSON
    assert net(torch.randn(2, 1, 16, 16)).shape == (2, 10)
    with pytest.raises(ValueError, match="unknown model"):
        create_model("resnet50")
    with pytest.raises(ValueError, match="nin_relu has no model argument 'hidden'; it takes activation, alpha"):
        create_model("nin_relu", hidden=(3,))


@pytest.mark.parametrize("args, message", [
    ({"foo": 1}, "mnist_cnn has no model argument 'foo'"),
    ({"hidden": -5}, r"model argument hidden=-5: expected Sequence\[int\]"),
    ({"batch_norm": "false"}, "model argument batch_norm='false': expected bool"),
    ({"batch_norm": 1}, "expected bool"),
    ({"pieces": 2.5}, "expected int"),
    ({"hidden": [0]}, r"hidden must be layer widths >= 1, got \[0\]"),
    ({"dropout_hidden": 1.0}, r"dropout_hidden must be in \[0, 1\)"),
    ({"input_size": [28]}, "input_size must be"),
    ({"num_classes": 0}, "num_classes must be >= 1"),
    ({"blocks": [{"channels": 4, "stride": 2}]}, "a conv block is"),
    ({"blocks": [{"channels": 0}]}, "channels and kernel must be integers >= 1"),
    ({"init": "normal", "init_std": 0.0}, "init_std must be > 0"),
])
def test_model_arguments_are_checked_against_the_signature(args, message):
    with pytest.raises(ValueError, match=message):
        create_model("mnist_cnn", **args)


def test_command_line_values_take_the_declared_type():
    from zoo.models.arguments import parse_model_arg

    config = model_config("mnist_cnn")
    assert [parse_model_arg(config, "batch_norm", text) for text in ("False", "false", "true", "True")] == \
        [False, False, True, True]
    assert parse_model_arg(config, "hidden", "[200, 200]") == [200, 200]
    assert parse_model_arg(config, "activation", "elu") == "elu"
    assert parse_model_arg(config, "alpha", "0.2") == 0.2 and parse_model_arg(config, "alpha", "null") is None
    assert parse_model_arg(config, "blocks", '[{"channels": 3}]') == [{"channels": 3, "kernel": 3, "padding": 0,
                                                                      "pool": 2}]
    for key, text in (("batch_norm", "maybe"), ("hidden", "-5"), ("pieces", "2.5"), ("foo", "1")):
        with pytest.raises(ValueError, match=key):
            parse_model_arg(config, key, text)


def test_register_model_rejects_duplicates():
    def mnist_cnn(**overrides):
        return None

    with pytest.raises(ValueError, match="already registered"):
        register_model("mnist")(mnist_cnn)


def test_dnn_layout_batch_norm_dropout_and_maxout():
    net = DNN(12, 4, hidden=(6, 5), activation="maxout", pieces=3, batch_norm=True, dropout_input=0.2, dropout_hidden=0.5)
    kinds = [type(m).__name__ for m in net]
    assert kinds == ["Flatten", "Dropout", "Linear", "BatchNorm1d", "Maxout", "Dropout",
                     "Linear", "BatchNorm1d", "Maxout", "Dropout", "Linear"]
    assert [m.out_features for m in net if isinstance(m, nn.Linear)] == [18, 15, 4]
    assert isinstance(net[3], zoo.nn.BatchNorm1d)
    assert net[1].p == 0.2 and net[5].p == 0.5
    assert DNN(12, 4, hidden=()).__len__() == 2  # flatten + linear classifier


@pytest.mark.parametrize(
    "activation,alpha,cls,attr,value",
    [("relu", None, nn.ReLU, None, None), ("leaky_relu", 0.2, nn.LeakyReLU, "negative_slope", 0.2),
     ("elu", 0.5, zoo.nn.ELU, "alpha", 0.5), ("selu", None, nn.SELU, None, None), ("leaky_relu", None, nn.LeakyReLU,
     "negative_slope", 0.01)],
)
def test_activations(activation, alpha, cls, attr, value):
    act = DNN(4, 2, hidden=(3,), activation=activation, alpha=alpha)[2]
    assert type(act) is cls
    if attr:
        assert getattr(act, attr) == value


def test_bad_activation_and_alpha():
    with pytest.raises(ValueError, match="unknown activation"):
        DNN(4, 2, activation="tanh")
    with pytest.raises(ValueError, match="alpha"):
        DNN(4, 2, activation="relu", alpha=0.1)
    with pytest.raises(ValueError, match="pieces"):
        Maxout(1)


def test_maxout_takes_max_over_consecutive_pieces():
    x = torch.arange(12.0).view(1, 6, 2) * torch.tensor([1.0, -1.0])
    out = Maxout(3)(x)
    assert out.shape == (1, 2, 2)
    torch.testing.assert_close(out, x.view(1, 2, 3, 2).amax(2))


def test_init_schemes():
    torch.manual_seed(0)
    he = DNN(2000, 10, hidden=(500,), init="he")
    assert math.isclose(he[1].weight.std().item(), math.sqrt(2 / 2000), rel_tol=0.02)
    assert he[1].bias.abs().sum() == 0
    normal = DNN(2000, 10, hidden=(500,), init="normal", init_std=0.3)
    assert math.isclose(normal[1].weight.std().item(), 0.3, rel_tol=0.02)
    cnn = CNN(3, (8, 8), 2, [ConvBlock(64, kernel=5, padding=2)], init="he")
    assert math.isclose(cnn.features[0].weight.std().item(), math.sqrt(2 / 75), rel_tol=0.05)
    torch.manual_seed(1)
    default = DNN(20, 2, hidden=(5,))
    torch.manual_seed(1)
    assert torch.equal(default[1].weight, nn.Linear(20, 5).weight)  # torch's own init, untouched
    with pytest.raises(ValueError, match="unknown init"):
        DNN(4, 2, init="xavier")


def test_cnn_blocks_and_sizes():
    net = CNN(1, (28, 28), 47, [{"channels": 5, "kernel": 5, "pool": 2}, ConvBlock(10, kernel=5)], batch_norm=True,
              hidden=(100,))
    assert [type(m).__name__ for m in net.features] == [
        "Conv2d", "BatchNormReLU2d", "Identity", "MaxPool2d", "Conv2d", "BatchNormReLU2d", "Identity", "MaxPool2d"]
    assert net.classifier[1].in_features == 10 * 4 * 4  # 28 -5+1-> 24 /2-> 12 -5+1-> 8 /2-> 4
    with pytest.raises(ValueError, match="shrinks"):
        CNN(1, (4, 4), 2, [ConvBlock(3, kernel=5)])


@pytest.mark.parametrize("activation,alpha,layers,torch_layer", [
    ("relu", None, (zoo.nn.BatchNormReLU2d, zoo.nn.BatchNormReLU1d), nn.ReLU),
    ("leaky_relu", 0.2, (zoo.nn.BatchNormLeakyReLU2d, zoo.nn.BatchNormLeakyReLU1d), nn.LeakyReLU),
    ("elu", 0.5, (zoo.nn.BatchNormELU2d, zoo.nn.BatchNormELU1d), nn.ELU),
], ids=str)
@pytest.mark.parametrize("name", ["mnist_cnn_32_64", "nin_relu_bn", "mnist_mlp_1024_512"])
def test_fused_batch_norm_activation_keeps_the_layer_indices(name, activation, alpha, layers, torch_layer):
    # Batch norm + activation is one fused layer and an Identity in the activation's place, so the state_dict
    # keys are those of the same model with an unfused activation (SELU has no parameters either): checkpoints
    # saved before load. The fused layers get the activation's parameter.
    fused = create_model(name, batch_norm=True, activation=activation, alpha=alpha)
    unfused = create_model(name, batch_norm=True, activation="selu")
    fused_layers = [m for m in fused.modules() if isinstance(m, layers)]
    assert fused_layers and all(m.activation_alpha == (alpha or 0.0) for m in fused_layers)
    assert not any(isinstance(m, torch_layer) for m in fused.modules())
    assert list(fused.state_dict()) == list(unfused.state_dict())
    unfused.load_state_dict(fused.state_dict())


def test_mnist_cnn_matches_spec():
    net = create_model("mnist_cnn")
    convs = [m for m in net.modules() if isinstance(m, nn.Conv2d)]
    assert [(c.in_channels, c.out_channels, c.kernel_size, c.padding) for c in convs] == [
        (1, 4, (3, 3), (1, 1)), (4, 4, (3, 3), (1, 1))]


def test_nin_structure_and_sizes():
    net = NIN(activation="maxout", pieces=2, batch_norm=True)
    convs = [m for m in net.modules() if isinstance(m, nn.Conv2d)]
    assert [(c.out_channels, c.kernel_size[0]) for c in convs] == [
        (384, 5), (320, 1), (192, 1), (384, 5), (384, 1), (384, 1), (384, 3), (384, 1), (10, 1)]
    assert sum(isinstance(m, zoo.nn.BatchNorm2d) for m in net.modules()) == 8
    assert [m.p for m in net.modules() if isinstance(m, nn.Dropout)] == [0.5, 0.5]
    class_maps = net.net[:-2].eval()(torch.randn(2, 3, 32, 32))
    assert class_maps.shape == (2, 10, 8, 8)  # 32 -> 16 -> 8
    plain = create_model("nin_elu_he")
    assert isinstance(plain.net[1], nn.ELU) and not any(isinstance(m, nn.BatchNorm2d) for m in plain.modules())
