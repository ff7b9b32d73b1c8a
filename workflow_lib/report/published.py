"""Published numbers the report shows beside ours, marked as published, with their data and how they were
measured. Never mixed into our own statistics.

The 2019 study ran the original DARTS code on the graphene-kirigami MD data (its public logs:
capstone2019-neuralsearch/AC297r_2019_NAS, experiments/*GRAPHENE*): test R^2 is the value at the last epoch
averaged over test batches, where ours is R^2 over the whole test set at once (the two differ slightly:
a batch mean of R^2 is not the R^2 of the pooled predictions). Its architecture weights after 50 search
epochs stayed near 1/8 on kirigami and spread out on CIFAR-10.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

SOURCE_2019 = "2019 kirigami DARTS study (capstone2019-neuralsearch/AC297r_2019_NAS, public logs)"


@dataclass(frozen=True)
class PublishedResult:
    method: str            # our method it corresponds to
    label: str
    metric: str
    value: float
    approximate: bool
    parameters: int | None


@dataclass(frozen=True)
class PublishedReference:
    source: str
    data: str
    measured: str
    results: tuple[PublishedResult, ...] = ()
    weight_ranges: dict[str, tuple[float, float]] = field(default_factory=dict)  # cell -> (min, max) softmax
    search_epochs: int | None = None


KIRIGAMI_2019 = PublishedReference(
    source=SOURCE_2019,
    data="MD data of Hanakata et al. 2018 (yield strain), not the surrogate",
    measured="test R² at the last epoch, averaged over test batches (ours: R² over the whole test set)",
    results=(
        PublishedResult("darts", "DARTS cell (KIRIGAMI_2019, C36, 8 layers)", "r2", 0.9225, False, 780_949),
        PublishedResult("tiny_resnet", "Tiny ResNet", "r2", 0.9237, False, 77_273),
        PublishedResult("resnet18", "ResNet-18", "r2", 0.92, True, 11_168_193),
        PublishedResult("random_forest", "Random forest (15 coarse bits)", "r2", 0.91, True, None),
    ),
    weight_ranges={"normal": (0.095, 0.132), "reduce": (0.123, 0.127)},
    search_epochs=50,
)

CIFAR10_2019 = PublishedReference(
    source=SOURCE_2019,
    data="CIFAR-10",
    measured="softmax architecture weights after 50 search epochs, all edges and ops",
    weight_ranges={"all": (0.015, 0.82)},
    search_epochs=50,
)


def reference_for(provenance: dict[str, Any], target: str) -> PublishedReference | None:
    """The published reference of a dataset: the 2019 kirigami numbers for kirigami yield strain (MD or
    surrogate, shown as a different-data reference), the 2019 weight range for CIFAR-10."""
    kind = provenance.get("kind")
    if kind == "kirigami" and target == "yield_strain":
        return KIRIGAMI_2019
    if kind == "cifar10":
        return CIFAR10_2019
    return None
