"""Baseline methods: BASELINES (random_forest, resnet18, tiny_resnet, random_search) and run_baseline."""

from workflow_lib.baselines.registry import BASELINES, baseline_step, run_baseline

__all__ = ["BASELINES", "baseline_step", "run_baseline"]
