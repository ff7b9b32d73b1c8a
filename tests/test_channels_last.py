"""channels_last on the CPU: the crash workaround and the layout policy.

The crashing cases run in a subprocess, so a segmentation fault fails the test instead of
killing pytest (see workflow_lib.engine.device for the reproduction and the cause)."""
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
import torch.nn as nn

from workflow_lib.engine.device import (SubsampledPointwiseConv2d, channels_last_policy,
                                        guard_strided_pointwise_convs, to_channels_last)

ROOT = Path(__file__).resolve().parents[1]

# Every case trains a few steps in channels_last through to_channels_last (as the workflow
# does).  Unguarded, each of them reaches the oneDNN bug: the raw op (1x1, stride 2, 4 input
# channels), the PC-DARTS supernet (FactorizedReduce on C/K = 4 channels), and the two models
# that crashed on the reference machine (Tiny ResNet 1x32x80, the C=4 supernet).
SCRIPT = textwrap.dedent("""
    import faulthandler, sys, torch
    faulthandler.enable()
    sys.path.insert(0, {root!r})
    from workflow_lib.darts import build_search_network
    from workflow_lib.darts.pc_darts import build_pc_search_network
    from workflow_lib.engine.device import to_channels_last
    from workflow_lib.models.resnet import tiny_resnet
    torch.set_num_threads(1)
    cases = {{
        "pointwise_s2": lambda: torch.nn.Conv2d(4, 2, 1, stride=2, bias=False),
        "pc_darts_C8": lambda: build_pc_search_network(1, 1, C=8, layers=3),
        "tiny_resnet": lambda: tiny_resnet(1, 1),
        "search_C4": lambda: build_search_network(1, 1, C=4, layers=3),
    }}
    for name in sys.argv[1:]:
        torch.manual_seed(0)
        model = to_channels_last(cases[name](), True)
        for _ in range(3):
            channels = 4 if name == "pointwise_s2" else 1
            x = to_channels_last(torch.randn(8, channels, 32, 80), True)
            out = model(x)
            out = out[0] if isinstance(out, tuple) else out
            (out.float() ** 2).mean().backward()
        print("OK", name, flush=True)
""").format(root=str(ROOT))


@pytest.mark.parametrize("name", ["pointwise_s2", "pc_darts_C8", "tiny_resnet", "search_C4"])
def test_crashing_shapes_train_in_channels_last(name):
    proc = subprocess.run([sys.executable, "-c", SCRIPT, name], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, f"{name}: exit {proc.returncode}\n{proc.stderr[-2000:]}"
    assert f"OK {name}" in proc.stdout


def test_guard_targets_only_small_strided_pointwise_convs():
    m = nn.Sequential(nn.Conv2d(4, 8, 1, stride=2), nn.Conv2d(8, 8, 3, stride=2, padding=1),
                      nn.Conv2d(8, 8, 1), nn.Conv2d(32, 8, 1, stride=2))
    guard_strided_pointwise_convs(m)
    assert [type(c) for c in m] == [SubsampledPointwiseConv2d, nn.Conv2d, nn.Conv2d, nn.Conv2d]
    assert list(m.state_dict()) == ["0.weight", "0.bias", "1.weight", "1.bias", "2.weight", "2.bias",
                                    "3.weight", "3.bias"]


@pytest.mark.parametrize("size", [(32, 80), (7, 9)])
def test_guarded_conv_is_the_same_function(size):
    # float64 takes no oneDNN path, so both forms can be compared in-process
    torch.manual_seed(0)
    conv = nn.Conv2d(4, 2, 1, stride=2, bias=True).double()
    ref = nn.Conv2d(4, 2, 1, stride=2, bias=True).double()
    ref.load_state_dict(conv.state_dict())
    guard_strided_pointwise_convs(conv)
    for fmt in (torch.contiguous_format, torch.channels_last):
        x = torch.randn(3, 4, *size, dtype=torch.float64).contiguous(memory_format=fmt).requires_grad_()
        a, b = conv(x), ref(x)
        assert a.shape == b.shape and torch.allclose(a, b, atol=1e-12)
        ga = torch.autograd.grad(a.sum(), [x, conv.weight, conv.bias])
        gb = torch.autograd.grad(b.sum(), [x, ref.weight, ref.bias])
        assert all(torch.allclose(p, q, atol=1e-12) for p, q in zip(ga, gb))


def test_policy():
    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    assert channels_last_policy("tiny_resnet", (1, 32, 80), cpu, True)[0] is True
    assert channels_last_policy("search", (1, 32, 80), cpu, False)[0] is False
    for kind in ("search", "darts_eval"):
        assert channels_last_policy(kind, (1, 32, 80), cpu)[0] is True
    assert channels_last_policy("pc_search", (1, 32, 80), cpu)[0] is False
    assert channels_last_policy("resnet18", (3, 32, 32), cpu)[0] is True
    assert channels_last_policy("resnet18", (1, 32, 80), cpu)[0] is False
    assert channels_last_policy("tiny_resnet", (1, 32, 80), cpu)[0] is False
    assert channels_last_policy("search", (3, 32, 32), cuda)[0] is False
    assert channels_last_policy("unknown_net", (3, 32, 32), cpu)[0] is False
    with pytest.raises(ValueError):
        channels_last_policy("search", (1, 8, 8), cpu, "sometimes")


def test_to_channels_last_applies_the_guard():
    from workflow_lib.darts.ops import FactorizedReduce
    fr = to_channels_last(FactorizedReduce(4, 4), True)
    assert type(fr.conv_1) is SubsampledPointwiseConv2d and type(fr.conv_2) is SubsampledPointwiseConv2d
    assert to_channels_last(FactorizedReduce(4, 4), False).conv_1.__class__ is nn.Conv2d
