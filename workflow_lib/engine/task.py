"""The learning task: loss, target encoding, prediction decoding and metrics.

``Task`` (regression | classification):

- regression: targets are standardised with the *training portion's* mean/std (``encode``); the loss is the
  MSE on standardised targets; ``decode`` maps network outputs back to original units; ``metrics(pred, y)``
  (original units) -> ``{"r2", "mae", "rmse"}``. Selection metric ``"r2"``.
- classification: cross-entropy on logits; ``decode`` = arg-max class id; ``metrics`` -> ``{"accuracy"}``
  (top-1, a fraction). Selection metric ``"accuracy"``.

Both metrics are higher-is-better (``Task.higher_is_better``). ``Task.from_prepared(data, fit_index)``
builds it from a PreparedData(-like) object (``task``, ``y``, ``out_dim``). ``state_dict`` /
``load_state_dict`` / ``to_dict`` keep mean/std with checkpoints and metrics.
"""

from __future__ import annotations

import math
from typing import Any, Sequence

import numpy as np
import torch
import torch.nn.functional as F

REGRESSION = "regression"
CLASSIFICATION = "classification"


def _as_numpy(values: Any) -> np.ndarray:
    if isinstance(values, torch.Tensor):
        return values.detach().float().cpu().numpy() if values.is_floating_point() else values.detach().cpu().numpy()
    return np.asarray(values)


class Task:
    higher_is_better = True

    def __init__(self, kind: str, out_dim: int, mean: float = 0.0, std: float = 1.0):
        if kind not in (REGRESSION, CLASSIFICATION):
            raise ValueError(f"task must be 'regression' or 'classification', got {kind!r}")
        self.kind = kind
        self.out_dim = int(out_dim)
        self.mean = float(mean)
        self.std = float(std) if std and math.isfinite(std) and std > 0 else 1.0

    # -- construction -------------------------------------------------------------------------
    @classmethod
    def from_prepared(cls, data: Any, fit_index: Sequence[int] | np.ndarray | None = None) -> "Task":
        """Task of a PreparedData; regression mean/std from y[fit_index] (all rows when None)."""
        kind = str(data.task)
        y = _as_numpy(data.y)
        out_dim = int(getattr(data, "out_dim", 1 if kind == REGRESSION else int(y.max()) + 1))
        if kind == REGRESSION:
            fit = y if fit_index is None else y[np.asarray(fit_index)]
            fit = fit.astype(np.float64)
            return cls(kind, out_dim, mean=float(fit.mean()), std=float(fit.std()))
        return cls(kind, out_dim)

    @property
    def regression(self) -> bool:
        return self.kind == REGRESSION

    @property
    def metric_name(self) -> str:
        return "r2" if self.regression else "accuracy"

    @property
    def metric_names(self) -> tuple[str, ...]:
        return ("r2", "mae", "rmse") if self.regression else ("accuracy",)

    def better(self, a: float, b: float) -> bool:
        """True when metric value a is strictly better than b (NaN is never better)."""
        if a != a:
            return False
        return b != b or a > b

    # -- tensors ------------------------------------------------------------------------------
    def target_dtype(self) -> torch.dtype:
        return torch.float32 if self.regression else torch.long

    def encode(self, y: torch.Tensor) -> torch.Tensor:
        """Original targets -> what the loss compares with (standardised floats | class ids)."""
        if self.regression:
            return (y.float() - self.mean) / self.std
        return y.long()

    def _squeeze(self, output: torch.Tensor) -> torch.Tensor:
        output = output.float()
        if self.regression and output.dim() == 2 and output.shape[1] == 1:
            return output[:, 0]
        return output

    def loss(self, output: torch.Tensor, y_encoded: torch.Tensor) -> torch.Tensor:
        """Mean loss of network outputs against encoded targets."""
        output = self._squeeze(output)
        if self.regression:
            return F.mse_loss(output, y_encoded.float())
        return F.cross_entropy(output, y_encoded.long())

    def decode(self, output: torch.Tensor) -> torch.Tensor:
        """Network outputs -> predictions in original units (regression) or class ids (classification)."""
        output = self._squeeze(output.detach())
        if self.regression:
            return output * self.std + self.mean
        return output.argmax(dim=1)

    # -- metrics ------------------------------------------------------------------------------
    def metrics(self, pred: Any, y: Any) -> dict[str, float]:
        """Metrics of decoded predictions against original targets (numpy arrays or tensors)."""
        pred = _as_numpy(pred)
        y = _as_numpy(y)
        if self.regression:
            pred = pred.astype(np.float64).reshape(-1)
            y = y.astype(np.float64).reshape(-1)
            err = pred - y
            ss_res = float(np.sum(err**2))
            ss_tot = float(np.sum((y - y.mean()) ** 2)) if y.size else 0.0
            r2 = 1.0 - ss_res / ss_tot if ss_tot > 0 else float("nan")
            return {
                "r2": r2,
                "mae": float(np.mean(np.abs(err))) if y.size else float("nan"),
                "rmse": float(np.sqrt(np.mean(err**2))) if y.size else float("nan"),
            }
        correct = float(np.sum(pred.reshape(-1) == y.reshape(-1)))
        return {"accuracy": correct / y.size if y.size else float("nan")}

    # -- state --------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "out_dim": self.out_dim, "mean": self.mean, "std": self.std}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.kind = state["kind"]
        self.out_dim = int(state["out_dim"])
        self.mean = float(state["mean"])
        self.std = float(state["std"])

    def to_dict(self) -> dict[str, Any]:
        document = {"task": self.kind, "metric": self.metric_name}
        if self.regression:
            document.update(target_mean=self.mean, target_std=self.std)
        return document

    def __repr__(self) -> str:
        extra = f", mean={self.mean:.6g}, std={self.std:.6g}" if self.regression else ""
        return f"Task({self.kind!r}, out_dim={self.out_dim}{extra})"
