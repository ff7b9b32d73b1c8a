"""Resumable records of the networks a multi-network step has finished (random-search candidates, the
search advantage's cells).

Such a step trains several networks one after another; each checkpoints per epoch, and each finished one is
appended to a JSON record written atomically under the step's checkpoint folder with the step's fingerprint
(settings, data, rows, device, seed). A killed job rereads the record and skips what is in it; a record of
other settings or data, or an unreadable one, is ignored (the step starts afresh) with a warning.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from workflow_lib.io import read_json, write_json_atomic

log = logging.getLogger("workflow_lib.training.records")


def resumable_records(record_path: str | Path, fingerprint: str, key: str, what: str) -> list[dict[str, Any]]:
    """The ``key`` list of an interrupted run of these very settings and data (else none); ``what`` names the
    step in the warning."""
    record_path = Path(record_path)
    if not record_path.exists():
        return []
    try:
        saved = read_json(record_path)
        if saved.get("fingerprint") == fingerprint:
            return list(saved[key])
        log.warning("%s was written for other settings or data; restarting the %s", record_path, what)
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as error:
        log.warning("%s is unreadable (%s); restarting the %s", record_path, error, what)
    return []


def save_records(record_path: str | Path, fingerprint: str, key: str, records: list[dict[str, Any]]) -> None:
    """Record the finished networks (atomically: a kill leaves the previous record or this one)."""
    write_json_atomic(record_path, {"fingerprint": fingerprint, key: records})
