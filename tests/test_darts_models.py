import pytest
import torch
import torch.nn.functional as F

from workflow_lib.darts import (GENOTYPES, build_eval_network, build_search_network,
                                count_parameters)
from workflow_lib.darts.ops import OPS, PRIMITIVES
from workflow_lib.darts.search_cells import MixedOp




def test_search_parameter_count_paper():
    m = build_search_network(3, 10, C=16, layers=8)
    assert count_parameters(m) == 1_930_618
    assert m.alpha_normal.shape == (14, 8) and m.alpha_reduce.shape == (14, 8)
    assert count_parameters(m, exclude_alphas=False) == 1_930_618 + 2 * 14 * 8
    n_w = sum(p.numel() for p in m.weights())
    assert n_w == 1_930_618
    assert {id(p) for p in m.alphas()}.isdisjoint({id(p) for p in m.weights()})
    assert "alpha_normal" in m.state_dict()
    assert m.alpha_normal.abs().max() < 1e-2


def test_eval_parameter_count_paper():
    m = build_eval_network(GENOTYPES["DARTS_V2"], 3, 10, C=36, layers=20, auxiliary=True)
    assert count_parameters(m) == 3_349_342
    # AuxiliaryHeadCIFAR: 576*128 + 256 + 128*768*4 + 1536 + 768*10 + 10
    assert count_parameters(m, exclude_auxiliary=False) == 3_349_342 + 476_426


def test_search_count_scales_with_io():
    a = build_search_network(3, 10, C=4, layers=3)
    b = build_search_network(1, 1, C=4, layers=3)
    # stem conv 3x3: (3-1) input channels * 12 * 9 ; classifier: (10-1) * (16*4 + 1)
    assert count_parameters(a) - count_parameters(b) == 2 * 12 * 9 + 9 * (4 * 16 + 1)


SHAPES = [((1, 32, 80), 1), ((3, 32, 32), 10), ((1, 8, 8), 10)]


@pytest.mark.parametrize("shape,out_dim", SHAPES)
def test_search_forward_backward(shape, out_dim):
    torch.manual_seed(0)
    m = build_search_network(shape[0], out_dim, C=4, layers=3)
    x = torch.randn(2, *shape)
    out = m(x)
    assert out.shape == (2, out_dim)
    out.sum().backward()
    assert m.alpha_normal.grad is not None and m.alpha_reduce.grad is not None
    assert all(p.grad is not None for p in m.weights())


@pytest.mark.parametrize("shape,out_dim", SHAPES)
@pytest.mark.parametrize("name", ["DARTS_V2", "KIRIGAMI_2019"])
def test_eval_forward_backward(shape, out_dim, name):
    torch.manual_seed(0)
    m = build_eval_network(GENOTYPES[name], shape[0], out_dim, C=4, layers=3, auxiliary=True)
    m.drop_path_prob = 0.2
    x = torch.randn(2, *shape)
    logits, aux = m(x)
    assert logits.shape == (2, out_dim) and aux.shape == (2, out_dim)
    (logits.sum() + 0.4 * aux.sum()).backward()
    m.eval()
    logits, aux = m(x)
    assert aux is None and logits.shape == (2, out_dim)


def test_eval_no_aux_and_drop_path_off_in_eval():
    torch.manual_seed(0)
    m = build_eval_network(GENOTYPES["DARTS_V1"], 3, 10, C=4, layers=3, auxiliary=False)
    m.train()
    x = torch.randn(2, 3, 16, 16)
    assert m(x)[1] is None and m.auxiliary_head is None
    m.eval()
    m.drop_path_prob = 0.9
    a = m(x)[0]
    b = m(x)[0]
    assert torch.equal(a, b)


def _naive_mixed(op: MixedOp, x, w):
    # every op including 'none', each op applying its own ReLU
    return sum(w[k] * o(x) for k, o in enumerate(op._ops))


@pytest.mark.parametrize("stride", [1, 2])
def test_mixed_op_matches_naive_sum(stride):
    torch.manual_seed(0)
    op = MixedOp(4, stride).double()
    x = torch.randn(2, 4, 8, 8, dtype=torch.float64)
    w = torch.softmax(torch.randn(8, dtype=torch.float64), 0)
    assert torch.allclose(op(x, w), _naive_mixed(op, x, w), atol=1e-12)
    assert torch.allclose(op(x, w, F.relu(x)), _naive_mixed(op, x, w), atol=1e-12)


