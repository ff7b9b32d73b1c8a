import pytest
import torch
from torch.func import functional_call

from workflow_lib.darts import Architect, build_search_network
from workflow_lib.darts.architect import (classification_loss, make_weight_optimizer,
                                          make_weight_scheduler, regression_loss, search_step,
                                          weight_step)




def _tiny(out_dim=3, seed=0):
    torch.manual_seed(seed)
    m = build_search_network(2, out_dim, C=2, layers=3).double()
    x = torch.randn(4, 2, 6, 6, dtype=torch.float64)
    xv = torch.randn(4, 2, 6, 6, dtype=torch.float64)
    if out_dim == 1:
        y, yv = torch.randn(4, dtype=torch.float64), torch.randn(4, dtype=torch.float64)
    else:
        y, yv = torch.randint(0, out_dim, (4,)), torch.randint(0, out_dim, (4,))
    return m, x, y, xv, yv


def _rel_err(a, b):
    num = sum(((p - q) ** 2).sum() for p, q in zip(a, b)).sqrt()
    den = sum((q ** 2).sum() for q in b).sqrt()
    return (num / den).item()


def test_hessian_vector_product_matches_double_backward():
    m, x, y, _, _ = _tiny()
    arch = Architect(m, classification_loss, second_order=True)
    weights, alphas = list(m.weights()), list(m.alphas())
    torch.manual_seed(1)
    v = [torch.randn_like(w) for w in weights]
    before = [w.detach().clone() for w in weights]

    # r small: the tiny float64 net is very non-linear at the paper's r = 0.01 (ReLU/max-pool
    # kinks); the formula itself is what is checked here
    fd = arch.hessian_vector_product(v, x, y, r=1e-4)
    assert all(torch.equal(w, b) for w, b in zip(weights, before))  # weights restored exactly

    # exact mixed second derivative d/dalpha (v . dL/dw) by double backward
    loss = classification_loss(m(x), y)
    gw = torch.autograd.grad(loss, weights, create_graph=True)
    dot = sum((g * vi).sum() for g, vi in zip(gw, v))
    exact = torch.autograd.grad(dot, alphas)
    err = _rel_err(fd, exact)
    assert err < 1e-6, err
    # the '/ 2.*eps' precedence bug multiplies by eps^2: it would fail the check above
    eps = 1e-4 / torch.sqrt(sum((vi ** 2).sum() for vi in v)).item()
    buggy = [f * (2 * eps) * eps / 2 for f in fd]
    assert _rel_err(buggy, exact) > 0.5


@pytest.mark.parametrize("out_dim,loss_fn", [(3, classification_loss), (1, regression_loss)])
def test_unrolled_grad_matches_exact(out_dim, loss_fn):
    m, x, y, xv, yv = _tiny(out_dim)
    opt = make_weight_optimizer(m)
    weight_step(m, opt, x, y, loss_fn)  # creates momentum buffers
    arch = Architect(m, loss_fn, second_order=True, hvp_r=1e-6)  # tiny net: kinks at larger r
    xi = 0.025
    weights = dict(m.named_weights())
    names = list(weights)
    state = {k: v.detach().clone() for k, v in m.state_dict().items()}

    got = arch.unrolled_grad(x, y, xv, yv, xi, opt)
    for k, v in m.named_parameters():  # weights and alphas untouched
        assert torch.equal(v, state[k]), k

    # exact: d/dalpha L_val(w - xi (mom*buf + dL_train/dw + wd*w), alpha), the first factor
    # w' treated as constant except through dL_train/dw, i.e. the paper's Eq. 7 exactly
    m.load_state_dict(state)
    wl = [weights[n] for n in names]
    gw = torch.autograd.grad(loss_fn(m(x), y), wl, create_graph=True)
    new = {}
    for n, w, g in zip(names, wl, gw):
        buf = opt.state[w]["momentum_buffer"]
        new[n] = w.detach() - xi * (0.9 * buf + g + 3e-4 * w.detach())
    new["alpha_normal"], new["alpha_reduce"] = m.alpha_normal, m.alpha_reduce
    exact = torch.autograd.grad(loss_fn(functional_call(m, new, (xv,)), yv), list(m.alphas()))
    err = _rel_err(got, exact)
    assert err < 1e-6, err


