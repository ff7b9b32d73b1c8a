"""One training in several processes (device.processes, issue 19), proven on CPU processes with gloo.

* the launchers' environments (torchrun, srun) and the blame of a failed process;
* every process's slice of a step: the union is the 1-process batch (also with a transform);
* a network without BatchNorm trained in 2 processes equals 1 process with the same global batch (losses,
  metrics and predictions to 1e-5), with fit(), the one training loop;
* the DARTS architect step (first and second order) in 2 processes equals 1 process (alphas averaged);
* a whole search in 2 processes (second order, Hessian eigenvalue on): the processes agree, rank 0 writes.

The processes are started from the test (tests/distributed_helpers.py); the command line's own launch
(torchrun, a killed process, resume) is tested in tests/test_distributed_cli.py.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from distributed_helpers import in_processes
from workflow_lib.darts.architect import Architect, search_step
from workflow_lib.engine import Batches, Cutout, Task, distributed, make_generator
from workflow_lib.engine.launch import Failure, blamed
from workflow_lib.training.fitting import fit
from workflow_lib.training.schedule import Schedule

RTOL = 1e-5


# -- launchers' environments --------------------------------------------------------------------------------
def test_rendezvous_of_torchrun():
    env = {"RANK": "1", "WORLD_SIZE": "4", "LOCAL_RANK": "1", "LOCAL_WORLD_SIZE": "2", "MASTER_ADDR": "node1",
           "MASTER_PORT": "29400"}
    assert distributed.rendezvous(env) == distributed.Rendezvous(1, 4, 1, 2, "node1", 29400, "torchrun")


def test_rendezvous_of_srun_tasks_and_not_of_the_batch_script():
    task = {"SLURM_JOB_ID": "1234", "SLURM_STEP_ID": "0", "SLURM_PROCID": "5", "SLURM_LOCALID": "1",
            "SLURM_NODEID": "1", "SLURM_STEP_NUM_TASKS": "8", "SLURM_STEP_TASKS_PER_NODE": "4(x2)",
            "SLURM_STEP_NODELIST": "gpu[01-02]", "MASTER_ADDR": "gpu01"}
    port = distributed.PORT_BASE + 1234 % distributed.PORT_SPAN
    assert distributed.rendezvous(task) == distributed.Rendezvous(5, 8, 1, 4, "gpu01", port, "srun")
    # the batch script has SLURM_PROCID and SLURM_NTASKS but no step: it is a launcher, not a process
    batch = {"SLURM_JOB_ID": "1234", "SLURM_PROCID": "0", "SLURM_NTASKS": "2", "SLURM_JOB_NODELIST": "gpu01"}
    assert distributed.rendezvous(batch) is None
    assert distributed.rendezvous({**task, "SLURM_STEP_NUM_TASKS": "1"}) is None  # a one-task step (a rule's)
    assert distributed.rendezvous({}) is None


def test_tasks_per_node():
    assert [distributed.tasks_on_node("4(x2),3", node) for node in range(3)] == [4, 4, 3]
    assert distributed.tasks_on_node("2", 0) == 2


def test_the_failure_to_blame():
    peer = Failure(0, 1, "RuntimeError: Connection closed by peer", 10.0)
    killed = Failure(1, -9, "killed by signal SIGKILL", 11.0)
    user = Failure(1, 2, "config key 'x': bad", 12.0)
    stopped = Failure(0, -15, "killed by signal SIGTERM", 9.0)  # how torchrun ends the others
    assert blamed([peer, killed]) is killed
    assert blamed([stopped, killed]) is killed
    assert blamed([peer, user, killed]) is user
    assert blamed([Failure(3, 1, "b", 5.0), Failure(2, 1, "a", 4.0)]).rank == 2


# -- the slices of a step -----------------------------------------------------------------------------------
def _steps(n_rows: int, batch: int, world: distributed.World, transform=None) -> list[tuple]:
    x = torch.arange(n_rows, dtype=torch.float32).view(n_rows, 1, 1, 1).expand(n_rows, 1, 4, 4).contiguous()
    y = torch.arange(n_rows)
    return list(Batches(x, y, batch, generator=make_generator(3), transform=transform, world=world))


@pytest.mark.parametrize("n_rows, batch", [(40, 8), (43, 8), (41, 8)])
def test_the_slices_of_a_step_are_the_one_process_batch(n_rows, batch):
    one = _steps(n_rows, batch, distributed.SINGLE)
    ranks = [_steps(n_rows, batch, distributed.World(rank, 2, rank, 2, "gloo")) for rank in range(2)]
    assert len(ranks[0]) == len(ranks[1])
    for step, (xb, yb) in enumerate(one[:len(ranks[0])]):
        y_union = torch.cat([ranks[r][step][1] for r in range(2)])
        kept = len(yb) // 2 * 2  # a short last step keeps len // 2 rows per process
        assert torch.equal(y_union, yb[:kept])
        assert torch.equal(ranks[0][step][1], yb[:kept // 2])
    if n_rows % batch == 1:  # a last step of one row cannot feed two processes: skipped
        assert len(ranks[0]) == len(one) - 1
    else:
        assert len(ranks[0]) == len(one)


def test_a_transform_draws_for_the_whole_step():
    one = _steps(32, 8, distributed.SINGLE, Cutout(2))
    ranks = [_steps(32, 8, distributed.World(rank, 2, rank, 2, "gloo"), Cutout(2)) for rank in range(2)]
    for step, (xb, _) in enumerate(one):
        assert torch.equal(torch.cat([ranks[0][step][0], ranks[1][step][0]]), xb)


# -- a network without BatchNorm: 2 processes = 1 process -------------------------------------------------
class NoBatchNorm(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 6, 3, padding=1)
        self.conv2 = nn.Conv2d(6, 8, 3, stride=2, padding=1)
        self.head = nn.Linear(8, 1)

    def forward(self, x):
        x = F.relu(self.conv2(F.relu(self.conv1(x))))
        return self.head(x.mean(dim=(2, 3)))


def _data():
    from test_training import tiny_data

    return tiny_data("regression", n=80)  # 64 training rows, 16 test rows


def _fit(rank, schedule):
    torch.manual_seed(123)
    result = fit(NoBatchNorm, _data(), schedule, _data().train_index, _data().test_index, None, None, seed=7,
                 name="no-bn")
    params = {name: p.detach().clone() for name, p in result.model.named_parameters()}
    return result.history, result.evaluation, result.predictions, params


@pytest.mark.parametrize("batch", [8, 12])  # 12: a short last step of 4 rows, 2 per process
def test_two_processes_match_one_without_batchnorm(batch):
    schedule = Schedule(epochs=3, batch_size=batch, lr=0.05, lr_min=0.001, weight_decay=3e-4, grad_clip=5.0)
    one = _fit(0, schedule)
    two = in_processes(_fit, 2, schedule)
    for rank in range(2):
        history, evaluation, predictions, params = two[rank]
        for row_one, row_two in zip(one[0], history, strict=True):
            for key in ("train_loss", "train_metric", "test_loss", "test_metric", "lr", "steps", "samples"):
                assert row_two[key] == pytest.approx(row_one[key], rel=RTOL, abs=1e-7), (rank, key)
        assert evaluation == pytest.approx(one[1], rel=RTOL)
        np.testing.assert_allclose(predictions, one[2], rtol=RTOL, atol=1e-6)
        for name, value in params.items():
            torch.testing.assert_close(value, one[3][name], rtol=RTOL, atol=1e-6)


def _train_cell(rank, tmp, auxiliary_weight):
    from test_training import TRAIN, stage

    from workflow_lib.training import run_training

    settings = {**TRAIN, "auxiliary_weight": auxiliary_weight}
    return run_training(stage(settings), _data(), "DARTS_V2", tmp / "out", tmp / "ckpt", seed=0)["test"]


@pytest.mark.parametrize("auxiliary_weight", [0.0, 0.4])
def test_cell_with_auxiliary_head_in_two_processes(tmp_path, auxiliary_weight):
    """The DARTS evaluation network (BatchNorm, drop path, auxiliary head; a head without loss weight gets no
    gradient, which DDP must not wait for) trains in 2 processes; both get the same test metrics."""
    tests = in_processes(_train_cell, 2, tmp_path, auxiliary_weight)
    assert tests[0] == tests[1]
    assert json.loads((tmp_path / "out" / "metrics.json").read_text())["test"] == tests[0]


# -- the architect: 2 processes = 1 process ----------------------------------------------------------------
class ToySupernet(nn.Module):
    """A supernet without BatchNorm: softmax(alpha)-weighted ops on each of two edges."""

    ALPHA_NAMES = ("alpha",)

    def __init__(self):
        super().__init__()
        self.stem = nn.Linear(16, 8)
        self.ops = nn.ModuleList([nn.Linear(8, 8), nn.Sequential(nn.Linear(8, 8), nn.Tanh()), nn.Identity()])
        self.head = nn.Linear(8, 1)
        self.alpha = nn.Parameter(1e-3 * torch.randn(3))

    def weights(self):
        return [p for name, p in self.named_parameters() if name != "alpha"]

    def alphas(self):
        return [self.alpha]

    def forward(self, x):
        h = F.relu(self.stem(x.flatten(1)))
        w = F.softmax(self.alpha, dim=-1)
        return self.head(sum(w[k] * op(h) for k, op in enumerate(self.ops)))


def _search_steps(rank, order):
    torch.manual_seed(5)
    x, y = torch.randn(48, 1, 4, 4), torch.randn(48)
    model = ToySupernet()
    net = distributed.data_parallel(model, ignore=["alpha"])
    optimizer = torch.optim.SGD(model.weights(), lr=0.05, momentum=0.9, weight_decay=3e-4)
    architect = Architect(model, F.mse_loss, second_order=order == "second", lr=0.01,
                          reduce=distributed.average if distributed.current().distributed else None)
    train = Batches(x, y, 8, generator=make_generator(1), index=np.arange(24))
    val = Batches(x, y, 8, generator=make_generator(2), index=np.arange(24, 48))
    losses = []
    for _ in range(2):
        for (xt, yt), (xv, yv) in zip(train, val):
            loss, _ = search_step(model, architect, optimizer, xt, yt.view(-1, 1), xv, yv.view(-1, 1), forward=net)
            losses.append(distributed.average([loss])[0].item())
    return losses, model.alpha.detach().clone(), [p.detach().clone() for p in model.weights()]


@pytest.mark.parametrize("order", ["first", "second"])
def test_architect_in_two_processes_matches_one(order):
    losses, alpha, weights = _search_steps(0, order)
    for rank_losses, rank_alpha, rank_weights in in_processes(_search_steps, 2, order):
        assert rank_losses == pytest.approx(losses, rel=RTOL)
        torch.testing.assert_close(rank_alpha, alpha, rtol=RTOL, atol=1e-7)
        for a, b in zip(rank_weights, weights):
            torch.testing.assert_close(a, b, rtol=RTOL, atol=1e-6)
    assert not torch.equal(alpha, ToySupernet().alpha)  # the alphas moved


# -- a whole search in 2 processes --------------------------------------------------------------------------
def _search(rank, out_dir, method):
    from test_darts_search_run import tiny_data, tiny_stage

    from workflow_lib.darts.search_run import run_search

    extra = {"pc_k": 2} if method == "pc_darts" else {}
    stage = tiny_stage("second", epochs=2, method=method, diagnostics={"hessian_every": 1, "hessian_max_iterations": 3},
                       **extra)
    run_search(stage, tiny_data("classification"), out_dir / "out", out_dir / "ckpt", seed=0)
    torch.distributed.barrier()  # rank 0 has written everything
    state = torch.load(out_dir / "ckpt" / "ckpt.pt", weights_only=True)
    return state["history"][-1]["hessian_eigenvalue"], sorted(state), len(state["rng_ranks"])


@pytest.mark.parametrize("method", ["darts", "pc_darts"])
def test_search_in_two_processes(tmp_path, method):
    results = in_processes(_search, 2, tmp_path, method)
    assert results[0] == results[1]
    eigenvalue, _, ranks = results[0]
    assert eigenvalue is not None and ranks == 2
    history = json.loads((tmp_path / "out" / "history.json").read_text())
    assert [row["epoch"] for row in history["epochs"]] == [1, 2]
    info = json.loads((tmp_path / "out" / "run_info.json").read_text())
    assert info["world_size"] == 2 and info["backend"] == "gloo"
    assert not list((tmp_path / "out").glob(".*"))  # no temporary files left by a second writer
