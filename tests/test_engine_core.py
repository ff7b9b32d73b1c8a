"""Engine: device, seeding, task, batches, steps (tiny tensors, seconds)."""

import logging

import numpy as np
import pytest
import torch
import torch.nn as nn

from workflow_lib.config.types import DeviceConfig
from workflow_lib.engine import (
    Batches,
    Cutout,
    DeviceUnavailableError,
    Task,
    autocast,
    cosine_lr,
    evaluate,
    make_generator,
    predict,
    resolve_device,
    rng_state,
    seed_everything,
    set_rng_state,
    split_output,
    to_channels_last,
    train_epoch,
)
from workflow_lib.engine.device import CUDA_MISSING_MESSAGE




# ----------------------------------------------------------------------------- device
def test_resolve_cpu():
    assert resolve_device(DeviceConfig.from_dict({"type": "cpu"})) == torch.device("cpu")
    assert resolve_device(None) == torch.device("cpu")


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without a GPU")
def test_cuda_missing_raises_with_hint():
    with pytest.raises(DeviceUnavailableError) as err:
        resolve_device(DeviceConfig.from_dict({"type": "cuda"}))
    assert str(err.value) == CUDA_MISSING_MESSAGE
    assert "allow_cpu_fallback" in str(err.value)


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without a GPU")
def test_cuda_missing_fallback_warns(caplog):
    with caplog.at_level(logging.WARNING):
        device = resolve_device(DeviceConfig.from_dict({"type": "cuda", "allow_cpu_fallback": True}))
    assert device == torch.device("cpu")
    assert "falling back" in caplog.text


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a GPU")
def test_cuda_present():
    assert resolve_device(DeviceConfig.from_dict({"type": "cuda"})).type == "cuda"


def test_threads_setting_and_default():
    before = torch.get_num_threads()
    try:
        resolve_device(DeviceConfig.from_dict({"threads": 2}))
        assert torch.get_num_threads() == 2
        resolve_device(DeviceConfig.from_dict({"threads": 0}))  # 0 leaves it alone
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)


def test_autocast_on_cpu_follows_the_hardware_and_channels_last():
    from workflow_lib.engine.device import bf16_support
    with autocast(torch.device("cpu"), False):
        out = torch.ones(2, 2) @ torch.ones(2, 2)
    assert out.dtype == torch.float32
    with autocast(torch.device("cpu"), True):  # bf16 where the CPU has AMX / AVX-512 BF16, else fp32
        out = torch.ones(2, 2) @ torch.ones(2, 2)
    assert out.dtype == (torch.bfloat16 if bf16_support("cpu")[0] else torch.float32)
    conv = to_channels_last(nn.Conv2d(1, 2, 3), True)
    assert conv.weight.is_contiguous(memory_format=torch.channels_last)
    x = to_channels_last(torch.zeros(1, 2, 3, 4), True)
    assert x.is_contiguous(memory_format=torch.channels_last)
    assert to_channels_last(torch.zeros(3), True).shape == (3,)


# ----------------------------------------------------------------------------- seeding
def test_seed_and_rng_state_roundtrip():
    seed_everything(3)
    a = torch.rand(3)
    seed_everything(3)
    assert torch.equal(a, torch.rand(3))
    state = rng_state()
    first = (torch.rand(2), np.random.rand(), __import__("random").random())
    set_rng_state(state)
    second = (torch.rand(2), np.random.rand(), __import__("random").random())
    assert torch.equal(first[0], second[0]) and first[1:] == second[1:]


# ----------------------------------------------------------------------------- task
class _Data:
    def __init__(self, y, task, out_dim):
        self.y, self.task, self.out_dim = np.asarray(y), task, out_dim


def test_regression_task_standardises_with_training_portion():
    y = np.array([1.0, 3.0, 100.0, 200.0], dtype=np.float32)
    task = Task.from_prepared(_Data(y, "regression", 1), fit_index=[0, 1])
    assert task.mean == pytest.approx(2.0) and task.std == pytest.approx(1.0)
    enc = task.encode(torch.tensor([1.0, 3.0]))
    assert torch.allclose(enc, torch.tensor([-1.0, 1.0]))
    assert torch.allclose(task.decode(enc[:, None]), torch.tensor([1.0, 3.0]))
    assert task.loss(enc[:, None], enc).item() == 0.0
    m = task.metrics(np.array([1.0, 2.0, 3.0]), np.array([1.0, 2.0, 4.0]))
    assert m["mae"] == pytest.approx(1 / 3) and m["rmse"] == pytest.approx(np.sqrt(1 / 3))
    assert m["r2"] == pytest.approx(1 - 1 / (14 / 3))
    assert task.metric_name == "r2" and task.higher_is_better
    clone = Task("regression", 1)
    clone.load_state_dict(task.state_dict())
    assert clone.mean == task.mean and clone.std == task.std


