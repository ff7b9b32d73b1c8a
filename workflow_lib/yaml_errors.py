"""Name the file, line and column when Snakemake's ``--configfile`` is not valid YAML; catch a target read as one.

Snakemake parses ``--configfile`` before it reads the Snakefile and reports a syntax error as "Config file
is not valid JSON or YAML" without the file or the line, so no check in the Snakefile can help. This module
is imported at interpreter start by a one-line ``.pth`` file that ``scripts/setup-env.sh`` puts into the
project's virtual environment; it waits (a meta-path hook, costing nothing until then) for Snakemake's
``snakemake.common.configfile`` to be imported and wraps its loader so that the same error names
``path:line:column`` and the YAML problem.

``--configfile`` takes several files, so a target written after it (``snakemake --configfile cfg.yaml
results/digits/summary.json``) is read as a second config file: Snakemake stopped with a raw
``FileNotFoundError`` traceback, or merged an existing JSON result into the config. Here a config file
that does not exist, or is not a ``.yaml`` / ``.yml`` file, stops with one message saying so and how to
write the command. Nothing else about the loading changes.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import os
import sys
from pathlib import Path

TARGET = "snakemake.common.configfile"


def _located(error: Exception, source: object) -> str | None:
    cause = error.__context__
    mark = getattr(cause, "problem_mark", None)
    if mark is None:
        return None
    problem = getattr(cause, "problem", None) or str(cause)
    return f"Config file {source}:{mark.line + 1}:{mark.column + 1}: not valid YAML: {problem}"


CONFIG_SUFFIXES = (".yaml", ".yml")
ORDER_HINT = ("a target after --configfile is read as a config file; put targets before --configfile "
              "(snakemake TARGET --configfile FILE) or use --configfile=FILE")


def _misplaced_target(source: object) -> str | None:
    """Why a config file path looks like a target written after --configfile (None when it looks fine)."""
    if not isinstance(source, (str, os.PathLike)):
        return None
    path = Path(source)
    if not path.exists():
        return f"config file '{source}' does not exist: {ORDER_HINT}"
    if path.suffix.lower() not in CONFIG_SUFFIXES:
        return f"config file '{source}' is not a .yaml or .yml file: {ORDER_HINT}"
    return None


def _wrap(module) -> None:
    original = module._load_configfile

    def load_naming_the_line(configpath_or_obj, filetype="Config"):
        problem = _misplaced_target(configpath_or_obj) if filetype == "Config" else None
        if problem is not None:
            raise module.WorkflowError(problem)
        try:
            return original(configpath_or_obj, filetype)
        except module.WorkflowError as error:
            message = _located(error, configpath_or_obj)
            if message is None:
                raise
            raise module.WorkflowError(message.replace("Config", filetype, 1)) from error

    module._load_configfile = load_naming_the_line


class _Hook(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    def find_spec(self, fullname, path, target=None):
        if fullname != TARGET:
            return None
        spec = importlib.machinery.PathFinder.find_spec(fullname, path)
        if spec is None:
            return None
        self._inner = spec.loader
        spec.loader = self
        return spec

    def create_module(self, spec):
        return self._inner.create_module(spec)

    def exec_module(self, module):
        self._inner.exec_module(module)
        _wrap(module)


def install() -> None:
    if not any(isinstance(finder, _Hook) for finder in sys.meta_path):
        sys.meta_path.insert(0, _Hook())


install()
