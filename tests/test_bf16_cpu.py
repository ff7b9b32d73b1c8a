"""device.bf16 (auto | true | false) on the CPU: detection, the one rule, the checkpoint identity, the
dilated depthwise backward under autocast, and the workflow steps (search, final training, a CNN baseline)
end to end through ``python -m workflow_lib`` with ``device.bf16: true``."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from workflow_lib.config import load_config
from workflow_lib.config.stage import stage_json
from workflow_lib.config.types import DeviceConfig
from workflow_lib.datasets.prepared import PreparedData
from workflow_lib.engine import device as D
from workflow_lib.training.fitting import device_identity

ROOT = Path(__file__).resolve().parents[1]
CPU_BF16 = D.bf16_support("cpu")[0]
needs_bf16 = pytest.mark.skipif(not CPU_BF16, reason="this CPU has neither AMX nor AVX-512 BF16")


def test_the_rule(monkeypatch, caplog):
    assert D.bf16_active("cpu", False) is False
    assert D.bf16_active("cpu", "auto") == CPU_BF16
    assert D.bf16_active("cpu", True) == CPU_BF16
    with pytest.raises(ValueError, match="device.bf16"):
        D.bf16_active("cpu", "yes")
    # a CPU without bf16 units: auto is off quietly, true warns (once) and runs fp32
    monkeypatch.setattr(D, "_cpu_bf16_units", lambda: ())
    monkeypatch.setattr(D, "_WARNED", set())
    assert D.bf16_support("cpu") == (False, D.bf16_support("cpu")[1])
    with caplog.at_level("WARNING"):
        assert D.bf16_active("cpu", "auto") is False
        assert not caplog.records
        assert D.bf16_active("cpu", True) is False
        assert D.bf16_active("cpu", True) is False
    assert len([r for r in caplog.records if "running in fp32" in r.getMessage()]) == 1
    assert D.autocast_factory(torch.device("cpu"), True) is None
    with D.autocast(torch.device("cpu"), True):
        assert (torch.ones(2, 2) @ torch.ones(2, 2)).dtype == torch.float32


def test_cpuinfo_fallback(monkeypatch):
    monkeypatch.setattr(D, "_cpu_flags", lambda: {"avx2", "avx512_bf16"})
    monkeypatch.delattr(torch.cpu, "_is_amx_tile_supported", raising=False)
    D._cpu_bf16_units.cache_clear()
    try:
        assert D._cpu_bf16_units() == ("AVX-512 BF16",)
    finally:
        D._cpu_bf16_units.cache_clear()


def test_checkpoint_identity_records_bf16_only_when_it_runs():
    fp32 = device_identity(DeviceConfig.from_dict({"bf16": False}))
    assert fp32 == {"type": "cpu", "bf16": False, "channels_last": "auto"}  # fingerprints of fp32 runs unchanged
    on = device_identity(DeviceConfig.from_dict({"bf16": True}))
    assert on.get("bf16_active", False) == CPU_BF16


@needs_bf16
@pytest.mark.parametrize("k,dil,stride", [(3, 2, 1), (5, 2, 2), (5, 1, 1), (5, 1, 2)])
@pytest.mark.parametrize("channels_last", [False, True])
def test_depthwise_backward_under_autocast(k, dil, stride, channels_last):
    """Input bf16, weight fp32 (autocast casts inside the conv): each gradient comes back in its input's
    dtype and matches the stock conv's autocast gradients."""
    from workflow_lib.darts.ops import DepthwiseConv2d
    torch.manual_seed(0)
    conv = DepthwiseConv2d(8, k, stride=stride, padding=dil * (k - 1) // 2, dilation=dil)
    x = torch.randn(4, 8, 12, 20).to(torch.bfloat16)
    if channels_last:
        conv = conv.to(memory_format=torch.channels_last)
        x = x.contiguous(memory_format=torch.channels_last)
    x.requires_grad_()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        y = conv(x)
        ref = F.conv2d(x, conv.weight, None, stride, conv.padding, dil, 8)
    assert y.dtype == torch.bfloat16 and torch.equal(y, ref)
    g = torch.randn_like(y)
    got = torch.autograd.grad(y, [x, conv.weight], g)
    want = torch.autograd.grad(ref, [x, conv.weight], g)
    assert got[0].dtype == torch.bfloat16 and got[1].dtype == torch.float32
    for a, b in zip(got, want):
        assert ((a.float() - b.float()).norm() / b.float().norm()) < 2e-2


def _settings(step: str, bf16) -> str:
    config = load_config({"device": {"type": "cpu", "bf16": bf16}, "datasets": {"toy": {
        "kind": "digits",
        "search": {"epochs": 1, "batch_size": 8, "C": 4, "layers": 3, "max_steps_per_epoch": 2},
        "train": {"epochs": 1, "batch_size": 8, "C": 4, "layers": 3, "max_steps_per_epoch": 2},
        "baselines": {"tiny_resnet": {"epochs": 1, "batch_size": 8, "max_steps_per_epoch": 2}}}}})
    return stage_json(config, "toy", step)


def _run(*args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    proc = subprocess.run([sys.executable, "-m", "workflow_lib", *args, "--threads", "2"], capture_output=True,
                          text=True, cwd=ROOT, env=env, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc


@needs_bf16
def test_search_training_and_baseline_run_in_bf16(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.random((60, 1, 8, 8), dtype=np.float32)
    y = (x.mean(axis=(1, 2, 3)) > 0.5).astype(np.int64)
    split = np.array([0, 1, 2] * 20, dtype=np.int8)
    data = PreparedData(x=x, y=y, task="classification", target="t", split=split, class_names=("low", "high"))
    data_path = data.save(tmp_path / "prepared.npz")
    search = _run("search", "--settings", _settings("search", True), "--data", str(data_path),
                  "--out", str(tmp_path / "search"), "--checkpoint-dir", str(tmp_path / "ckpt_search"), "--seed", "0")
    train = _run("train", "--settings", _settings("train", True), "--data", str(data_path),
                 "--genotype", str(tmp_path / "search" / "genotype.json"), "--out", str(tmp_path / "train"),
                 "--checkpoint-dir", str(tmp_path / "ckpt_train"), "--seed", "0")
    baseline = _run("baseline", "--method", "tiny_resnet", "--settings", _settings("tiny_resnet", True),
                    "--data", str(data_path), "--out", str(tmp_path / "tiny_resnet"),
                    "--checkpoint-dir", str(tmp_path / "ckpt_tiny"), "--seed", "0")
    for proc in (search, train, baseline):  # each step's log says it ran in bf16
        assert "bf16 autocast on cpu" in proc.stderr + proc.stdout
    history = json.loads((tmp_path / "search" / "history.json").read_text())
    assert np.isfinite(history["epochs"][0]["train_loss"])
    for name in ("train", "tiny_resnet"):
        metrics = json.loads((tmp_path / name / "metrics.json").read_text())
        assert metrics  # written, with finite numbers
        assert all(np.isfinite(v) for v in _numbers(metrics))


def _numbers(obj):
    if isinstance(obj, dict):
        for v in obj.values():
            yield from _numbers(v)
    elif isinstance(obj, list):
        for v in obj:
            yield from _numbers(v)
    elif isinstance(obj, (int, float)) and not isinstance(obj, bool):
        yield float(obj)
