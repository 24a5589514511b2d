"""Reading a weight file (a state_dict) only after it passes its checks, from the package, a path or a URL.

Shipped weights are checked against the sha256 the manifest records. A URL (``https://``,
``file://``...) goes through :func:`torch.hub.load_state_dict_from_url` with ``check_hash=True``: its
file name ``NAME-HASH.pt`` carries the first hex digits of its sha256, as on torch.hub; a local path
is held to the same rule when its name has such a hash, and to the manifest's full sha256 when it is a
released file. Every file must also pass the CRC-32 of each record (:func:`zoo.archives.zip_damage`)
and load with ``torch.load(weights_only=True)``.
"""

from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path

import torch

from zoo.archives import one_line, zip_damage
from zoo.data import cache_root
from zoo.pretrained import manifest
from zoo.pretrained.manifest import PretrainedTag, read_manifest

__all__ = ["WeightsError", "load_state_dict", "sha256_of", "tag_state_dict", "weights_file"]

# torch.hub's convention: NAME-HASHPREFIX.EXT (torch.hub.HASH_REGEX).
_HASH_IN_NAME = re.compile(r"-([a-f0-9]{8,64})\.")


class WeightsError(ValueError):
    """A weight file zoo will not load: missing, damaged, or not matching its checksum."""


def sha256_of(path: str | Path) -> str:
    """Hex sha256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _check_sha256(path: Path, expected: str, what: str) -> None:
    actual = sha256_of(path)
    if not actual.startswith(expected):
        raise WeightsError(f"{path}: checksum mismatch for {what} (sha256 {actual[:16]}..., expected "
                           f"{expected[:16]}...): the file is damaged or was replaced; refusing to load it")


def _read(path: Path) -> dict[str, torch.Tensor]:
    # The records' CRC-32s first: torch.load itself would read a damaged tensor without noticing.
    damage = zip_damage(path)
    if damage is not None:
        raise WeightsError(f"{path}: damaged weight file: {damage}")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # intact zip, but not plain tensors (e.g. a pickled object)
        raise WeightsError(f"{path}: not a weight file ({one_line(err)})") from None
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise WeightsError(f"{path}: not a state_dict (a dict of tensors)")
    return state


def weights_file(entry: PretrainedTag) -> Path:
    """Where a released tag's file lies in the installed package (it may be missing there)."""
    if entry.weights is None:
        raise WeightsError(f"{entry.tag} is a recipe without released weights"
                           + (f" ({entry.note})" if entry.note else "")
                           + f"; `zoo release {entry.tag} --write` trains it")
    return manifest.WEIGHTS_DIR / entry.weights["file"]


def _download(url: str) -> Path:
    """Fetch ``url`` into zoo's cache (once) through torch.hub, which checks the hash in its name; the local copy."""
    model_dir = cache_root() / "weights"
    name = Path(url.split("?")[0]).name
    try:
        torch.hub.load_state_dict_from_url(url, model_dir=str(model_dir), map_location="cpu", check_hash=True,
                                           progress=False, weights_only=True)
    except RuntimeError as err:  # torch.hub's hash mismatch
        raise WeightsError(f"{url}: {one_line(err)}; refusing to load it") from None
    except OSError as err:
        raise WeightsError(f"{url}: cannot fetch the weights ({one_line(err)})") from None
    except Exception as err:  # a fetched file torch cannot unpickle as plain data
        raise WeightsError(f"{url}: not a weight file ({one_line(err)})") from None
    return model_dir / name


def load_state_dict(source: str | os.PathLike[str]) -> dict[str, torch.Tensor]:
    """The state_dict in ``source``: a URL (``file://`` too) or a local path, checked as the module says.

    Raises:
        WeightsError: (a ValueError) missing, damaged, a checksum mismatch, or not a state_dict.
    """
    text = os.fspath(source)
    released = {e.weights["file"]: e for e in read_manifest().values() if e.weights is not None}
    if "://" in text:
        path = _download(text)  # a file cached earlier is not re-checked by torch.hub: checked below
    else:
        path = Path(text).expanduser()
        if not path.is_file():
            raise WeightsError(f"{path}: no weight file there")
    match = _HASH_IN_NAME.search(path.name)
    if path.name in released:
        _check_sha256(path, released[path.name].weights["sha256"], released[path.name].tag)
    elif match:
        _check_sha256(path, match.group(1), f"the hash in its name {match.group(1)!r}")
    return _read(path)


def tag_state_dict(entry: PretrainedTag) -> dict[str, torch.Tensor]:
    """The verified state_dict of a released tag: the package's file, else its ``url`` when it has one.

    Raises:
        WeightsError: a recipe without weights, the file is missing (and no URL), or it fails its checks.
    """
    path = weights_file(entry)
    if not path.is_file():
        url = entry.weights.get("url")
        if url:
            path = _download(url)
        else:
            raise WeightsError(f"{path}: the weights of {entry.tag} are missing from this installation "
                               "(reinstall zoo, or pass pretrained=PATH_OR_URL)")
    _check_sha256(path, entry.weights["sha256"], entry.tag)
    return _read(path)
