"""DARTS: Differentiable Architecture Search (Liu, Simonyan, Yang, ICLR 2019).

Names are imported lazily (PEP 562), so torch-free parts (``primitives``, ``genotypes``) load without
torch: the Snakefile validates genotype names from the config before any job runs.
"""
from __future__ import annotations

import importlib

_EXPORTS = {
    "Architect": "architect", "classification_loss": "architect", "make_weight_optimizer": "architect",
    "make_weight_scheduler": "architect", "regression_loss": "architect", "search_step": "architect",
    "weight_step": "architect",
    "count_skips": "derive", "derive_genotype": "derive", "edge_entropy": "derive",
    "NetworkEval": "eval_model", "build_eval_network": "eval_model", "count_parameters": "eval_model",
    "GENOTYPES": "genotypes", "Genotype": "genotypes", "GenotypeError": "genotypes",
    "OPS": "ops", "PRIMITIVES": "primitives",
    "SearchNetwork": "search_model", "build_search_network": "search_model",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{_EXPORTS[name]}"), name)