def test_classification_task():
    task = Task.from_prepared(_Data([0, 1, 2, 1], "classification", 3))
    logits = torch.tensor([[5.0, 0, 0], [0, 5.0, 0], [0, 5.0, 0]])
    assert task.decode(logits).tolist() == [0, 1, 1]
    assert task.metrics(task.decode(logits), torch.tensor([0, 1, 2]))["accuracy"] == pytest.approx(2 / 3)
    assert task.loss(logits, torch.tensor([0, 1, 1])).item() < 0.02
    assert task.metric_name == "accuracy"
    assert task.better(0.5, float("nan")) and not task.better(float("nan"), 0.1)


# ----------------------------------------------------------------------------- batches
def test_batches_cover_index_and_are_seeded():
    x = torch.arange(10, dtype=torch.float32).view(10, 1, 1, 1)
    y = torch.arange(10)
    index = np.array([1, 3, 5, 7, 9])
    b = Batches(x, y, 2, generator=make_generator(0), index=index)
    assert len(b) == 3
    seen = torch.cat([yb for _, yb in b])
    assert sorted(seen.tolist()) == index.tolist()
    state = b.state_dict()
    first = [yb.tolist() for _, yb in b]
    b.load_state_dict(state)
    assert [yb.tolist() for _, yb in b] == first
    capped = Batches(x, y, 2, generator=make_generator(0), max_steps=2)
    assert len(capped) == 2 and len(list(capped)) == 2
    assert len(Batches(x, y, 3, shuffle=False, drop_last=True)) == 3


def test_cutout_one_square_per_image():
    g = make_generator(1)
    x = torch.ones(6, 2, 12, 12)
    out = Cutout(4)(x, g)
    zeros = (out[:, 0] == 0).sum(dim=(1, 2))
    assert (zeros > 0).all() and (zeros <= 16).all()
    assert torch.equal(out[:, 0] == 0, out[:, 1] == 0)  # same patch in every channel
    g2 = make_generator(1)
    assert torch.equal(Cutout(4)(x, g2), out)


def test_cutout_applies_in_training_batches_only():
    x = torch.ones(4, 1, 8, 8)
    y = torch.zeros(4)
    b = Batches(x, y, 4, generator=make_generator(0), transform=Cutout(4))
    xb, _ = next(iter(b))
    assert (xb == 0).any()
    assert (x == 1).all()  # the stored data is untouched


# ----------------------------------------------------------------------------- steps
class _Net(nn.Module):
    def __init__(self, out_dim, aux=False):
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.head = nn.Linear(4, out_dim)
        self.aux = nn.Linear(4, out_dim) if aux else None

    def forward(self, x):
        h = self.body(x)
        return (self.head(h), self.aux(h) if self.training else None) if self.aux is not None else self.head(h)


@pytest.mark.parametrize("kind,aux", [("regression", False), ("classification", True)])
def test_train_evaluate_predict(kind, aux):
    seed_everything(0)
    n = 24
    x = torch.randn(n, 1, 6, 6)
    y = x.mean(dim=(1, 2, 3)) * 3 + 1 if kind == "regression" else (x.mean(dim=(1, 2, 3)) > 0).long()
    out_dim = 1 if kind == "regression" else 2
    task = Task.from_prepared(_Data(y.numpy(), kind, out_dim), np.arange(16))
    model = _Net(out_dim, aux)
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    b = Batches(x, y, 8, generator=make_generator(0), index=np.arange(16))
    stats = train_epoch(model, b, opt, task, grad_clip=5.0, aux_weight=0.4 if aux else 0.0)
    assert stats["steps"] == 2 and np.isfinite(stats["train_loss"]) and "train_metric" in stats
    ev = evaluate(model, x, y, task, batch_size=5, index=np.arange(16, 24))
    assert set(ev) >= {"loss", "metric", *task.metric_names}
    pred = predict(model, x, task, batch_size=5, index=np.arange(16, 24))
    assert pred.shape == (8,)
    assert ev["metric"] == pytest.approx(task.metrics(pred, y[16:])[task.metric_name])
    assert model.training  # evaluate restores the mode


def test_split_output_and_cosine():
    t = torch.zeros(1)
    assert split_output(t) == (t, None)
    assert split_output((t, None))[1] is None
    assert cosine_lr(0, 10, 0.1, 0.0) == pytest.approx(0.1)
    assert cosine_lr(5, 10, 0.1, 0.0) == pytest.approx(0.05)
    assert cosine_lr(10, 10, 0.1, 0.01) == pytest.approx(0.01)
