"""The Hessian eigenvalue of the search diagnostics (Zela et al., ICLR 2020): power iteration against
torch.linalg.eigvalsh, exact Hessian-vector products of a search network against finite differences and
against the full Hessian, and a computation that leaves the search's state untouched."""

import numpy as np
import pytest
import torch

from workflow_lib.darts.hessian import ArchitectureHessian, architecture_eigenvalue, dominant_eigenvalue, fixed_subset
from workflow_lib.darts.pc_darts import build_pc_search_network
from workflow_lib.darts.search_model import build_search_network
from workflow_lib.engine import Task


def matrix_hvp(matrix: torch.Tensor):
    return lambda v: [(matrix @ v[0].reshape(-1)).reshape(v[0].shape)]


def symmetric(eigenvalues, seed=0) -> torch.Tensor:
    n = len(eigenvalues)
    q, _ = torch.linalg.qr(torch.randn(n, n, generator=torch.Generator().manual_seed(seed), dtype=torch.float64))
    return q @ torch.diag(torch.tensor(eigenvalues, dtype=torch.float64)) @ q.T


@pytest.mark.parametrize("eigenvalues", [
    [5.0, 2.0, 1.0, 0.5, 0.1, 0.01],          # positive definite
    [2.0, 1.0, 0.3, -0.2, -1.0, -6.0],        # indefinite: the most negative has the largest magnitude
    [-0.5, -1.0, -2.0, -4.0, -8.0, -9.0],     # negative definite: the largest is -0.5
])
def test_power_iteration_finds_the_largest_algebraic_eigenvalue(eigenvalues):
    matrix = symmetric(eigenvalues)
    expected = torch.linalg.eigvalsh(matrix).max().item()
    estimate = dominant_eigenvalue(matrix_hvp(matrix), [(2, 3)], generator=torch.Generator().manual_seed(1),
                                   max_iterations=500, tol=1e-12, dtype=torch.float64)
    assert estimate.value == pytest.approx(expected, rel=1e-6)
    assert estimate.converged
    assert estimate.shifted == (max(eigenvalues, key=abs) < 0)
    assert estimate.iterations > 2


def test_power_iteration_uses_only_its_own_generator():
    matrix = symmetric([3.0, 1.0, -0.5])
    before = torch.get_rng_state()
    first = dominant_eigenvalue(matrix_hvp(matrix), [(3,)], generator=torch.Generator().manual_seed(5), tol=1e-9,
                                max_iterations=200, dtype=torch.float64)
    assert torch.equal(torch.get_rng_state(), before)
    again = dominant_eigenvalue(matrix_hvp(matrix), [(3,)], generator=torch.Generator().manual_seed(5), tol=1e-9,
                                max_iterations=200, dtype=torch.float64)
    assert first == again


def test_power_iteration_stops_at_max_iterations_without_convergence():
    matrix = symmetric([1.0, 0.999999, 0.5])  # a tiny eigengap: slow convergence
    estimate = dominant_eigenvalue(matrix_hvp(matrix), [(3,)], generator=torch.Generator().manual_seed(0),
                                   max_iterations=3, tol=1e-15, dtype=torch.float64)
    assert estimate.iterations == 3 and not estimate.converged


def test_fixed_subset_is_seeded_sorted_and_batched_without_singletons():
    rows = np.arange(100, 400)
    batches = fixed_subset(rows, 50, 16)
    flat = np.concatenate(batches)
    assert len(flat) == 50 and np.all(np.diff(flat) > 0) and set(flat) <= set(rows)
    assert [len(b) for b in batches] == [13, 13, 12, 12]
    assert all(np.array_equal(a, b) for a, b in zip(batches, fixed_subset(rows, 50, 16)))
    assert np.array_equal(np.concatenate(fixed_subset(rows[:20], 256, 64)), rows[:20])  # fewer rows: all


def tiny_network(kind: str, dtype=torch.float64):
    torch.manual_seed(0)
    if kind == "pc_darts":
        model = build_pc_search_network(1, 1, C=4, layers=3, k=2)
    else:
        model = build_search_network(1, 1, C=2, layers=3)
    with torch.no_grad():  # alphas away from the uniform start, so the Hessian is not degenerate
        for a in model.alphas():
            a.copy_(0.5 * torch.randn(a.shape))
    model = model.to(dtype)
    x = torch.randn(12, 1, 8, 8, dtype=dtype)
    y = torch.randn(12, dtype=dtype)
    batches = [(x[:6], y[:6]), (x[6:], y[6:])]
    return model, batches


