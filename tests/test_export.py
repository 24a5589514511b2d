"""ONNX export: every preset (and NIN with every activation) matches torch in onnxruntime, folded or not."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
import torch

import zoo
from zoo.data import normalize
from zoo.export import Classifier, ModelInfo, export_model, preset_model
from zoo.export.opsets import DEFAULT_OPSET, MIN_OPSET, supported_opsets

ATOL = 1e-4

# Every preset, plus activations and batch-norm placements no preset has.
CASES = [(name, {}) for name in zoo.list_models()] + [
    ("nin_relu", {"activation": "selu"}),
    ("mnist_cnn", {"batch_norm": True}),
    ("emnist_cnn_2conv", {"activation": "maxout", "batch_norm": True}),
    ("emnist_dnn_2x100", {"activation": "maxout", "batch_norm": True}),
    ("emnist_dnn_2x100", {"activation": "elu", "batch_norm": True}),
]


def _has_bn(name: str, args: dict) -> bool:
    return "_bn" in name or bool(args.get("batch_norm"))


def _params(nin: bool) -> list:
    # Folding changes nothing without batch norm: those models are exported once.
    return [
        pytest.param(name, args, fold, id=f"{name}{''.join(f'-{k}={v}' for k, v in args.items())}-fold={fold}")
        for name, args in CASES if name.startswith("nin_") == nin
        for fold in ((False, True) if _has_bn(name, args) else (False,))
    ]


def _randomise_batch_norm(model: torch.nn.Module) -> None:
    # Fresh running stats are 0/1 and affine 1/0, which makes BN (and folding it) nearly the identity.
    generator = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, torch.nn.modules.batchnorm._BatchNorm):
                n = module.num_features
                module.running_mean.copy_(torch.randn(n, generator=generator) * 0.2)
                module.running_var.copy_(torch.rand(n, generator=generator) + 0.5)
                if module.affine:
                    module.weight.copy_(torch.rand(n, generator=generator) + 0.5)
                    module.bias.copy_(torch.randn(n, generator=generator) * 0.1)


def _export(tmp_path, name: str, args: dict, fold: bool):
    model, info = preset_model(name, **args)
    _randomise_batch_norm(model)
    path = export_model(model, tmp_path / f"{name}.onnx", info, fold_bn=fold)
    return model, info, path


def _check_graph(path, model: torch.nn.Module, info: ModelInfo, fold: bool) -> None:
    proto = onnx.load(str(path))
    onnx.checker.check_model(proto, full_check=True)
    assert {o.domain for o in proto.opset_import} <= {"", "ai.onnx"}
    assert {n.domain for n in proto.graph.node} <= {"", "ai.onnx"}, "standard ONNX operators only"
    assert [o.version for o in proto.opset_import] == [DEFAULT_OPSET]
    (graph_input,) = proto.graph.input
    assert graph_input.type.tensor_type.shape.dim[0].dim_param, "the batch dimension is dynamic"
    assert [d.dim_value for d in graph_input.type.tensor_type.shape.dim[1:]] == list(info.input_shape)
    producers = {out: node.op_type for node in proto.graph.node for out in node.output}
    batch_norms = [n for n in proto.graph.node if n.op_type == "BatchNormalization"]
    expected = sum(isinstance(m, torch.nn.modules.batchnorm._BatchNorm) for m in model.modules())
    if fold:
        assert not [n for n in batch_norms if producers.get(n.input[0]) in ("Conv", "Gemm")], "unfolded BN"
    else:
        assert len(batch_norms) == expected
    meta = {p.key: p.value for p in proto.metadata_props}
    assert meta["zoo.model"] == info.model and meta["zoo.bn_folded"] == str(fold).lower()


def _check_outputs(model: torch.nn.Module, info: ModelInfo, path, batch_sizes) -> None:
    classifier = Classifier(path)  # the deployment path: normalisation from the file's metadata
    assert classifier.info.classes == info.classes and classifier.info.input_shape == info.input_shape
    rng = np.random.default_rng(0)
    for batch in batch_sizes:
        images = rng.integers(0, 256, size=(batch, *info.input_shape), dtype=np.uint8)
        with torch.inference_mode():
            expected = model(normalize(torch.from_numpy(images), info.mean, info.std)).numpy()
        got = classifier.logits(images, batch_size=batch)
        assert got.shape == expected.shape
        diff = np.abs(got - expected).max()
        assert diff <= ATOL, f"batch {batch}: max abs diff {diff:.3g}"
        # Also relative to the logits' scale: untrained NIN logits are tiny.
        assert diff <= 1e-4 * max(np.abs(expected).max(), 1e-3), f"batch {batch}: max abs diff {diff:.3g}"
        assert (got.argmax(1) == expected.argmax(1)).all()


@pytest.mark.parametrize(("name", "args", "fold"), _params(nin=False))
def test_dnn_cnn_presets_match_torch(tmp_path, name, args, fold):
    model, info, path = _export(tmp_path, name, args, fold)
    _check_graph(path, model, info, fold)
    _check_outputs(model, info, path, (1, 64))


@pytest.mark.parametrize(("name", "args", "fold"), _params(nin=True))
def test_nin_presets_match_torch(tmp_path, name, args, fold):
    model, info, path = _export(tmp_path, name, args, fold)
    _check_graph(path, model, info, fold)
    _check_outputs(model, info, path, (1, 8))  # NIN is slow in eager torch: batch 64 is in the slow suite


@pytest.mark.slow
@pytest.mark.parametrize(("name", "args", "fold"), _params(nin=True))
def test_nin_presets_match_torch_batch_64(tmp_path, name, args, fold):
    model, info, path = _export(tmp_path, name, args, fold)
    _check_outputs(model, info, path, (64,))


class _Odd(torch.nn.Module):
    """Conv and batch-norm options no preset uses: stride, dilation, asymmetric padding, no bias, no affine."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = zoo.nn.Conv2d(3, 6, (3, 5), stride=2, padding=(1, 2), dilation=(2, 1), bias=False)
        self.bn = zoo.nn.BatchNorm2d(6, affine=False)
        self.fc = torch.nn.Linear(6, 4)
        self.bn1d = zoo.nn.BatchNorm1d(4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Features, pooled, then a batch-normalised linear layer."""
        return self.bn1d(self.fc(torch.relu(self.bn(self.conv(x))).mean((2, 3))))


_ODD_INFO = ModelInfo(model="odd", dataset="none", classes=("a", "b", "c", "d"), mean=(0.5,) * 3, std=(0.25,) * 3,
                      input_shape=(3, 13, 11))


@pytest.mark.parametrize("fold", [False, True])
def test_conv_and_batch_norm_options_translate(tmp_path, fold):
    model = _Odd().eval()
    _randomise_batch_norm(model)
    path = export_model(model, tmp_path / "odd.onnx", _ODD_INFO, fold_bn=fold)
    _check_outputs(model, _ODD_INFO, path, (1, 5))


@pytest.mark.parametrize("opset", [MIN_OPSET, supported_opsets()[-1]])
def test_opset_choice(tmp_path, opset):
    model, info = preset_model("mnist_cnn", batch_norm=True)
    path = export_model(model, tmp_path / "m.onnx", info, opset=opset)
    assert [o.version for o in onnx.load(str(path)).opset_import] == [opset]
    _check_outputs(model, info, path, (3,))


@pytest.mark.parametrize("opset", [0, 17, supported_opsets()[-1] + 1, 99, "21", 21.0, True])
def test_unsupported_opset_is_refused(tmp_path, opset):
    model, info = preset_model("mnist_cnn")
    with pytest.raises(ValueError, match="unsupported ONNX opset"):
        export_model(model, tmp_path / "m.onnx", info, opset=opset)
    assert not (tmp_path / "m.onnx").exists()


def test_training_mode_is_refused(tmp_path):
    model, info = preset_model("mnist_cnn", batch_norm=True)
    with pytest.raises(ValueError, match="eval-mode model"):
        export_model(model.train(), tmp_path / "m.onnx", info)
    model.eval()
    model.features[1].train()  # one submodule left in training mode is enough to refuse
    with pytest.raises(ValueError, match=r"eval-mode model.*features\.1"):
        export_model(model, tmp_path / "m.onnx", info)
    assert not (tmp_path / "m.onnx").exists()


def test_batch_statistics_in_eval_are_refused(tmp_path):
    model = torch.nn.Sequential(zoo.nn.Conv2d(3, 4, 3), zoo.nn.BatchNorm2d(4, track_running_stats=False)).eval()
    info = ModelInfo(model="x", dataset="none", classes=("a",), mean=(0.0,) * 3, std=(1.0,) * 3, input_shape=(3, 8, 8))
    with pytest.raises(ValueError, match="no ONNX translation for zoo.batch_norm_train"):
        export_model(model, tmp_path / "m.onnx", info)
