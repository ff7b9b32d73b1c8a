"""Name the file, line and column when Snakemake's ``--configfile`` is not valid YAML.

Snakemake parses ``--configfile`` before it reads the Snakefile and reports a syntax error as "Config file
is not valid JSON or YAML" without the file or the line, so no check in the Snakefile can help. This module
is imported at interpreter start by a one-line ``.pth`` file that ``scripts/setup-env.sh`` puts into the
project's virtual environment; it waits (a meta-path hook, costing nothing until then) for Snakemake's
``snakemake.common.configfile`` to be imported and wraps its loader so that the same error names
``path:line:column`` and the YAML problem. Nothing else about the loading changes.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import sys

TARGET = "snakemake.common.configfile"


def _located(error: Exception, source: object) -> str | None:
    cause = error.__context__
    mark = getattr(cause, "problem_mark", None)
    if mark is None:
        return None
    problem = getattr(cause, "problem", None) or str(cause)
    return f"Config file {source}:{mark.line + 1}:{mark.column + 1}: not valid YAML: {problem}"


def _wrap(module) -> None:
    original = module._load_configfile

    def load_naming_the_line(configpath_or_obj, filetype="Config"):
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