def mse(output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """The regression loss in the network's own precision (Task.loss computes in fp32; these checks run in fp64)."""
    return ((output.reshape(-1) - target) ** 2).mean()


def mean_loss_gradient(model, batches, loss):
    """The subset's mean loss gradient w.r.t. the op alphas (train-mode BN), buffers restored."""
    saved = [b.clone() for b in model.buffers()]
    model.train()
    total = [torch.zeros_like(a) for a in model.op_alphas()]
    n = sum(len(y) for _, y in batches)
    for x, y in batches:
        grads = torch.autograd.grad(loss(model(x), y), list(model.op_alphas()))
        for t, g in zip(total, grads):
            t.add_(g, alpha=len(y) / n)
    with torch.no_grad():
        for b, s in zip(model.buffers(), saved):
            b.copy_(s)
    return total


@pytest.mark.parametrize("kind", ["darts", "pc_darts"])
@pytest.mark.parametrize("keep_graph", [True, False])
def test_network_hvp_matches_finite_differences(kind, keep_graph):
    model, batches = tiny_network(kind)
    generator = torch.Generator().manual_seed(3)
    v = [torch.randn(a.shape, dtype=torch.float64, generator=generator) for a in model.op_alphas()]
    with ArchitectureHessian(model, mse, batches, keep_graph=keep_graph) as hessian:
        hv = hessian(v)
        again = hessian(v)  # a kept graph serves a second product
    eps = 1e-7  # small: ReLU and max-pool kinks make the loss only piecewise smooth
    with torch.no_grad():
        for a, d in zip(model.op_alphas(), v):
            a.add_(d, alpha=eps)
    plus = mean_loss_gradient(model, batches, mse)
    with torch.no_grad():
        for a, d in zip(model.op_alphas(), v):
            a.add_(d, alpha=-2 * eps)
    minus = mean_loss_gradient(model, batches, mse)
    for h, h2, p, m in zip(hv, again, plus, minus):
        torch.testing.assert_close(h, (p - m) / (2 * eps), rtol=1e-5, atol=1e-8)
        assert torch.equal(h, h2)


def test_network_eigenvalue_bounds_every_rayleigh_quotient():
    """The largest eigenvalue is the maximum of v'Hv / v'v: no direction may exceed it (the exact products
    are checked against finite differences above, power iteration against eigvalsh)."""
    model, batches = tiny_network("darts")
    result = architecture_eigenvalue(model, mse, batches, seed=0, max_iterations=30, tol=1e-3)
    assert result["value"] > 0 and result["seconds"] > 0 and 2 <= result["iterations"] <= 60  # two runs when shifted
    generator = torch.Generator().manual_seed(11)
    with ArchitectureHessian(model, mse, batches) as hessian:
        for _ in range(3):
            v = [torch.randn(a.shape, dtype=torch.float64, generator=generator) for a in hessian.alphas]
            quotient = sum((h * d).sum() for h, d in zip(hessian(v), v)) / sum((d * d).sum() for d in v)
            assert quotient <= result["value"] * (1 + 1e-6)


def test_eigenvalue_leaves_the_search_state_untouched():
    model, batches = tiny_network("pc_darts", dtype=torch.float32)
    task = Task("regression", 1)
    model.eval()
    for x, _ in batches:  # give the BN buffers non-default values
        model.train()
        model(x)
    model.eval()
    state = {k: v.clone() for k, v in model.state_dict().items()}
    flags = [p.requires_grad for p in model.parameters()]
    rng = torch.get_rng_state()
    architecture_eigenvalue(model, task.loss, batches, seed=0, max_iterations=4, tol=1e-3)
    for key, value in model.state_dict().items():
        assert torch.equal(value, state[key]), key
    assert [p.requires_grad for p in model.parameters()] == flags
    assert all(p.grad is None for p in model.parameters())
    assert not model.training
    assert torch.equal(torch.get_rng_state(), rng)
