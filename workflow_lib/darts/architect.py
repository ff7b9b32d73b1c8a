"""DARTS architecture step (first and second order) and the weight step.

Second order (the paper's Eq. 7-8): with the weight optimiser's learning rate ``xi``,

    w' = w - xi * (momentum * buf + dL_train/dw + wd * w)
    dalpha = dL_val(w', alpha)/dalpha - xi * H v,     v = dL_val(w', alpha)/dw'
    H v  ~= (dL_train(w + eps v)/dalpha - dL_train(w - eps v)/dalpha) / (2 * eps),
    eps = 0.01 / ||v||

The finite-difference H v always runs in fp32 with autocast disabled (also inside a bf16
autocast region), since its O(eps) difference is below bf16 resolution.

First order: dalpha = dL_val(w, alpha)/dalpha.

The unrolled weights are written into the model in place (no model copy) and the
original weights are restored exactly afterwards; batch-norm running statistics
touched by the forward pass at w' are restored as well (the original discards its
unrolled copy).  Gradients are taken only with respect to what is needed
(``torch.autograd.grad`` with explicit inputs), so e.g. weight-gradient kernels are not
run when only alpha gradients are wanted.

Several processes (data parallel, ``workflow_lib.engine.distributed``): each process computes on its slice
of the batches, and ``Architect(reduce=...)`` averages over the processes every gradient it takes with
``torch.autograd.grad`` (which DistributedDataParallel never sees): the alpha gradient (first order); and in
second order dL_train/dw (so every process unrolls to the same w'), v and dL_val/dalpha at w', and the
Hessian-vector product. With equal slices these are the gradients of the global batch's mean loss, so the
step equals one process's. ``weight_step(forward=...)`` runs the weight step's forward through the DDP
wrapper, which averages the weight gradients.
"""
from __future__ import annotations

import contextlib
from typing import Callable, Dict, List, Optional, Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F

from .ops import PRIMITIVES

LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
NONE_INDEX = PRIMITIVES.index("none")


def classification_loss(output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Cross-entropy on logits (N, K) and class ids (N,)."""
    return F.cross_entropy(output, target)


def regression_loss(output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """MSE on (standardised) targets; output (N, 1) or (N,), target (N,) or (N, 1)."""
    return F.mse_loss(output.reshape(target.shape), target)


def _full(t: torch.Tensor) -> torch.Tensor:
    """fp16/bf16 tensors as fp32; fp32/fp64 unchanged."""
    return t.float() if t.is_floating_point() and t.element_size() < 4 else t


def _model_output(out):
    """Search networks return a tensor; tolerate (logits, aux) tuples too."""
    return out[0] if isinstance(out, (tuple, list)) else out


def make_weight_optimizer(model, lr: float = 0.025, momentum: float = 0.9,
                          weight_decay: float = 3e-4) -> torch.optim.SGD:
    return torch.optim.SGD(list(model.weights()), lr=lr, momentum=momentum, weight_decay=weight_decay)


def make_weight_scheduler(optimizer, epochs: int, lr_min: float = 0.001):
    """Cosine annealing from the optimiser's lr to ``lr_min`` over ``epochs`` (step per epoch)."""
    return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, float(epochs), eta_min=lr_min)


@contextlib.contextmanager
def _constant(params: Sequence[torch.Tensor]):
    """``params`` do not require grad inside the block (restored after)."""
    flags = [p.requires_grad for p in params]
    try:
        for p in params:
            p.requires_grad_(False)
        yield
    finally:
        for p, flag in zip(params, flags):
            p.requires_grad_(flag)


def weight_step(model, optimizer: torch.optim.Optimizer, x: torch.Tensor, y: torch.Tensor,
                loss_fn: LossFn, grad_clip: Optional[float] = 5.0, forward=None):
    """One SGD step on the network weights (alphas fixed); returns (loss, output) detached.
    ``forward``: the module to call (default ``model``; its DDP wrapper with several processes)."""
    weights = list(model.weights())
    optimizer.zero_grad(set_to_none=True)
    # the alphas are constants of this step: with them not requiring grad, autograd does not keep
    # each op's output y_k for d(w_k y_k)/dw_k (memory); the weights' gradients are the same numbers
    with _constant(list(model.alphas()) if hasattr(model, "alphas") else []):
        out = _model_output((forward or model)(x))
        loss = loss_fn(out, y)
        loss.backward(inputs=weights)
    if grad_clip is not None and grad_clip > 0:
        nn.utils.clip_grad_norm_(weights, grad_clip)
    optimizer.step()
    return loss.detach(), out.detach()


