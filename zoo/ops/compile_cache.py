"""Keep torch.compile's on-disk caches from replaying graphs compiled against other zoo op schemas.

torch's compile caches (inductor's FX graph cache, AOTAutograd's cache) key a graph by its code, in
which a call that passes only default arguments reads the same whatever those arguments are, and not
by the schemas of the custom ops it calls. After a zoo upgrade that changed an op's arguments (0.1's
``relu=False`` of the batch-norm ops became ``activation="none", alpha=0.0``), a cached graph from
before was replayed and failed with ``Unknown keyword argument 'relu'``. The schemas' hash, added to
torch's ``cache_key_tag``, gives each set of schemas caches of its own.
"""

from __future__ import annotations

import hashlib

import torch

from zoo import _C  # noqa: F401  (loading it registers the ops)

_PREFIX = "zoo-ops-"


def schema_digest() -> str:
    """A short hash of every ``torch.ops.zoo`` operator's schema, in name order."""
    namespace = torch.ops.zoo
    schemas = []
    for name in sorted(torch._C._dispatch_get_all_op_names()):
        if name.startswith("zoo::"):
            packet = getattr(namespace, name.removeprefix("zoo::"))
            schemas += [str(getattr(packet, overload)._schema) for overload in sorted(packet.overloads())]
    return hashlib.sha256("\n".join(schemas).encode()).hexdigest()[:16]


def tag_compile_caches() -> str:
    """Add the schemas' digest to ``torch.compiler.config.cache_key_tag`` (kept: any tag already set); the tag."""
    tag = torch.compiler.config.cache_key_tag
    if _PREFIX not in tag:
        try:
            digest = schema_digest()
        except (AttributeError, RuntimeError):  # a torch without this private listing: caches stay untagged
            return tag
        ours = _PREFIX + digest
        tag = f"{tag}+{ours}" if tag else ours
        torch.compiler.config.cache_key_tag = tag
    return tag
