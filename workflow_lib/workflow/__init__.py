"""Glue between the Snakefile and the package: output paths and target lists from the validated config."""

from workflow_lib.workflow.targets import Layout, RuleInputs

__all__ = ["Layout", "RuleInputs"]
