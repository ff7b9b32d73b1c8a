"""search.kernel (eager | fused | compiled) and search.recompute: the same network function and gradients.

The eager mixed op is the reference.  fused/compiled must equal it within float rounding (forward, the
gradients of the weights and of the architecture parameters), for DARTS and PC-DARTS cells in both memory
layouts, in fp32 and (looser) under bf16 autocast; recomputation per cell must give bitwise the same
gradients (first and second order) and batch-norm statistics as the plain network.
"""

import copy

import pytest
import torch
import torch.nn.functional as F

from workflow_lib.darts import build_search_network
from workflow_lib.darts.architect import Architect, make_weight_optimizer, regression_loss, search_step
from workflow_lib.darts.mixed_kernels import NormalizedWeightedSum, WeightedSum, inner, live_ops
from workflow_lib.darts.pc_darts import build_pc_search_network
from workflow_lib.darts.search_cells import MixedOp
from workflow_lib.engine.device import to_channels_last

BUILDERS = {"darts": build_search_network, "pc_darts": build_pc_search_network}


def network(method: str, channels_last: bool, dtype=torch.float32, **kw):
    torch.manual_seed(0)
    model = BUILDERS[method](1, 1, C=8, layers=3, **kw).to(dtype)
    with torch.no_grad():  # alphas away from uniform, so that every op's weight matters
        for a in model.alphas():
            a.normal_()
    x = torch.randn(4, 1, 12, 20, dtype=dtype)
    return to_channels_last(model, channels_last), to_channels_last(x, channels_last)


def grads(model, x, autocast: bool = False):
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
        out = model(x)
        loss = out.float().square().mean()
    params = list(model.parameters())
    return out.float(), torch.autograd.grad(loss, params), [b.clone() for b in model.buffers()]


def rel(a: torch.Tensor, b: torch.Tensor) -> float:
    return ((a.float() - b.float()).norm() / b.float().norm().clamp_min(1e-30)).item()


def flat(gs) -> torch.Tensor:
    return torch.cat([g.double().flatten() for g in gs])


