"""EpochLoop: checkpoint every epoch, resume bitwise identical on the CPU, progress log."""

import logging
import random

import numpy as np
import pytest
import torch
import torch.nn as nn

from workflow_lib.engine import Batches, Cutout, EpochLoop, Task, make_generator, seed_everything, train_epoch
from workflow_lib.engine.loop import format_duration





class _Data:
    task, out_dim = "regression", 1

    def __init__(self, y):
        self.y = y


def _make(seed=0):
    """Fresh, process-like objects: model with dropout (torch RNG), cutout batches (generator)."""
    seed_everything(seed)
    g = torch.Generator().manual_seed(123)
    x = torch.randn(40, 1, 8, 8, generator=g)
    y = x.mean(dim=(1, 2, 3)) * 2
    model = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(), nn.Dropout(0.3),
                          nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 1))
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, weight_decay=1e-4)
    batches = Batches(x, y, 8, generator=make_generator(seed), transform=Cutout(3), index=np.arange(32))
    task = Task.from_prepared(_Data(y.numpy()), np.arange(32))

    def epoch_fn(epoch):
        stats = train_epoch(model, batches, opt, task, grad_clip=1.0)
        stats.pop("seconds")
        # consumes the Python / NumPy / torch global RNGs: resume must restore them
        stats["noise"] = random.random() + float(np.random.rand()) + float(torch.rand(1))
        return stats

    return model, opt, batches, epoch_fn


def _strip(history):
    return [{k: v for k, v in row.items() if k != "seconds"} for row in history]


def test_resume_is_bitwise_identical(tmp_path):
    model_a, opt_a, batches_a, fn_a = _make()
    full = EpochLoop(tmp_path / "a.pt", {"model": model_a, "optimizer": opt_a, "batches": batches_a}, 3)
    hist_a = full.run(fn_a)

    model_b, opt_b, batches_b, fn_b = _make()
    part = EpochLoop(tmp_path / "b.pt", {"model": model_b, "optimizer": opt_b, "batches": batches_b}, 3)
    part.run(fn_b, stop_after=2)  # "killed" after epoch 2
    assert part.epoch == 2 and (tmp_path / "b.pt").exists()

    # a new process: fresh objects, different global RNG state before resuming
    model_c, opt_c, batches_c, fn_c = _make(seed=99)
    batches_c.generator.manual_seed(99)
    resumed = EpochLoop(tmp_path / "b.pt", {"model": model_c, "optimizer": opt_c, "batches": batches_c}, 3)
    hist_c = resumed.run(fn_c)
    assert resumed.resumed_from == 2

    assert _strip(hist_a) == _strip(hist_c)
    assert [row["epoch"] for row in hist_c] == [1, 2, 3]
    sa, sc = model_a.state_dict(), model_c.state_dict()
    assert sa.keys() == sc.keys()
    for key in sa:
        assert torch.equal(sa[key], sc[key]), key
    for pa, pc in zip(opt_a.state_dict()["state"].values(), opt_c.state_dict()["state"].values()):
        assert torch.equal(pa["momentum_buffer"], pc["momentum_buffer"])
    assert torch.equal(batches_a.generator.get_state(), batches_c.generator.get_state())


def test_finished_checkpoint_runs_nothing_and_logs(tmp_path, caplog):
    model, opt, batches, fn = _make()
    lines = []
    EpochLoop(tmp_path / "c.pt", {"model": model, "optimizer": opt, "batches": batches}, 2, log=lines.append).run(fn)
    assert len(lines) == 2
    assert lines[0].startswith("epoch 1/2  train_loss ")
    assert ("steps/s" in lines[0] or "s/step" in lines[0]) and "ETA " in lines[0]
    calls = []
    loop = EpochLoop(tmp_path / "c.pt", {"model": model, "optimizer": opt, "batches": batches}, 2,
                     log=logging.getLogger("t"))
    history = loop.run(lambda e: calls.append(e) or {})
    assert calls == [] and len(history) == 2


def test_epoch_function_stops_early_and_a_resumed_stopped_run_trains_no_further(tmp_path):
    model, opt, batches, fn = _make()
    lines: list[str] = []

    def stop_at_two(epoch):
        stats = fn(epoch)
        if epoch == 1:
            stats["stop"] = {"rule": "test", "reason": "enough"}
        return stats

    loop = EpochLoop(tmp_path / "s.pt", {"model": model, "optimizer": opt, "batches": batches}, 5, log=lines.append)
    history = loop.run(stop_at_two)
    assert [row["epoch"] for row in history] == [1, 2] and all("stop" not in row for row in history)
    assert loop.stopped == {"epoch": 2, "reason": {"rule": "test", "reason": "enough"}}
    assert "stopped early after epoch 2/5" in lines[-1]
    state = {k: v.clone() for k, v in model.state_dict().items()}
    calls = []
    resumed = EpochLoop(tmp_path / "s.pt", {"model": model, "optimizer": opt, "batches": batches}, 5,
                        log=lines.append)
    again = resumed.run(lambda e: calls.append(e) or {})
    assert calls == [] and len(again) == 2 and resumed.stopped == loop.stopped
    assert "nothing left to run" in lines[-1]
    assert all(torch.equal(v, state[k]) for k, v in model.state_dict().items())


def test_fingerprint_mismatch_starts_afresh(tmp_path):
    model, opt, batches, fn = _make()
    EpochLoop(tmp_path / "d.pt", {"model": model}, 1, fingerprint="a", log=lambda m: None).run(fn)
    calls = []
    EpochLoop(tmp_path / "d.pt", {"model": model}, 1, fingerprint="b", log=lambda m: None).run(
        lambda e: calls.append(e) or {})
    assert calls == [0]


def test_generator_component_and_missing_component(tmp_path):
    g = torch.Generator().manual_seed(5)
    EpochLoop(tmp_path / "e.pt", {"g": g}, 1, log=lambda m: None).run(lambda e: {"v": float(torch.rand(1, generator=g))})
    g2 = torch.Generator().manual_seed(0)
    loop = EpochLoop(tmp_path / "e.pt", {"g": g2}, 1, log=lambda m: None)
    loop.run(lambda e: {})
    assert torch.equal(g.get_state(), g2.get_state())
    messages: list[str] = []
    other = torch.Generator().manual_seed(3)
    EpochLoop(tmp_path / "e.pt", {"g": g2, "other": other}, 1, log=messages.append).run(lambda e: {})
    assert any("missing component(s) ['other']" in m and "starting afresh" in m for m in messages)
    assert (tmp_path / "e.pt.unusable").exists()


def test_format_duration():
    assert format_duration(65) == "01:05"
    assert format_duration(3725) == "1:02:05"
