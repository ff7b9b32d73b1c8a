"""Final training of a CNN (DARTS cell or baseline) with the engine: run_training(...), fit(...)."""

from workflow_lib.training.run import FitResult, Schedule, fit, run_training, train_step, write_method_artifacts

__all__ = ["FitResult", "Schedule", "fit", "run_training", "train_step", "write_method_artifacts"]
