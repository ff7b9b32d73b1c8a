"""CNN baselines (ResNet-18, Tiny ResNet) trained with the engine (CNNBaselineConfig: SGD or Adam, cosine or
constant learning rate, weight decay, grad-norm clip, optional cutout, input stride) on ``data.train_index``,
tested on ``data.test_index``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from workflow_lib.config.types import CNNBaselineConfig
from workflow_lib.engine import device_label
from workflow_lib.models.registry import build_model
from workflow_lib.engine import fingerprint_of
from workflow_lib.training.run import Schedule, fit, metrics_block, write_method_artifacts


def run_cnn(model_name: str, stage: Any, data: Any, out_dir: str | Path, checkpoint_dir: str | Path,
            seed: int) -> dict[str, Any]:
    cfg = CNNBaselineConfig.from_dict(stage.settings)
    schedule = Schedule.from_cnn_config(cfg)

    def build():
        return build_model(model_name, int(data.in_channels), int(data.out_dim))

    result = fit(build, data, schedule, data.train_index, data.test_index, stage.device,
                 Path(checkpoint_dir) / "ckpt.pt", seed, name=f"{model_name} seed {seed}",
                 fingerprint=fingerprint_of(model_name, cfg.to_dict(), int(seed)), augment=stage.augment,
                 model_kind=model_name)
    return write_method_artifacts(
        out_dir, method=model_name, dataset=stage.dataset, seed=seed, task=result.task,
        parameters=result.parameters, train_seconds=result.train_seconds, device=device_label(result.device),
        epochs=len(result.history), test=metrics_block(result.evaluation), config=cfg.to_dict(),
        stage_document=stage.to_dict(), history=result.history, index=result.eval_index,
        y_true=result.y_true, y_pred=result.predictions, budget=result.budget,
    )


def run_resnet18(stage: Any, data: Any, out_dir: str | Path, checkpoint_dir: str | Path, seed: int) -> dict:
    return run_cnn("resnet18", stage, data, out_dir, checkpoint_dir, seed)


def run_tiny_resnet(stage: Any, data: Any, out_dir: str | Path, checkpoint_dir: str | Path, seed: int) -> dict:
    return run_cnn("tiny_resnet", stage, data, out_dir, checkpoint_dir, seed)
