"""DARTS: Differentiable Architecture Search (Liu, Simonyan, Yang, ICLR 2019)."""
from .architect import (Architect, classification_loss, make_weight_optimizer,
                        make_weight_scheduler, regression_loss, search_step, weight_step)
from .derive import count_skips, derive_genotype, edge_entropy
from .eval_model import NetworkEval, build_eval_network, count_parameters
from .genotypes import GENOTYPES, Genotype, GenotypeError
from .ops import OPS, PRIMITIVES
from .search_model import SearchNetwork, build_search_network

__all__ = [
    "Architect", "GENOTYPES", "Genotype", "GenotypeError", "NetworkEval", "OPS", "PRIMITIVES",
    "SearchNetwork", "build_eval_network", "build_search_network", "classification_loss",
    "count_parameters", "count_skips", "derive_genotype", "edge_entropy", "make_weight_optimizer",
    "make_weight_scheduler", "regression_loss", "search_step", "weight_step",
]