@pytest.mark.parametrize("method", ["darts", "pc_darts"])
@pytest.mark.parametrize("channels_last", [False, True])
def test_fused_equals_eager_fp64(method, channels_last):
    """The same function: in float64 every gradient (each weight, the alphas, PC-DARTS's betas), the output
    and the batch-norm running statistics agree to rounding (the fused kernel folds each op's closing batch
    norm into the weighted sum: another summation order, the same numbers)."""
    model, x = network(method, channels_last, dtype=torch.float64)
    fused = copy.deepcopy(model)  # before any forward: the same running statistics
    fused.set_kernel("fused")
    ref = grads(model, x)
    got = grads(fused, x)
    assert ((got[0].double() - ref[0].double()).norm() / ref[0].double().norm()).item() < 1e-10
    assert len(got[1]) == len(ref[1])
    for g, r in zip(got[1], ref[1]):
        assert g.shape == r.shape and ((g - r).norm() / r.norm().clamp_min(1e-300)).item() < 1e-10
    for b, r in zip(got[2], ref[2]):
        assert torch.allclose(b.double(), r.double(), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("method", ["darts", "pc_darts"])
@pytest.mark.parametrize("channels_last", [False, True])
def test_fused_equals_eager_fp32(method, channels_last):
    """In float32 the two kernels round differently; a pre-activation within rounding of 0 may then fall on
    the other side of a ReLU, which moves the gradient of the few weights behind it by up to ~1e-2 (seen:
    one value of -1e-8 against +8e-8 in float64): compared over all gradients at once."""
    model, x = network(method, channels_last)
    fused = copy.deepcopy(model)
    fused.set_kernel("fused")
    ref = grads(model, x)
    got = grads(fused, x)
    assert rel(got[0], ref[0]) < 1e-5
    per_tensor = sorted(rel(g, r) for g, r in zip(got[1], ref[1]))
    assert per_tensor[len(per_tensor) // 2] < 1e-5  # most gradients agree to float rounding
    assert rel(flat(got[1]), flat(ref[1])) < 1e-3  # a ReLU kink crossed moves a few, and what is upstream
    n_alpha = len(list(model.alphas()))
    assert rel(flat(got[1][-n_alpha:]), flat(ref[1][-n_alpha:])) < 1e-3
    for b, r in zip(got[2], ref[2]):  # batch-norm running statistics
        assert torch.allclose(b.float(), r.float(), rtol=1e-5, atol=1e-6)


def test_fused_darts_folds_the_closing_batch_norms():
    """DARTS's fused kernel never writes BN(z_k) of an op's closing batch norm: one NormalizedWeightedSum
    per node in training mode; in evaluation mode (running statistics) the plain weighted sum."""
    model, x = network("darts", True, kernel="fused")
    seen = []
    hook = torch.nn.modules.module.register_module_forward_hook(
        lambda m, i, o: seen.append(m) if isinstance(m, torch.nn.BatchNorm2d) else None)
    try:
        out = model(x)
    finally:
        hook.remove()
    nodes = [n for n in _graph_nodes(out.grad_fn)]
    assert sum(n == "NormalizedWeightedSumBackward" for n in nodes) == 3 * 4  # 3 cells x 4 nodes
    n_bn = sum(isinstance(m, torch.nn.BatchNorm2d) for m in model.modules())
    assert 0 < len(seen) < n_bn / 2  # the closing norms (most of them) ran inside the kernel
    model.eval()
    with torch.no_grad():
        ref = copy.deepcopy(model)
        ref.set_kernel("eager")
        assert rel(model(x), ref(x)) < 1e-5


def _graph_nodes(fn):
    seen, stack = set(), [fn]
    while stack:
        f = stack.pop()
        if f is None or f in seen:
            continue
        seen.add(f)
        yield type(f).__name__
        stack.extend(n for n, _ in f.next_functions)


def test_normalized_weighted_sum_gradients_and_double_backward():
    """gradcheck and gradgradcheck (the Hessian eigenvalue differentiates twice) in both layouts, with a plain
    (skip) term beside batch-normalised ones; the running statistics move as nn.BatchNorm2d's."""
    torch.manual_seed(0)
    for layout in (torch.contiguous_format, torch.channels_last):
        w = torch.rand(3, dtype=torch.float64, requires_grad=True)
        zs = [(torch.randn(3, 4, 3, 5, dtype=torch.float64) * 2 + 1).contiguous(memory_format=layout).requires_grad_()
              for _ in range(3)]
        norms = (torch.nn.BatchNorm2d(4, affine=False).double(), None, torch.nn.BatchNorm2d(4, affine=False).double())
        fn = lambda w, *zs: NormalizedWeightedSum.apply(w, *zs, norms)  # noqa: E731
        assert torch.autograd.gradcheck(fn, (w, *zs))
        assert torch.autograd.gradgradcheck(fn, (w, *zs))
        ref = torch.nn.BatchNorm2d(4, affine=False).double()
        eager = w[0] * ref(zs[0]) + w[1] * zs[1]
        fresh = torch.nn.BatchNorm2d(4, affine=False).double()
        got = NormalizedWeightedSum.apply(w[:2], zs[0], zs[1], (fresh, None))
        assert torch.allclose(got, eager, atol=1e-12)
        for name in ("running_mean", "running_var", "num_batches_tracked"):
            assert torch.allclose(getattr(fresh, name).double(), getattr(ref, name).double(), atol=1e-12)


@pytest.mark.parametrize("method", ["darts", "pc_darts"])
@pytest.mark.parametrize("channels_last", [False, True])
def test_fused_equals_eager_bf16(method, channels_last):
    """Under bf16 autocast both kernels round differently from fp32 (on this tiny net with batch 4 the
    weight gradients differ from fp32 by ~20% in norm, batch norm's small-batch statistics amplify it):
    the fused kernel must be as close to fp32 as the eager one."""
    model, x = network(method, channels_last)
    fused, fp32 = copy.deepcopy(model), copy.deepcopy(model)
    fused.set_kernel("fused")
    eager = grads(model, x, autocast=True)
    got = grads(fused, x, autocast=True)
    ref = grads(fp32, x)
    assert rel(got[0], ref[0]) < 1.5 * rel(eager[0], ref[0]) + 5e-3 < 5e-2
    flat = lambda gs: torch.cat([g.float().flatten() for g in gs])  # noqa: E731
    assert rel(flat(got[1]), flat(ref[1])) < 1.5 * rel(flat(eager[1]), flat(ref[1])) + 2e-2
    n_alpha = len(list(model.alphas()))
    for g, e, r in zip(got[1][-n_alpha:], eager[1][-n_alpha:], ref[1][-n_alpha:]):
        assert g.dtype == torch.float32 and rel(g, r) < 1.5 * rel(e, r) + 2e-2 < 0.1


def test_weighted_sum_gradients_and_double_backward():
    torch.manual_seed(0)
    w = torch.rand(3, dtype=torch.float64, requires_grad=True)
    ys = [torch.randn(2, 3, 4, 5, dtype=torch.float64, requires_grad=True) for _ in range(3)]
    ys[1] = ys[1].detach().contiguous(memory_format=torch.channels_last).requires_grad_()
    assert torch.autograd.gradcheck(lambda w, *ys: WeightedSum.apply(w, *ys), (w, *ys))
    assert torch.autograd.gradgradcheck(lambda w, *ys: WeightedSum.apply(w, *ys), (w, *ys))
    g = torch.randn(2, 3, 4, 5, dtype=torch.float64)
    for y in ys:  # both layouts, through the storage-order dot product
        assert torch.allclose(inner(g.contiguous(memory_format=torch.channels_last), y), (g * y).sum())
        assert torch.allclose(inner(g, y), (g * y).sum())


def test_weighted_sum_keeps_no_outputs_for_constant_weights():
    w = torch.rand(2)
    ys = [torch.randn(5, requires_grad=True) for _ in range(2)]
    out = WeightedSum.apply(w, *ys)
    assert len(out.grad_fn.saved_tensors) == 1  # only w: the ys serve only grad w
    gy = torch.autograd.grad(out.sum(), ys)
    assert torch.allclose(gy[0], w[0].expand(5)) and torch.allclose(gy[1], w[1].expand(5))


def test_ops_of_weight_exactly_zero_are_skipped():
    torch.manual_seed(0)
    op = MixedOp(4, 1).double()
    op.kernel = "fused"
    x = torch.randn(2, 4, 6, 6, dtype=torch.float64)
    alpha = torch.randn(1, 8, dtype=torch.float64)
    alpha[0, 4] = -1e4  # sep_conv_3x3: softmax weight underflows to exactly 0
    w = F.softmax(alpha, dim=-1)
    assert w[0, 4] == 0
    live = live_ops(w, skip=(0,))[0]
    assert live == [1, 2, 3, 5, 6, 7]
    calls = []
    hook = op._ops[4].register_forward_hook(lambda *a: calls.append(1))
    out = op(x, w[0], live=live)
    hook.remove()
    assert calls == []
    op.kernel = "eager"
    assert torch.allclose(out, op(x, w[0]), atol=1e-12)
    # an edge whose every weight but none's is 0 keeps all ops (their terms are exactly 0)
    assert live_ops(torch.tensor([[1.0, 0, 0, 0, 0, 0, 0, 0]]), skip=(0,)) == [[1, 2, 3, 4, 5, 6, 7]]


def test_compiled_equals_eager():
    """One mixed op through torch.compile (inductor; a single shape, so one compilation)."""
    torch.manual_seed(0)
    op = MixedOp(4, 1)
    x = torch.randn(2, 4, 6, 6, requires_grad=True)
    alpha = torch.randn(8, requires_grad=True)
    results = []
    for kernel in ("eager", "compiled"):
        op.kernel = kernel
        out = op(x, F.softmax(alpha, dim=-1))
        results.append((out, torch.autograd.grad(out.square().sum(), [x, alpha, *op.parameters()])))
    (ref, ref_g), (got, got_g) = results
    assert rel(got, ref) < 1e-5
    for g, r in zip(got_g, ref_g):
        assert rel(g, r) < 1e-4


@pytest.mark.parametrize("method", ["darts", "pc_darts"])
@pytest.mark.parametrize("channels_last", [False, True])
@pytest.mark.parametrize("kernel", ["eager", "fused"])
def test_recompute_gives_identical_gradients_and_statistics(method, channels_last, kernel):
    model, x = network(method, channels_last, kernel=kernel)
    rec = copy.deepcopy(model)
    rec.recompute = True
    plain = grads(model, x)
    got = grads(rec, x)
    assert torch.equal(got[0], plain[0])
    assert all(torch.equal(g, r) for g, r in zip(got[1], plain[1]))
    # running mean/var and num_batches_tracked updated once per forward, as without recomputation
    assert all(torch.equal(b, r) for b, r in zip(got[2], plain[2]))


@pytest.mark.parametrize("order", ["first", "second"])
@pytest.mark.parametrize("method", ["darts", "pc_darts"])
def test_recompute_search_steps_are_bitwise_identical(order, method):
    """Architect (first and second order: w' and w +- eps v written in place between passes) and weight step."""
    results = []
    for recompute in (False, True):
        model, x = network(method, False, dtype=torch.float32, kernel="fused", recompute=recompute)
        y = torch.randn(4)
        opt = make_weight_optimizer(model)
        arch = Architect(model, regression_loss, second_order=order == "second")
        for _ in range(2):
            search_step(model, arch, opt, x, y, x.flip(0), y.flip(0))
        results.append(model.state_dict())
    assert results[0].keys() == results[1].keys()
    assert all(torch.equal(results[0][k], results[1][k]) for k in results[0])
