"""Model registry: MODELS (resnet18, tiny_resnet, darts_eval), build_model, count_parameters."""

from workflow_lib.models.registry import MODELS, build_model, count_parameters, resolve_genotype
from workflow_lib.models.resnet import CifarResNet, resnet18, tiny_resnet

__all__ = ["MODELS", "CifarResNet", "build_model", "count_parameters", "resnet18", "resolve_genotype",
           "tiny_resnet"]
