"""The ops trace: torch.compile(fullgraph=True) in train and eval, torch.export with a dynamic batch."""

import pytest
import torch

import zoo
from conftest import assert_close


class SmallNet(torch.nn.Module):
    def __init__(self, conv=zoo.nn.Conv2d, bn2d=zoo.nn.BatchNorm2d, bn1d=zoo.nn.BatchNorm1d, pool=zoo.nn.MaxPool2d):
        super().__init__()
        self.conv = conv(1, 4, 3, padding=1)
        self.pool = pool(2)
        self.bn = bn2d(4)
        self.fc = torch.nn.Linear(4 * 4 * 4, 8)
        self.bn1d = bn1d(8)
        self.head = torch.nn.Linear(8, 3)

    def forward(self, x):
        x = self.pool(torch.relu(self.bn(self.conv(x))))
        return self.head(torch.relu(self.bn1d(self.fc(x.flatten(1)))))


def twins(fused=False):
    # fused: zoo's BatchNormReLU layers; the net's own ReLU after them then changes nothing (relu(relu(x))).
    ours = SmallNet(bn2d=zoo.nn.BatchNormReLU2d, bn1d=zoo.nn.BatchNormReLU1d) if fused else SmallNet()
    ref = SmallNet(torch.nn.Conv2d, torch.nn.BatchNorm2d, torch.nn.BatchNorm1d, torch.nn.MaxPool2d)
    ref.load_state_dict(ours.state_dict())
    return ours, ref


@pytest.mark.parametrize("fused", [False, True], ids=["bn", "bn_relu"])
def test_compile_fullgraph_train_step_matches_eager_torch(fused):
    ours, ref = twins(fused)
    compiled = torch.compile(ours, fullgraph=True)
    x = torch.randn(6, 1, 8, 8)
    out, out_ref = compiled(x), ref(x)
    assert_close(out, out_ref)
    out.sum().backward()
    out_ref.sum().backward()
    for (name, p), p_ref in zip(ours.named_parameters(), ref.parameters()):
        assert_close(p.grad, p_ref.grad, scale=10)
    assert_close(ours.bn.running_var, ref.bn.running_var)
    compiled.eval(), ref.eval()
    assert_close(compiled(x), ref(x))


@pytest.mark.parametrize("fused", [False, True], ids=["bn", "bn_relu"])
def test_export_with_dynamic_batch(fused):
    ours, ref = twins(fused)
    ours.eval(), ref.eval()
    batch = torch.export.Dim("batch", min=1, max=1024)
    program = torch.export.export(ours, (torch.randn(4, 1, 8, 8),), dynamic_shapes={"x": {0: batch}})
    targets = {str(node.target) for node in program.graph.nodes if node.op == "call_function"}
    assert {"zoo.conv2d.default", "zoo.batch_norm_eval.default", "zoo.max_pool2d.default"} <= targets
    for n in (1, 7):
        x = torch.randn(n, 1, 8, 8)
        assert_close(program.module()(x), ref(x))


def test_compile_caches_are_tagged_with_the_op_schemas():
    # torch's compile caches do not key on custom op schemas; zoo's tag does (zoo/ops/compile_cache.py).
    from zoo.ops import compile_cache

    digest = compile_cache.schema_digest()
    assert len(digest) == 16 and f"zoo-ops-{digest}" in torch.compiler.config.cache_key_tag
    before = torch.compiler.config.cache_key_tag
    try:
        torch.compiler.config.cache_key_tag = "mine"
        assert compile_cache.tag_compile_caches() == f"mine+zoo-ops-{digest}"
        assert compile_cache.tag_compile_caches() == f"mine+zoo-ops-{digest}"  # once only
    finally:
        torch.compiler.config.cache_key_tag = before


def test_schema_digest_follows_the_schemas(monkeypatch):
    from zoo.ops import compile_cache

    digest = compile_cache.schema_digest()
    real = torch._C._dispatch_get_all_op_names
    monkeypatch.setattr(torch._C, "_dispatch_get_all_op_names",
                        lambda: [n for n in real() if n != "zoo::batch_norm_eval"])
    assert compile_cache.schema_digest() != digest


def test_a_torch_without_the_op_listing_leaves_the_tag(monkeypatch):
    from zoo.ops import compile_cache

    monkeypatch.delattr(torch._C, "_dispatch_get_all_op_names")
    before = torch.compiler.config.cache_key_tag  # set back by hand: monkeypatch would delete the config entry
    try:
        torch.compiler.config.cache_key_tag = "mine"
        assert compile_cache.tag_compile_caches() == "mine"  # zoo still imports; its caches just are not separated
    finally:
        torch.compiler.config.cache_key_tag = before
