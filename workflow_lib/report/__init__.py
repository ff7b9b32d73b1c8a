"""The HTML results report: collect artifacts, draw figures and cells, render report/report.html.j2.

Entry point: ``workflow_lib.report.run.report_step`` (imported lazily so that importing the package
does not pull in matplotlib).
"""


def report_step(*args, **kwargs):
    from workflow_lib.report.run import report_step as _report_step

    return _report_step(*args, **kwargs)


__all__ = ["report_step"]
