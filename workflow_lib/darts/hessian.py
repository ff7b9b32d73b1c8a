"""The dominant eigenvalue of the Hessian of the search-val loss with respect to the architecture.

Zela et al., "Understanding and Robustifying Differentiable Architecture Search" (ICLR 2020), track the
largest eigenvalue of the Hessian of the validation loss with respect to the architecture parameters:
it grows when a DARTS search drifts into a sharp region whose discretised cell generalises poorly, and
its growth is the signal of their early-stop rule DARTS-ES (``workflow_lib.darts.stop_rules``). Their code
builds the full Hessian on one mini-batch and takes the largest eigenvalue. Here:

- the parameters are the op-choice alphas (``model.op_alphas()``: normal and reduce, 2 x 14 x 8), as in
  Zela et al.; PC-DARTS's edge betas stay fixed;
- the loss is the mean loss of a FIXED subset of the search's own search-val rows (seeded, chosen once,
  no augmentation, fixed batching), so that eigenvalues of different epochs are comparable: the mean over
  its rows, i.e. the sum of per-batch mean losses weighted by batch size;
- batch normalisation runs in train mode, as in the search's own loss (the search network's BN has no
  affine parameters and uses batch statistics); every BN buffer is restored afterwards;
- Hessian-vector products are exact (autograd double backward), in fp32 with autocast off;
- the eigenvalue comes from power iteration (``dominant_eigenvalue``): a random start vector from a
  private generator (never the global RNG), iterated until the Rayleigh quotient changes by less than
  ``tol`` (relative) or ``max_iterations`` products. Power iteration finds the eigenvalue of largest
  magnitude; when that is negative, a second run on the shifted operator H - lambda I finds the largest
  algebraic eigenvalue, which is what Zela et al. track.

Nothing the search owns changes: weights, alphas, their gradients, BN buffers, the optimisers and the
global RNG are as before, so a search with the diagnostic on ends bitwise identical to one without it.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np
import torch

Vector = list[torch.Tensor]
HVP = Callable[[Vector], Vector]

HESSIAN_SUBSET_SEED = 20200  # the fixed search-val subset (Zela et al., ICLR 2020)


@dataclass(frozen=True)
class EigenEstimate:
    """The largest algebraic eigenvalue, and what finding it cost."""

    value: float
    iterations: int  # Hessian-vector products, both power iterations together
    converged: bool
    shifted: bool  # the largest-magnitude eigenvalue was negative: a second run on H - lambda I

    def to_dict(self) -> dict[str, float | int | bool]:
        return {"value": self.value, "iterations": self.iterations, "converged": self.converged,
                "shifted": self.shifted}


def _dot(a: Vector, b: Vector) -> float:
    return float(sum(torch.sum(x.double() * y.double()) for x, y in zip(a, b)))


def _norm(a: Vector) -> float:
    return math.sqrt(_dot(a, a))


def _scale(a: Vector, factor: float) -> Vector:
    return [x * factor for x in a]


def _power_iteration(operator: HVP, start: Vector, max_iterations: int, tol: float) -> tuple[float, int, bool]:
    """Rayleigh quotient of the dominant (largest-magnitude) eigenvector of a symmetric operator."""
    v = _scale(start, 1.0 / _norm(start))
    previous = None
    for iteration in range(1, max_iterations + 1):
        hv = operator(v)
        rayleigh = _dot(v, hv)  # v has unit norm
        norm = _norm(hv)
        if norm == 0.0:  # v lies in the null space: the operator is 0 along every direction tried
            return 0.0, iteration, True
        if previous is not None and abs(rayleigh - previous) <= tol * abs(rayleigh):
            return rayleigh, iteration, True
        previous = rayleigh
        v = _scale(hv, 1.0 / norm)
    return float(previous), max_iterations, False


def dominant_eigenvalue(hvp: HVP, shapes: Sequence[Sequence[int]], *, generator: torch.Generator,
                        max_iterations: int = 20, tol: float = 1e-3, dtype: torch.dtype = torch.float32,
                        device: torch.device | str = "cpu") -> EigenEstimate:
    """The largest algebraic eigenvalue of the symmetric operator ``hvp`` on tensors of ``shapes``.

    ``generator`` (a CPU ``torch.Generator``) draws the start vector; the global RNG is never used.
    Power iteration converges to the largest-MAGNITUDE eigenvalue; when it is negative, the largest algebraic
    one is found on the shifted operator H - lambda I, whose eigenvalues are all >= 0 (lambda is the most
    negative eigenvalue), with its largest one at the largest eigenvalue of H.
    """
    if max_iterations < 2:
        raise ValueError(f"power iteration needs at least 2 iterations, got {max_iterations}")

    def start() -> Vector:
        return [torch.randn(tuple(shape), generator=generator, dtype=dtype).to(device) for shape in shapes]

    magnitude, iterations, converged = _power_iteration(hvp, start(), max_iterations, tol)
    if magnitude >= 0:
        return EigenEstimate(magnitude, iterations, converged, shifted=False)

    def shifted(v: Vector) -> Vector:
        return [h - magnitude * x for h, x in zip(hvp(v), v)]

    top, more, converged_shifted = _power_iteration(shifted, start(), max_iterations, tol)
    return EigenEstimate(top + magnitude, iterations + more, converged and converged_shifted, shifted=True)


def fixed_subset(rows: np.ndarray, samples: int, batch_size: int) -> list[np.ndarray]:
    """The rows the eigenvalue is computed on: a seeded subset of ``samples`` of ``rows`` (all when fewer),
    sorted, cut into near-equal batches of at most ``batch_size`` (no batch of one: BN needs two values)."""
    rows = np.asarray(rows)
    if samples < len(rows):
        rows = np.sort(rows[np.random.default_rng(HESSIAN_SUBSET_SEED).permutation(len(rows))[:samples]])
    return [chunk for chunk in np.array_split(rows, max(1, math.ceil(len(rows) / batch_size))) if len(chunk)]


class ArchitectureHessian:
    """Exact Hessian-vector products of the mean loss of fixed batches w.r.t. ``model.op_alphas()``.

    ``batches``: ``(x, y_encoded)`` tensors on the model's device (already in the model's memory format).
    ``keep_graph``: build each batch's gradient graph once and reuse it for every product (each product is
    then one double backward per batch; memory grows with the subset); else rebuild it per product.
    Use as a context manager: entering switches BN to train mode and stops gradients to the weights;
    leaving restores the mode, the weights' ``requires_grad`` and every buffer.
    """

    def __init__(self, model: torch.nn.Module, loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
                 batches: Sequence[tuple[torch.Tensor, torch.Tensor]], keep_graph: bool = True):
        self.model = model
        self.loss_fn = loss_fn
        self.batches = list(batches)
        total = sum(int(y.shape[0]) for _, y in self.batches)
        self.weights = [int(y.shape[0]) / total for _, y in self.batches]  # the subset's mean loss
        self.alphas = list(model.op_alphas())
        self.keep_graph = keep_graph
        self._graphs: list[Vector] | None = None

    @property
    def shapes(self) -> list[tuple[int, ...]]:
        return [tuple(a.shape) for a in self.alphas]

    def __enter__(self) -> "ArchitectureHessian":
        self._training = self.model.training
        self._buffers = [b.detach().clone() for b in self.model.buffers()]
        alpha_ids = {id(a) for a in self.alphas}
        # the weights are constants here: no graph, no saved tensors for their gradients
        self._frozen = [p for p in self.model.parameters() if id(p) not in alpha_ids and p.requires_grad]
        for p in self._frozen:
            p.requires_grad_(False)
        self.model.train()
        return self

    def __exit__(self, *exc) -> None:
        self._graphs = None
        with torch.no_grad():
            for b, saved in zip(self.model.buffers(), self._buffers):
                b.copy_(saved)
        for p in self._frozen:
            p.requires_grad_(True)
        self.model.train(self._training)

    def _gradient(self, x: torch.Tensor, y: torch.Tensor) -> Vector:
        output = self.model(x)
        output = output[0] if isinstance(output, (tuple, list)) else output
        return list(torch.autograd.grad(self.loss_fn(output, y), self.alphas, create_graph=True))

    def __call__(self, vector: Vector) -> Vector:
        device_type = self.alphas[0].device.type
        with torch.autocast(device_type, enabled=False):  # exact products in fp32, also in a bf16 run
            if self.keep_graph and self._graphs is None:
                self._graphs = [self._gradient(x, y) for x, y in self.batches]
            total = [torch.zeros_like(a) for a in self.alphas]
            for k, ((x, y), weight) in enumerate(zip(self.batches, self.weights)):
                grads = self._graphs[k] if self.keep_graph else self._gradient(x, y)
                products = torch.autograd.grad(grads, self.alphas, grad_outputs=vector,
                                               retain_graph=self.keep_graph)
                for t, p in zip(total, products):
                    t.add_(p.detach(), alpha=weight)
        return total


def architecture_eigenvalue(model: torch.nn.Module, loss_fn, batches, *, seed: int, max_iterations: int,
                            tol: float, keep_graph: bool = True) -> dict[str, float | int | bool]:
    """The dominant Hessian eigenvalue of the fixed batches' mean loss w.r.t. the op alphas, with its cost:
    ``{"value", "iterations", "converged", "shifted", "seconds"}``. The start vector comes from a fresh
    generator seeded with ``seed``: the same every time, so no state has to be checkpointed."""
    started = time.perf_counter()
    generator = torch.Generator().manual_seed(int(seed))
    with ArchitectureHessian(model, loss_fn, batches, keep_graph) as hessian:
        estimate = dominant_eigenvalue(hessian, hessian.shapes, generator=generator, max_iterations=max_iterations,
                                       tol=tol, dtype=hessian.alphas[0].dtype, device=hessian.alphas[0].device)
    return {**estimate.to_dict(), "seconds": time.perf_counter() - started}
