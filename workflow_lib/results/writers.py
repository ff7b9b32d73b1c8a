"""Method artifacts (docs/DESIGN.md), all written atomically (temp file + rename).

- ``write_metrics(path, document)``: metrics.json (NaN/inf become null so the file is strict JSON).
- ``write_curves(path, history)``: curves.csv ``epoch,train_loss,train_metric,test_loss,test_metric,lr,seconds``
  from a list of dicts (missing values left empty).
- ``write_predictions(path, index, y_true, y_pred)``: predictions.csv ``index,y_true,y_pred``.
"""

from __future__ import annotations

import csv
import io
import math
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np

from workflow_lib.io import write_json_atomic, write_text_atomic

CURVE_COLUMNS = ("epoch", "train_loss", "train_metric", "test_loss", "test_metric", "lr", "seconds")


def _clean(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    if isinstance(value, np.ndarray):
        return _clean(value.tolist())
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, (float, np.floating)):
        value = float(value)
        return value if math.isfinite(value) else None
    if isinstance(value, Path):
        return str(value)
    return value


def write_metrics(path: str | Path, document: dict[str, Any]) -> Path:
    return write_json_atomic(path, _clean(document))


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, (float, np.floating)):
        value = float(value)
        return repr(value) if math.isfinite(value) else ""
    return str(value)


def write_curves(path: str | Path, history: Iterable[dict[str, Any]],
                 columns: Sequence[str] = CURVE_COLUMNS) -> Path:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(columns)
    for row in history:
        writer.writerow([_cell(row.get(column)) for column in columns])
    return write_text_atomic(path, buffer.getvalue())


def write_predictions(path: str | Path, index: Any, y_true: Any, y_pred: Any) -> Path:
    index = np.asarray(index).reshape(-1)
    y_true = np.asarray(y_true).reshape(-1)
    y_pred = np.asarray(y_pred).reshape(-1)
    if not (len(index) == len(y_true) == len(y_pred)):
        raise ValueError(f"predictions: lengths differ (index {len(index)}, y_true {len(y_true)}, "
                         f"y_pred {len(y_pred)})")
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(("index", "y_true", "y_pred"))
    for i, t, p in zip(index.tolist(), y_true.tolist(), y_pred.tolist()):
        writer.writerow((i, _cell(t), _cell(p)))
    return write_text_atomic(path, buffer.getvalue())
