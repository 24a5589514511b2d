"""Every defined study, by name."""

from __future__ import annotations

from zoo.studies.definitions import emnist_depth, emnist_mlp, kmlp_bn, mnist_bn, nin_cifar10
from zoo.studies.spec import Study

__all__ = ["STUDIES", "get_study", "list_studies"]

STUDIES: dict[str, Study] = {
    module.STUDY.name: module.STUDY for module in (emnist_mlp, emnist_depth, kmlp_bn, mnist_bn, nin_cifar10)
}


def list_studies() -> list[str]:
    """Names of the defined studies."""
    return list(STUDIES)


def get_study(name: str) -> Study:
    """The study called ``name``; ValueError lists the known ones."""
    try:
        return STUDIES[name]
    except KeyError:
        raise ValueError(f"unknown study {name!r}; known: {', '.join(STUDIES)}") from None
