"""MODELS: name -> builder(in_channels, out_dim, **cfg) -> nn.Module.

- ``resnet18``    CIFAR-style ResNet-18 (cfg: width=64)
- ``tiny_resnet`` CIFAR-style ResNet-10, width 8 (cfg: width=8)
- ``darts_eval``  the DARTS evaluation network (cfg: genotype = Genotype | dict | GENOTYPES name | path to a
  genotype.json, default "DARTS_V2"; C=36, layers=20, auxiliary=False); forward returns (logits, aux|None).

``build_model(name, in_channels, out_dim, **cfg)`` and ``count_parameters(model, exclude_aux=True)``
(parameters of modules named ``auxiliary*`` are excluded, as in the DARTS papers' counts).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import torch.nn as nn

from workflow_lib.models.resnet import resnet18, tiny_resnet


def resolve_genotype(genotype: Any):
    """Genotype | dict | GENOTYPES name | path to a genotype JSON -> Genotype."""
    from workflow_lib.darts.genotypes import GENOTYPES, Genotype

    if isinstance(genotype, Genotype):
        return genotype
    if isinstance(genotype, dict):
        return Genotype.from_dict(genotype)
    if isinstance(genotype, (str, Path)):
        if str(genotype) in GENOTYPES:
            return GENOTYPES[str(genotype)]
        if Path(genotype).exists():
            return Genotype.load(genotype)
        raise ValueError(f"unknown genotype {genotype!r}: not a file and not one of {sorted(GENOTYPES)}")
    raise TypeError(f"cannot make a genotype from {type(genotype).__name__}")


def darts_eval(in_channels: int, out_dim: int, genotype: Any = "DARTS_V2", C: int = 36, layers: int = 20,
               auxiliary: bool = False) -> nn.Module:
    from workflow_lib.darts.eval_model import build_eval_network

    return build_eval_network(resolve_genotype(genotype), in_channels=in_channels, out_dim=out_dim, C=C,
                              layers=layers, auxiliary=auxiliary)


MODELS: dict[str, Callable[..., nn.Module]] = {
    "resnet18": lambda in_channels, out_dim, **cfg: resnet18(in_channels, out_dim, **cfg),
    "tiny_resnet": lambda in_channels, out_dim, **cfg: tiny_resnet(in_channels, out_dim, **cfg),
    "darts_eval": darts_eval,
}


def build_model(name: str, in_channels: int, out_dim: int, **cfg: Any) -> nn.Module:
    try:
        builder = MODELS[name]
    except KeyError:
        raise ValueError(f"unknown model {name!r}; known: {sorted(MODELS)}") from None
    return builder(in_channels, out_dim, **cfg)


def count_parameters(model: nn.Module, exclude_aux: bool = True) -> int:
    return sum(
        p.numel() for name, p in model.named_parameters()
        if not (exclude_aux and name.split(".")[0].startswith("auxiliary"))
    )
