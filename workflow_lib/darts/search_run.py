"""One DARTS architecture search run (per dataset and seed) on the shared training engine.

(Owned by the workflow lead: the CLI's `search` step and tests/test_darts_search_run.py use this module.)

Each epoch (Liu et al., ICLR 2019, Alg. 1): for every pair of search-train / search-val mini-batches, one
architecture step on the alphas (first or second order) and one SGD step on the weights; then the
search-val metrics, the softmax architecture weights of both cell types, each edge's entropy, the derived
genotype and its skip-connection counts are recorded. The engine checkpoints everything every epoch, so a
killed search resumes and ends bitwise identical (CPU) to an uninterrupted one.

The per-epoch diagnostics (Hessian eigenvalue, the cell's stability, logit margins against the largest
possible drift) and the stop rule (``search.stop``) are described in ``workflow_lib.darts.search_diagnostics``.

Several processes (``device.processes``; first and second order, DARTS and PC-DARTS): data parallel. Every
process takes its slice of each search-train and search-val batch; the weight step runs through
DistributedDataParallel (the alphas are left out of it), the architect averages its gradients over the
processes (``darts.architect``), BatchNorm is synchronised on CUDA. The Hessian eigenvalue is computed in
every process on the whole fixed subset with plain BatchNorm (as one process would), and rank 0's value is
kept; rank 0 writes the artifacts.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from workflow_lib.config import SearchConfig, StageConfig
from workflow_lib.config.types import SearchDiagnosticsConfig, SearchStopConfig
from workflow_lib.darts.architect import (
    Architect,
    make_weight_optimizer,
    make_weight_scheduler,
    search_step,
    weight_step,
)
from workflow_lib.darts.derive import count_skips, edge_entropy
from workflow_lib.darts.genotypes import PRIMITIVES
from workflow_lib.darts.hessian import architecture_eigenvalue, fixed_subset
from workflow_lib.darts.search_diagnostics import CELLS, history_record, margin_record, stop_summary
from workflow_lib.darts.stop_rules import decide
from workflow_lib.darts.pc_darts import build_pc_search_network
from workflow_lib.darts.search_model import SearchNetwork, build_search_network
from workflow_lib.datasets.prepared import PreparedData
from workflow_lib.engine import (
    Batches,
    EpochLoop,
    Task,
    autocast,
    device_label,
    distributed,
    evaluate,
    fingerprint_of,
    make_generator,
    resolve_device,
    seed_everything,
    to_channels_last,
)
from workflow_lib.io import savez_atomic, torch_save_atomic, write_json_atomic
from workflow_lib.provenance import run_info
from workflow_lib.datasets.splits import proxy_rows
from workflow_lib.engine.augment import model_inputs, train_transform
from workflow_lib.engine.device import channels_last_policy
from workflow_lib.engine.inputs import subsample
from workflow_lib.training.fitting import curve_index, device_identity

log = logging.getLogger("workflow_lib.darts.search")

# Per-epoch keys that hold the (14, 8) softmax weights; they go to alphas.npz, not history.json.
ALPHA_KEYS = ("alpha_normal", "alpha_reduce")


def search_step_cli(stage: StageConfig, data_path: Path, out_dir: Path, checkpoint_dir: Path, seed: int) -> None:
    """The `search` workflow step: read the stage config and prepared data, run, write the artifacts."""
    data = PreparedData.load(data_path)
    run_search(stage, data, out_dir, checkpoint_dir, seed)


def architecture_record(model: SearchNetwork) -> dict[str, Any]:
    """Softmax weights, per-edge entropy and margins, derived genotype and its skip counts, at this point of
    the search."""
    weights = {name: w.detach().cpu().numpy().astype(np.float64) for name, w in model.softmax_alphas().items()}
    logits = {cell: a.detach().cpu().double().numpy() for cell, a in zip(CELLS, model.op_alphas())}
    genotype = model.genotype()
    skips_normal, skips_reduce = count_skips(genotype)
    edges = model.edge_weights() if hasattr(model, "edge_weights") else {}  # PC-DARTS edge normalization
    return {
        **{f"edge_{name}": w.detach().cpu().double().tolist() for name, w in edges.items()},
        "genotype": genotype.to_dict(),
        "skip_count_normal": skips_normal,
        "skip_count_reduce": skips_reduce,
        "entropy_normal": edge_entropy(weights["normal"]).tolist(),
        "entropy_reduce": edge_entropy(weights["reduce"]).tolist(),
        **margin_record(weights, logits),
        "alpha_normal": weights["normal"].tolist(),
        "alpha_reduce": weights["reduce"].tolist(),
    }


def search_network(cfg: SearchConfig, in_channels: int, out_dim: int) -> SearchNetwork:
    """The supernet of ``search.method``: DARTS's, or PC-DARTS's (partial channels, edge normalization)."""
    if cfg.method == "pc_darts":
        return build_pc_search_network(in_channels, out_dim, cfg.C, cfg.layers, k=cfg.pc_k,
                                       stem_stride=cfg.stem_stride, kernel=cfg.kernel, recompute=cfg.recompute)
    return build_search_network(in_channels, out_dim, cfg.C, cfg.layers, stem_stride=cfg.stem_stride,
                                kernel=cfg.kernel, recompute=cfg.recompute)


class SearchRun:
    """Model, optimisers, batches and the per-epoch function of one search."""

    def __init__(self, stage: StageConfig, data: PreparedData, seed: int):
        self.cfg = SearchConfig.from_dict(stage.settings)
        self.diagnostics = SearchDiagnosticsConfig.from_dict(self.cfg.diagnostics)
        self.stop = SearchStopConfig.from_dict(self.cfg.stop)
        self.seed = seed
        self.device = resolve_device(stage.device)
        self.bf16 = stage.device.bf16
        seed_everything(seed)
        self.task = Task.from_prepared(data, data.search_train_index)
        # the proxy task: a subset of search-train / search-val at a reduced input resolution (both optional)
        x = subsample(torch.as_tensor(data.x, dtype=torch.float32), self.cfg.input_stride).to(self.device)
        self.x, pad_value = model_inputs(x, data.search_train_index, stage.augment)
        self.y = torch.as_tensor(data.y).to(self.device)
        self.train_rows = proxy_rows(data.search_train_index, self.cfg.max_samples)
        self.val_rows = proxy_rows(data.search_val_index, self.cfg.max_samples)
        self.curve_rows = curve_index(self.val_rows, self.cfg.eval_samples)
        model = search_network(self.cfg, data.in_channels, data.out_dim).to(self.device)
        kind = "pc_search" if self.cfg.method == "pc_darts" else "search"
        self.channels_last, why = channels_last_policy(kind, self.x.shape[1:], self.device, stage.device.channels_last)
        log.info("search network: %s layout (%s)", "channels_last" if self.channels_last else "default", why)
        self.model = distributed.sync_batchnorm(to_channels_last(model, self.channels_last))
        # DDP averages the weight gradients of the weight step; the alphas are the architect's
        self.net = distributed.data_parallel(self.model, ignore=self.model.ALPHA_NAMES)
        distributed.seed_rank(seed)
        self.weight_optimizer = make_weight_optimizer(
            self.model, self.cfg.w_lr, self.cfg.w_momentum, self.cfg.w_weight_decay
        )
        self.scheduler = make_weight_scheduler(self.weight_optimizer, self.cfg.epochs, self.cfg.w_lr_min)
        self.architect = Architect(
            self.model,
            loss_fn=self.task.loss,
            second_order=self.cfg.order == "second",
            lr=self.cfg.alpha_lr,
            betas=(self.cfg.alpha_beta1, self.cfg.alpha_beta2),
            weight_decay=self.cfg.alpha_weight_decay,
            w_momentum=self.cfg.w_momentum,
            w_weight_decay=self.cfg.w_weight_decay,
            l1_coef=self.cfg.l1_alpha,
            entropy_coef=self.cfg.entropy_alpha,
            reduce=distributed.average if distributed.current().distributed else None,
        )
        # as in the DARTS code, both queues draw from the augmented training images
        transform = train_transform(stage.augment, self.cfg.cutout_length, pad_value)
        self.train_batches = self._batches(self.train_rows, make_generator(seed), transform)
        self.val_batches = self._batches(self.val_rows, make_generator(seed + 1), transform)
        # the eigenvalue's fixed search-val subset: the same rows, batches and inputs (no augmentation) each time
        self.hessian_rows = fixed_subset(self.val_rows, self.diagnostics.hessian_samples, self.cfg.batch_size)
        self.hessian_batches = [(self._prep(self.x[torch.as_tensor(r, device=self.device)]),
                                 self.task.encode(self.y[torch.as_tensor(r, device=self.device)]))
                                for r in self.hessian_rows] if self.diagnostics.hessian_every else []

    def _batches(self, index: np.ndarray, generator: torch.Generator, transform: Any) -> Batches:
        return Batches(
            self.x, self.y, self.cfg.batch_size, shuffle=True, generator=generator,
            transform=transform, index=index, max_steps=self.cfg.max_steps_per_epoch,
        )

    def components(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "weight_optimizer": self.weight_optimizer,
            "scheduler": self.scheduler,
            "architect": self.architect,
            "train_batches": self.train_batches,
            "val_batches": self.val_batches,
        }

    def _prep(self, xb: torch.Tensor) -> torch.Tensor:
        return to_channels_last(xb, self.channels_last)

    def hessian_due(self, epoch: int) -> bool:
        """Whether the eigenvalue is computed after this (0-based) epoch: every k-th from the first, and the
        last (as R-DARTS's search code)."""
        every = self.diagnostics.hessian_every
        return every > 0 and (epoch % every == 0 or epoch == self.cfg.epochs - 1)

    def hessian(self, epoch: int) -> dict[str, Any]:
        """The eigenvalue record of this epoch (null values when it is not due)."""
        if not self.hessian_due(epoch):
            return {"hessian_eigenvalue": None, "hessian_iterations": 0, "hessian_seconds": 0.0,
                    "hessian_converged": None}
        d = self.diagnostics
        result = architecture_eigenvalue(self.hessian_model(), self.task.loss, self.hessian_batches, seed=self.seed,
                                         max_iterations=d.hessian_max_iterations, tol=d.hessian_tol,
                                         keep_graph=d.hessian_keep_graph)
        result = distributed.broadcast_object(result)  # rank 0's value (the same computation everywhere)
        log.info("search: epoch %d Hessian eigenvalue %.5g (%d Hessian-vector products on %d search-val rows, "
                 "%.1f s%s)", epoch + 1, result["value"], result["iterations"],
                 sum(len(r) for r in self.hessian_rows), result["seconds"],
                 "" if result["converged"] else ", not converged")
        return {"hessian_eigenvalue": result["value"], "hessian_iterations": result["iterations"],
                "hessian_seconds": result["seconds"], "hessian_converged": result["converged"]}

    def hessian_model(self) -> SearchNetwork:
        """The network the eigenvalue is computed on: the search's own, or with SyncBatchNorm (several processes
        on CUDA) a twin with plain BatchNorm and the same state, so each process computes alone, as one would."""
        if not distributed.has_sync_batchnorm(self.model):
            return self.model
        twin = search_network(self.cfg, self.model.in_channels, self.model.out_dim).to(self.device)
        twin.load_state_dict(self.model.state_dict())
        return to_channels_last(twin, self.channels_last)

    def diagnosed_epoch(self, epoch: int, history: list[dict[str, Any]], initial: dict[str, Any]) -> dict[str, Any]:
        """One epoch (``epoch``) plus what needs the history so far: the cell's stability, the logits' largest
        possible drift, and the stop rule's decision (under the loop's ``"stop"`` key when it fires)."""
        row = self.epoch(epoch)
        rows = [*history, {"epoch": epoch + 1, **row}]
        row.update(history_record(rows, initial["genotype"], self.cfg.alpha_lr))
        decision = decide(self.stop.to_dict(), rows, initial["genotype"], self.cfg.epochs,
                          self.diagnostics.hessian_every, self.cfg.arch_warmup_epochs)
        if decision is not None:
            log.info("search: %s", decision.reason)
            row["stop"] = decision.to_dict()
        return row

    def epoch(self, epoch: int) -> dict[str, Any]:
        """One search epoch (0-based index): alternate alpha and weight steps, then measure. During the
        ``arch_warmup_epochs`` only the weights train (PC-DARTS, Sec. 4.2: the alphas of untrained weights
        would favour parameter-free operations)."""
        lr = self.scheduler.get_last_lr()[0]
        update_alphas = epoch >= self.cfg.arch_warmup_epochs
        self.model.train()
        total, seen, val_seen, steps = 0.0, 0, 0, 0
        preds, targets = [], []
        for (x_train, y_train), (x_val, y_val) in zip(self.train_batches, self.val_batches):
            with autocast(self.device, self.bf16):  # device.bf16 resolved on this device (engine.device.bf16_active)
                if update_alphas:
                    loss, output = search_step(
                        self.model, self.architect, self.weight_optimizer,
                        self._prep(x_train), self.task.encode(y_train), self._prep(x_val), self.task.encode(y_val),
                        grad_clip=self.cfg.w_grad_clip, forward=self.net,
                    )
                else:
                    loss, output = weight_step(self.model, self.weight_optimizer, self._prep(x_train),
                                               self.task.encode(y_train), self.task.loss, self.cfg.w_grad_clip,
                                               forward=self.net)
            total += loss.item() * y_train.shape[0]
            seen += y_train.shape[0]
            val_seen += y_val.shape[0] if update_alphas else 0
            steps += 1
            preds.append(self.task.decode(output.float()).cpu())
            targets.append(y_train.cpu())
        self.scheduler.step()
        distributed.sync_buffers(self.model)  # BatchNorm running statistics: rank 0's in every process
        total, seen, val_seen = distributed.sum_values([total, seen, val_seen])  # every process's rows
        seen, val_seen = int(seen), int(val_seen)
        train_metric = self.task.metrics(distributed.gather_equal(torch.cat(preds)),
                                         distributed.gather_equal(torch.cat(targets)))[self.task.metric_name]
        val = evaluate(self.model, self.x, self.y, self.task, batch_size=max(self.cfg.batch_size, 256),
                       index=self.curve_rows, channels_last=self.channels_last)
        return {
            "train_loss": total / max(seen, 1),
            "train_metric": train_metric,
            "val_loss": val["loss"],
            "val_metric": val["metric"],
            "lr": lr,
            "steps": steps,
            "samples": seen + val_seen,  # a step reads a search-train and (updating alphas) a search-val batch
            "alphas_updated": update_alphas,
            **architecture_record(self.model),
            **self.hessian(epoch),
        }


def run_search(stage: StageConfig, data: PreparedData, out_dir: Path, checkpoint_dir: Path, seed: int) -> None:
    started = time.perf_counter()
    run = SearchRun(stage, data, seed)
    log.info("search %s seed %d on %s: %s order, C=%d, %d layers, %d epochs, %d search-train / %d search-val "
             "at input %s", stage.dataset, seed, device_label(run.device), run.cfg.order, run.cfg.C, run.cfg.layers,
             run.cfg.epochs, len(run.train_rows), len(run.val_rows), list(run.x.shape[1:]))
    settings = fingerprint_of(stage.settings, seed, data.digest(), device_identity(stage.device),
                              stage.augment.to_dict())
    loop = EpochLoop(Path(checkpoint_dir) / "ckpt.pt", run.components(), run.cfg.epochs, log=log, name="search",
                     fingerprint=settings)
    loop.extra.setdefault("initial", architecture_record(run.model))
    history = loop.run(lambda epoch: run.diagnosed_epoch(epoch, loop.history, loop.extra["initial"]))
    decision = loop.stopped["reason"] if loop.stopped else None
    write_search_artifacts(Path(out_dir), stage, run, loop.extra["initial"], history, seed,
                           time.perf_counter() - started, decision)


def search_budget(run: SearchRun, history: list[dict], wall_seconds: float) -> dict[str, Any]:
    """What the search cost: epochs, steps (one architecture and one weight update each), samples, time."""
    return {
        "epochs": len(history),
        "max_epochs": run.cfg.epochs,
        "optimizer_steps": int(sum(row.get("steps", 0) for row in history)),
        "samples_seen": int(sum(row.get("samples", 0) for row in history)),
        "train_seconds": float(sum(row.get("seconds", 0.0) for row in history)),
        "wall_seconds": float(wall_seconds),
        "input_shape": [int(s) for s in run.x.shape[1:]],
        "batch_size": run.cfg.batch_size,
        "order": run.cfg.order,
        # the eigenvalue's cost (included in train_seconds)
        "hessian_seconds": float(sum(row.get("hessian_seconds") or 0.0 for row in history)),
        "hessian_evaluations": sum(1 for row in history if row.get("hessian_eigenvalue") is not None),
        "hessian_products": int(sum(row.get("hessian_iterations") or 0 for row in history)),
    }


def write_search_artifacts(out_dir: Path, stage: StageConfig, run: SearchRun, initial: dict, history: list[dict],
                           seed: int, wall_seconds: float, decision: dict | None = None) -> None:
    records = [initial, *history]
    edges = {f"edges_{cell}": np.array([r[f"edge_{cell}"] for r in records], dtype=np.float64)
             for cell in ("normal", "reduce") if f"edge_{cell}" in initial}  # PC-DARTS: (E+1, 14) edge weights
    savez_atomic(
        out_dir / "alphas.npz",
        normal=np.array([r["alpha_normal"] for r in records], dtype=np.float64),
        reduce=np.array([r["alpha_reduce"] for r in records], dtype=np.float64),
        epoch=np.arange(len(records)),
        primitives=np.array(PRIMITIVES),
        **edges,
    )
    epochs = [{k: v for k, v in row.items() if k not in ALPHA_KEYS} for row in history]
    budget = search_budget(run, history, wall_seconds)
    stop = stop_summary(run.cfg, initial, history, decision)
    # the result is the cell of the stop epoch (the last epoch unless a rule chose an earlier one)
    genotype = history[stop["stop_epoch"] - 1]["genotype"] if history else run.model.genotype().to_dict()
    write_json_atomic(out_dir / "history.json", {
        "dataset": stage.dataset,
        "seed": seed,
        "task": run.task.kind,
        "metric": run.task.metric_name,
        "method": run.cfg.method,
        "primitives": list(PRIMITIVES),
        "initial": {k: v for k, v in initial.items() if k not in ALPHA_KEYS},
        "epochs": epochs,
        **stop,
        "wall_seconds": wall_seconds,
        "budget": budget,
    })
    torch_save_atomic(out_dir / "supernet.pt", run.model.state_dict())
    write_json_atomic(out_dir / "genotype.json", genotype)
    info = run_info(stage.to_dict(), seed, str(run.device))
    info.update({"device_label": device_label(run.device), "wall_seconds": wall_seconds,
                 "stop": {key: stop[key] for key in ("stop_rule", "stop_reason", "stop_epoch", "epochs_run")},
                 "parameters": sum(p.numel() for p in run.model.weights()), "budget": budget,
                 "proxy": {"input_shape": list(run.x.shape[1:]), "input_stride": list(run.cfg.input_stride),
                           "stem_stride": int(run.cfg.stem_stride),
                           "search_train_samples": int(len(run.train_rows)),
                           "search_val_samples": int(len(run.val_rows))}})
    write_json_atomic(out_dir / "run_info.json", info)