def test_ops_shapes_and_odd_sizes():
    x = torch.randn(2, 4, 7, 9)
    for name in PRIMITIVES:
        for stride in (1, 2):
            y = OPS[name](4, stride, True)(x)
            assert y.shape == (2, 4, (7 - 1) // stride + 1, (9 - 1) // stride + 1), (name, stride)


@pytest.mark.parametrize("stride", [2, 4])
def test_stem_stride(stride):
    torch.manual_seed(0)
    plain_s = build_search_network(1, 1, C=4, layers=3)
    strided_s = build_search_network(1, 1, C=4, layers=3, stem_stride=stride)
    plain_e = build_eval_network(GENOTYPES["DARTS_V2"], 1, 1, C=4, layers=3)
    strided_e = build_eval_network(GENOTYPES["DARTS_V2"], 1, 1, C=4, layers=3, stem_stride=stride)
    assert count_parameters(strided_s) == count_parameters(plain_s)
    assert count_parameters(strided_e, exclude_auxiliary=False) == count_parameters(plain_e, exclude_auxiliary=False)
    x = torch.randn(2, 1, 32, 80)
    assert strided_s.stem(x).shape[-2:] == (32 // stride, 80 // stride)
    assert strided_e.stem(x).shape[-2:] == (32 // stride, 80 // stride)
    assert strided_s(x).shape == (2, 1)
    logits, aux = strided_e(x)
    assert logits.shape == (2, 1) and aux.shape == (2, 1)


def test_stem_stride_default_unchanged():
    torch.manual_seed(0)
    a = build_search_network(1, 1, C=4, layers=3)
    torch.manual_seed(0)
    b = build_search_network(1, 1, C=4, layers=3, stem_stride=1)
    assert a.stem[0].stride == (1, 1)
    x = torch.randn(2, 1, 16, 16)
    assert torch.equal(a(x), b(x))
    e = build_eval_network(GENOTYPES["DARTS_V2"], 3, 10, C=36, layers=20, auxiliary=True, stem_stride=1)
    assert count_parameters(e) == 3_349_342 and e.stem[0].stride == (1, 1)


@pytest.mark.parametrize("stride", [1, 2])
@pytest.mark.parametrize("k,dil", [(3, 2), (5, 2)])
@pytest.mark.parametrize("size", [(8, 8), (7, 9)])
@pytest.mark.parametrize("channels_last", [False, True])
def test_depthwise_conv_gradients_match_native(stride, k, dil, size, channels_last):
    from workflow_lib.darts.ops import DepthwiseConv2d, dilated_depthwise_conv
    torch.manual_seed(0)
    conv = DepthwiseConv2d(4, k, stride=stride, padding=dil * (k - 1) // 2, dilation=dil).double()
    x = torch.randn(2, 4, *size, dtype=torch.float64)
    if channels_last:
        conv = conv.to(memory_format=torch.channels_last)
        x = x.contiguous(memory_format=torch.channels_last)
    x.requires_grad_()
    y = conv(x)
    ref = F.conv2d(x, conv.weight, None, stride, conv.padding, dil, 4)
    assert torch.equal(y, ref)
    # stride 2 with dilation 2 reads every other row and column: computed on the subsampled input
    assert conv._subsampled(x) == (stride == 2)
    g = torch.randn_like(y)
    got = torch.autograd.grad(y, [x, conv.weight], g)
    want = torch.autograd.grad(ref, [x, conv.weight], g)
    for a, b in zip(got, want):
        assert a.shape == b.shape and torch.allclose(a, b, atol=1e-12)
    # double backward (the architect's Hessian-vector test differentiates through it)
    fn = lambda inp, w: dilated_depthwise_conv(inp, w, stride, conv.padding[0], dil)  # noqa: E731
    args = (x.detach()[:1, :2].clone().requires_grad_(), conv.weight.detach()[:2].clone().requires_grad_())
    assert torch.autograd.gradgradcheck(fn, args)