class Architect:
    """Updates the architecture parameters ``model.alphas()`` of a search network.

    Args:
        model: a :class:`SearchNetwork` (``weights()`` / ``alphas()``).
        loss_fn: ``loss_fn(output, target) -> scalar`` (cross-entropy, or MSE on
            standardised targets: see :func:`classification_loss`, :func:`regression_loss`).
        second_order: unrolled (paper's second-order) approximation, else first order.
        lr, betas, weight_decay: the alpha Adam optimiser (paper: 3e-4, (0.5, 0.999), 1e-3).
        w_momentum, w_weight_decay: the weight optimiser's momentum and weight decay used in
            the unrolled step (paper: 0.9, 3e-4).
        l1_coef: coefficient of an L1 penalty on the softmax weights of the non-``none`` ops
            (off by default).  ``none`` is excluded because each edge's softmax sums to 1,
            so an L1 over all eight weights is a constant with zero gradient.
        entropy_coef: coefficient of the summed per-edge entropy of the softmax weights
            (off by default; positive values push edges towards one op).
        hvp_r: the finite-difference scale r (eps = r / ||v||), 0.01 in the paper code.
        reduce: averages a list of gradients over the processes of a data-parallel search
            (``engine.distributed.average``); None for one process.
    """

    def __init__(self, model, loss_fn: LossFn, second_order: bool = False, lr: float = 3e-4,
                 betas=(0.5, 0.999), weight_decay: float = 1e-3, w_momentum: float = 0.9,
                 w_weight_decay: float = 3e-4, l1_coef: float = 0.0, entropy_coef: float = 0.0,
                 hvp_r: float = 1e-2, reduce: Optional[Callable[[List[torch.Tensor]], List[torch.Tensor]]] = None):
        self.model = model
        self.reduce = reduce if reduce is not None else list
        self.loss_fn = loss_fn
        self.second_order = second_order
        self.w_momentum = w_momentum
        self.w_weight_decay = w_weight_decay
        self.l1_coef = l1_coef
        self.entropy_coef = entropy_coef
        self.hvp_r = hvp_r
        self.optimizer = torch.optim.Adam(list(model.alphas()), lr=lr, betas=tuple(betas),
                                          weight_decay=weight_decay)

    # -- checkpointing ----------------------------------------------------------------------
    def state_dict(self) -> Dict:
        return {"optimizer": self.optimizer.state_dict()}

    def load_state_dict(self, state: Dict) -> None:
        self.optimizer.load_state_dict(state["optimizer"])

    # -- pieces -----------------------------------------------------------------------------
    def _loss(self, x, y):
        return self.loss_fn(_model_output(self.model(x)), y)

    def regularizer(self) -> Optional[torch.Tensor]:
        """The optional alpha penalty (None when both coefficients are 0)."""
        if not self.l1_coef and not self.entropy_coef:
            return None
        total = 0.0
        # only the (edges, ops) op-choice parameters (PC-DARTS's edge betas are not ops)
        op_alphas = getattr(self.model, "op_alphas", self.model.alphas)
        for a in op_alphas():
            p = F.softmax(a, dim=-1)
            if self.l1_coef:
                keep = [k for k in range(p.shape[-1]) if k != NONE_INDEX]
                total = total + self.l1_coef * p[:, keep].abs().sum()
            if self.entropy_coef:
                ent = -(p * F.log_softmax(a, dim=-1)).sum(dim=-1)
                total = total + self.entropy_coef * ent.sum()
        return total

    def first_order_grad(self, x_val, y_val) -> List[torch.Tensor]:
        alphas = list(self.model.alphas())
        loss = self._loss(x_val, y_val)
        return self.reduce(list(torch.autograd.grad(loss, alphas)))

    @torch.no_grad()
    def _set_weights(self, weights: Sequence[torch.Tensor], values: Sequence[torch.Tensor]):
        torch._foreach_copy_(list(weights), list(values))

    def hessian_vector_product(self, vector: Sequence[torch.Tensor], x_train, y_train,
                               r: Optional[float] = None) -> List[torch.Tensor]:
        """Central finite difference of grad_alpha L_train along the weight direction
        ``vector``: (g(w + eps v) - g(w - eps v)) / (2 eps), eps = r / ||v||.
        The model's weights are restored exactly afterwards."""
        r = self.hvp_r if r is None else r
        weights = list(self.model.weights())
        alphas = list(self.model.alphas())
        vector = [_full(v) for v in vector]
        with torch.no_grad():
            norm = torch.linalg.vector_norm(torch.stack(torch._foreach_norm(vector)))
            eps = r / norm.item()
            backup = [w.detach().clone() for w in weights]
            torch._foreach_add_(weights, vector, alpha=eps)
        # fp32 with autocast off, even inside a bf16 autocast region: the two gradients differ
        # by O(eps) = O(0.01/||v||), far below bf16's resolution (8-bit mantissa), so in bf16
        # the difference quotient would be rounding noise
        with torch.autocast(weights[0].device.type, enabled=False):
            g_plus = torch.autograd.grad(self._loss(_full(x_train), y_train), alphas)
            with torch.no_grad():
                torch._foreach_copy_(weights, backup)
                torch._foreach_add_(weights, vector, alpha=-eps)
            g_minus = torch.autograd.grad(self._loss(_full(x_train), y_train), alphas)
        self._set_weights(weights, backup)
        return [(gp - gm) / (2.0 * eps) for gp, gm in zip(g_plus, g_minus)]

    def unrolled_grad(self, x_train, y_train, x_val, y_val, xi: float,
                      weight_optimizer: Optional[torch.optim.Optimizer]) -> List[torch.Tensor]:
        """Second-order alpha gradient (without regulariser); model left unchanged."""
        model = self.model
        weights = list(model.weights())
        alphas = list(model.alphas())
        # dL_train/dw at the current weights
        g_train = self.reduce(list(torch.autograd.grad(self._loss(x_train, y_train), weights)))
        with torch.no_grad():
            backup = [w.detach().clone() for w in weights]
            # d = momentum * buf + dL/dw + wd * w
            d = list(torch._foreach_add(g_train, weights, alpha=self.w_weight_decay))
            if weight_optimizer is not None:
                for k, w in enumerate(weights):
                    buf = weight_optimizer.state.get(w, {}).get("momentum_buffer")
                    if buf is not None:
                        d[k].add_(buf, alpha=self.w_momentum)
            torch._foreach_add_(weights, d, alpha=-xi)  # w' (in place)
            del d, g_train
            buffers = [b.detach().clone() for b in model.buffers()]
        # validation loss at w': grads wrt w' (the vector v) and alpha together
        grads = self.reduce(list(torch.autograd.grad(self._loss(x_val, y_val), weights + alphas)))
        v, dalpha = list(grads[:len(weights)]), list(grads[len(weights):])
        with torch.no_grad():
            torch._foreach_copy_(weights, backup)
            for b, saved in zip(model.buffers(), buffers):
                b.copy_(saved)
        del backup, buffers
        hvp = self.reduce(self.hessian_vector_product(v, x_train, y_train))
        return [da - xi * h for da, h in zip(dalpha, hvp)]

    # -- the step ---------------------------------------------------------------------------
    def step(self, x_train, y_train, x_val, y_val, xi: float = 0.0,
             weight_optimizer: Optional[torch.optim.Optimizer] = None) -> List[torch.Tensor]:
        """One Adam step on the alphas.  ``xi``: the weight optimiser's current learning rate
        (used by second order only).  Returns the alpha gradients used (regulariser incl.)."""
        alphas = list(self.model.alphas())
        if self.second_order:
            grads = self.unrolled_grad(x_train, y_train, x_val, y_val, xi, weight_optimizer)
        else:
            grads = self.first_order_grad(x_val, y_val)
        reg = self.regularizer()
        if reg is not None:
            reg_grads = torch.autograd.grad(reg, alphas, allow_unused=True)
            grads = [g if rg is None else g + rg for g, rg in zip(grads, reg_grads)]
        self.optimizer.zero_grad(set_to_none=True)
        for a, g in zip(alphas, grads):
            a.grad = g.detach()
        self.optimizer.step()
        return grads


def search_step(model, architect: Architect, weight_optimizer, x_train, y_train, x_val, y_val,
                grad_clip: Optional[float] = 5.0, forward=None):
    """One DARTS search step: architecture step on (train, val), then weight step on train
    (``forward``: see :func:`weight_step`). Returns (train loss, train output) detached."""
    lr = weight_optimizer.param_groups[0]["lr"]
    architect.step(x_train, y_train, x_val, y_val, xi=lr, weight_optimizer=weight_optimizer)
    return weight_step(model, weight_optimizer, x_train, y_train, architect.loss_fn, grad_clip, forward)
