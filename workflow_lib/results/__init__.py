"""Result artifacts: metrics.json / curves.csv / predictions.csv writers and the per-dataset summary."""

from workflow_lib.results.summary import summarise, write_summary
from workflow_lib.results.writers import CURVE_COLUMNS, write_curves, write_metrics, write_predictions

__all__ = ["CURVE_COLUMNS", "summarise", "write_curves", "write_metrics", "write_predictions", "write_summary"]