def test_first_order_and_step():
    m, x, y, xv, yv = _tiny()
    arch = Architect(m, classification_loss)
    g = arch.first_order_grad(xv, yv)
    m.zero_grad()
    classification_loss(m(xv), yv).backward()
    assert torch.allclose(g[0], m.alpha_normal.grad) and torch.allclose(g[1], m.alpha_reduce.grad)
    a0 = m.alpha_normal.detach().clone()
    w0 = [w.detach().clone() for w in m.weights()]
    opt = make_weight_optimizer(m)
    arch.step(x, y, xv, yv, xi=0.025, weight_optimizer=opt)
    assert not torch.equal(a0, m.alpha_normal)
    assert all(torch.equal(a, b) for a, b in zip(w0, m.weights()))
    pg = arch.optimizer.param_groups[0]
    assert pg["lr"] == 3e-4 and pg["betas"] == (0.5, 0.999) and pg["weight_decay"] == 1e-3


def test_search_step_second_order_and_optimizers():
    m, x, y, xv, yv = _tiny(1)
    opt = make_weight_optimizer(m)
    pg = opt.param_groups[0]
    assert pg["lr"] == 0.025 and pg["momentum"] == 0.9 and pg["weight_decay"] == 3e-4
    assert len(pg["params"]) == len(list(m.weights()))
    sched = make_weight_scheduler(opt, epochs=4, lr_min=0.001)
    arch = Architect(m, regression_loss, second_order=True)
    a0 = m.alpha_reduce.detach().clone()
    loss, out = search_step(m, arch, opt, x, y, xv, yv)
    assert torch.isfinite(loss) and out.shape == (4, 1)
    assert not torch.equal(a0, m.alpha_reduce)
    for _ in range(4):
        sched.step()
    assert abs(opt.param_groups[0]["lr"] - 0.001) < 1e-12


def test_regularizers():
    m, x, y, xv, yv = _tiny()
    plain = Architect(m, classification_loss)
    assert plain.regularizer() is None
    l1 = Architect(m, classification_loss, l1_coef=0.1)
    ent = Architect(m, classification_loss, entropy_coef=0.1)
    with torch.no_grad():
        m.alpha_normal.copy_(torch.randn(14, 8))
    for arch in (l1, ent):
        r = arch.regularizer()
        g = torch.autograd.grad(r, list(m.alphas()))
        assert g[0].abs().sum() > 0
    # at uniform alphas the entropy is 14 * log 8 per cell type
    with torch.no_grad():
        m.alpha_normal.zero_()
        m.alpha_reduce.zero_()
    assert torch.allclose(ent.regularizer(), torch.tensor(0.1 * 2 * 14 * torch.log(torch.tensor(8.0)).item(),
                                                          dtype=torch.float64))
    g_plain = plain.first_order_grad(xv, yv)
    g_reg = l1.step(x, y, xv, yv)
    rg = torch.autograd.grad(l1.regularizer(), list(m.alphas()))
    # the step's gradient = val-loss gradient + regulariser gradient (alphas were changed by
    # the step, so recompute both at the pre-step point is not possible; check the structure)
    assert len(g_reg) == 2 and g_reg[0].shape == (14, 8) and rg[0].shape == (14, 8)
    assert g_plain[0].shape == (14, 8)


def test_architect_state_dict_roundtrip():
    m, x, y, xv, yv = _tiny()
    arch = Architect(m, classification_loss)
    arch.step(x, y, xv, yv)
    sd = arch.state_dict()
    arch2 = Architect(m, classification_loss)
    arch2.load_state_dict(sd)
    assert arch2.optimizer.state_dict()["state"].keys() == sd["optimizer"]["state"].keys()


def test_hvp_runs_in_fp32_under_bf16_autocast():
    torch.manual_seed(0)
    m = build_search_network(2, 3, C=4, layers=3)  # float32
    x, y = torch.randn(4, 2, 8, 8), torch.randint(0, 3, (4,))
    arch = Architect(m, classification_loss, second_order=True)
    v = [torch.randn_like(w) for w in m.weights()]
    dtypes = []
    hook = m.classifier.register_forward_hook(lambda mod, inp, out: dtypes.append(out.dtype))
    plain = arch.hessian_vector_product(v, x, y)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        m(x)  # autocast is really on here: the classifier runs in bf16
        inside = arch.hessian_vector_product(v, x, y)
    hook.remove()
    assert dtypes == [torch.float32, torch.float32, torch.bfloat16, torch.float32, torch.float32]
    assert all(torch.equal(a, b) for a, b in zip(plain, inside))
    # and a whole second-order step under autocast gives finite alphas
    opt = make_weight_optimizer(m)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        search_step(m, arch, opt, x, y, x, y)
    assert all(torch.isfinite(a).all() for a in m.alphas())
