"""PC-DARTS (Xu et al., ICLR 2020): partial channels, channel shuffle, edge normalization,
derivation with edge weights, architect steps and bitwise resume."""
import io

import numpy as np
import pytest
import torch

from workflow_lib.darts import Architect, count_parameters, derive_genotype
from workflow_lib.darts.architect import classification_loss, make_weight_optimizer, search_step
from workflow_lib.darts.ops import PRIMITIVES
from workflow_lib.darts.pc_darts import (PartialMixedOp, build_pc_search_network, channel_shuffle,
                                         node_softmax)


def _op_params(c: int, reduction_edge: bool) -> int:
    """Parameters of one edge's ops at c channels, from the op definitions (search ops have
    affine=False BN, so only convolutions count): sep conv k: 2 x (depthwise k*k*c +
    pointwise c*c); dil conv k: k*k*c + c*c; skip in a stride-2 edge: FactorizedReduce, two
    1x1 convs c -> c/2; pools, none, identity: 0."""
    sep = sum(2 * (k * k * c + c * c) for k in (3, 5))
    dil = sum(k * k * c + c * c for k in (3, 5))
    return sep + dil + (c * c if reduction_edge else 0)


def expected_pc_params(in_ch, out_dim, C, layers, k, steps=4, multiplier=4, stem_mult=3):
    """The paper's construction counted by hand: stem, per cell the two preprocessing 1x1
    convs (FactorizedReduce has the same count) and 14 edges whose ops run on C/K channels."""
    c_stem = stem_mult * C
    total = in_ch * c_stem * 9 + 2 * c_stem  # conv 3x3 + affine BN
    cpp, cp, cc = c_stem, c_stem, C
    for i in range(layers):
        red = i in (layers // 3, 2 * layers // 3)
        if red:
            cc *= 2
        total += cpp * cc + cp * cc
        for node in range(steps):
            for j in range(2 + node):
                total += _op_params(cc // k, red and j < 2)
        cpp, cp = cp, multiplier * cc
    return total + cp * out_dim + out_dim


@pytest.mark.parametrize("args", [(3, 10, 16, 8, 4), (1, 1, 8, 5, 4), (1, 1, 16, 5, 2), (3, 10, 8, 3, 1)])
def test_parameter_count_matches_construction(args):
    in_ch, out_dim, C, layers, k = args
    m = build_pc_search_network(in_ch, out_dim, C=C, layers=layers, k=k)
    assert count_parameters(m) == expected_pc_params(in_ch, out_dim, C, layers, k)
    assert sum(p.numel() for p in m.weights()) == count_parameters(m)
    assert len(m.alphas()) == 4 and m.beta_normal.shape == (14,) and m.beta_reduce.shape == (14,)


def test_k1_has_darts_parameter_count():
    # K = 1 sends every channel through the ops: the DARTS supernet's 1,930,618 weights
    m = build_pc_search_network(3, 10, C=16, layers=8, k=1)
    assert count_parameters(m) == 1_930_618


@pytest.mark.parametrize("shape,out_dim", [((1, 32, 80), 1), ((3, 32, 32), 10), ((1, 8, 8), 10),
                                           ((1, 7, 9), 1)])
def test_output_shapes_and_gradients(shape, out_dim):
    torch.manual_seed(0)
    m = build_pc_search_network(shape[0], out_dim, C=8, layers=3)
    out = m(torch.randn(2, *shape))
    assert out.shape == (2, out_dim)
    out.sum().backward()
    assert all(a.grad is not None and a.grad.abs().sum() > 0 for a in m.alphas())


@pytest.mark.parametrize("stride", [1, 2])
def test_partial_mixed_op_shapes(stride):
    op = PartialMixedOp(8, stride, k=4)
    y = op(torch.randn(2, 8, 10, 12), torch.softmax(torch.randn(8), 0))
    assert y.shape == (2, 8, 10 // stride, 12 // stride)
    assert sum(p.numel() for p in op.parameters()) == _op_params(2, stride == 2)


def test_channel_shuffle_is_the_shufflenet_permutation():
    n, c, k = 2, 12, 4
    x = torch.arange(c, dtype=torch.float32).view(1, c, 1, 1).expand(n, c, 3, 5).contiguous()
    y = channel_shuffle(x, k)
    perm = y[0, :, 0, 0].long().tolist()
    assert sorted(perm) == list(range(c))  # a permutation
    cpg = c // k
    assert perm == [g * cpg + i for i in range(cpg) for g in range(k)]
    # layout kept: channels_last in, channels_last out, same values
    z = channel_shuffle(x.contiguous(memory_format=torch.channels_last), k)
    assert z.is_contiguous(memory_format=torch.channels_last) and torch.equal(z, y)
    # the bypass path: the ops' C/K channels land on every K-th output channel
    assert perm[::k] == list(range(cpg))


def test_node_softmax():
    beta = torch.randn(14)
    w = node_softmax(beta, 4)
    start = 0
    for i in range(4):
        seg = w[start:start + 2 + i]
        assert torch.allclose(seg.sum(), torch.tensor(1.0))
        assert torch.allclose(seg, torch.softmax(beta[start:start + 2 + i], 0))
        start += 2 + i


def test_derivation_uses_edge_weights():
    # node 1 (the second intermediate node) has edges 2, 3, 4 from inputs 0, 1, 2. Without
    # edge weights its strongest non-none op weights pick inputs (0, 1); edge weights
    # favouring edge 4 make it take inputs 2 and 0 instead.
    a = np.zeros((14, 8))
    sep = PRIMITIVES.index("sep_conv_3x3")
    a[2, sep] = a[3, sep] = 2.0
    a[4, sep] = 1.5
    plain = derive_genotype(a, a)
    assert [j for _, j in plain.normal[2:4]] == [0, 1]
    e = np.ones(14)
    e[2:5] = [0.34, 0.06, 0.6]  # node 1's softmaxed edge weights
    weighted = derive_genotype(a, a, edge_normal=e, edge_reduce=np.ones(14))
    assert [j for _, j in weighted.normal[2:4]] == [2, 0]
    assert weighted.normal[2][0] == "sep_conv_3x3"
    assert weighted.reduce == plain.reduce
    # the model's own genotype() goes through the same rule with its normalized betas
    m = build_pc_search_network(1, 1, C=4, layers=3)
    with torch.no_grad():
        m.alpha_normal.copy_(torch.as_tensor(a))
        m.beta_normal.zero_()
        m.beta_normal[4] = 3.0
    assert m.genotype().normal[2][1] == 2


def _setup(order, seed=0):
    torch.manual_seed(seed)
    m = build_pc_search_network(2, 3, C=8, layers=3).double()
    g = torch.Generator().manual_seed(1)
    data = [torch.randn(4, 2, 8, 8, generator=g, dtype=torch.float64) for _ in range(2)]
    ys = [torch.randint(0, 3, (4,), generator=g) for _ in range(2)]
    opt = make_weight_optimizer(m)
    arch = Architect(m, classification_loss, second_order=(order == 2), lr=0.05)
    return m, opt, arch, (data[0], ys[0], data[1], ys[1])


@pytest.mark.parametrize("order", [1, 2])
def test_architect_steps_update_betas(order):
    m, opt, arch, batch = _setup(order)
    before = [a.detach().clone() for a in m.alphas()]
    search_step(m, arch, opt, *batch)
    search_step(m, arch, opt, *batch)
    for b, a in zip(before, m.alphas()):
        assert not torch.equal(b, a)
    assert all(torch.isfinite(a).all() for a in m.alphas())


def _state(m, opt, arch):
    buf = io.BytesIO()
    torch.save({"m": m.state_dict(), "o": opt.state_dict(), "a": arch.state_dict()}, buf)
    buf.seek(0)
    return buf


@pytest.mark.parametrize("order", [1, 2])
def test_resume_is_bitwise(order):
    m, opt, arch, batch = _setup(order)
    for _ in range(2):
        search_step(m, arch, opt, *batch)
    saved = _state(m, opt, arch)
    for _ in range(2):
        search_step(m, arch, opt, *batch)
    straight = {k: v.clone() for k, v in m.state_dict().items()}

    m2, opt2, arch2, _ = _setup(order, seed=123)  # different init: everything must come from the state
    state = torch.load(saved, weights_only=True)  # as the workflow loads checkpoints: plain data only
    m2.load_state_dict(state["m"])
    opt2.load_state_dict(state["o"])
    arch2.load_state_dict(state["a"])
    for _ in range(2):
        search_step(m2, arch2, opt2, *batch)
    for k, v in m2.state_dict().items():
        assert torch.equal(v, straight[k]), k


def test_bad_k():
    with pytest.raises(ValueError, match="divisible"):
        build_pc_search_network(1, 1, C=6, layers=3, k=4)


def test_bypass_channels_pass_unchanged_and_reduction_pools_them():
    torch.manual_seed(0)
    k, C = 4, 8
    cpg = C // k
    x = torch.randn(2, C, 6, 6)
    w = torch.softmax(torch.randn(8), 0)
    y = PartialMixedOp(C, 1, k=k).eval()(x, w)
    for g in range(1, k):  # output channel i*K + g holds input channel g*cpg + i
        for i in range(cpg):
            assert torch.equal(y[:, i * k + g], x[:, g * cpg + i])
    y2 = PartialMixedOp(C, 2, k=k).eval()(x, w)
    pooled = torch.nn.functional.max_pool2d(x, 2, 2)
    assert torch.equal(y2[:, 1], pooled[:, cpg])  # first bypassed channel, max-pooled 2x2
