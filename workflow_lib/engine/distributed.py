"""One training in several processes: ``torch.distributed`` with ``DistributedDataParallel`` (DDP).

``device.processes`` (config) is the number of processes of one training job: one per GPU with the NCCL
backend, or CPU processes with gloo. They are started by ``torchrun`` or ``srun`` (``engine.launch``; a user
may also start them with either directly) and find each other here, from the launcher's environment:

- torchrun (``python -m torch.distributed.run``): ``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``,
  ``LOCAL_WORLD_SIZE``, ``MASTER_ADDR``, ``MASTER_PORT``;
- srun (a task of a step of more than one task): ``SLURM_PROCID``, ``SLURM_STEP_NUM_TASKS``,
  ``SLURM_LOCALID``, ``SLURM_STEP_TASKS_PER_NODE``; ``MASTER_ADDR`` is the first host of the step's node
  list (``scontrol show hostnames``), ``MASTER_PORT`` is derived from the job id (both unless set).

What the engine does with the world (rank r of P), so that a P-process training is the 1-process training
with the same global batch:

- ``batch_size`` stays the global batch: ``Batches`` draws the same permutation in every process and rank r
  takes the r-th of P equal slices of each step's rows (``shard``);
- gradients are averaged over the processes (DDP for the weights, ``average`` for what DDP cannot see: the
  DARTS architect's ``torch.autograd.grad`` on the alphas), so every process takes the same optimiser step;
- BatchNorm: on CUDA every BatchNorm becomes a ``SyncBatchNorm`` (statistics over the global batch, as in one
  process). torch's SyncBatchNorm runs on GPUs only, so on the CPU each process normalises with its own
  slice's statistics (DDP's default) and the running statistics are rank 0's (``sync_buffers``);
- evaluation is sharded over the processes and the outputs gathered (``gather_rows``): every process gets
  the same metrics;
- only rank 0 writes files (``workflow_lib.io`` writers do nothing elsewhere) and logs epochs.
"""

from __future__ import annotations

import datetime
import os
import re
import subprocess
from dataclasses import dataclass
from typing import Any, Sequence

import torch
import torch.nn as nn

from workflow_lib.errors import UserError

LAUNCHER_ENV = "WORKFLOW_LIB_LAUNCHER"  # set by engine.launch for its processes: the launcher holds the step lock
PORT_BASE, PORT_SPAN = 29500, 20000  # MASTER_PORT under srun: PORT_BASE + job id % PORT_SPAN
TIMEOUT = datetime.timedelta(hours=2)  # a collective waits this long for a slow rank (e.g. rank 0 writing)


class DistributedError(UserError, RuntimeError):
    """The processes of one training cannot be started or do not match ``device.processes``."""


@dataclass(frozen=True)
class World:
    """This process's place in the training: ``rank`` of ``size``; ``local_rank`` of ``local_size`` on its node."""

    rank: int = 0
    size: int = 1
    local_rank: int = 0
    local_size: int = 1
    backend: str = "none"  # nccl | gloo | none (one process)

    @property
    def main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.size > 1

    def describe(self) -> dict[str, Any]:
        """What run_info.json records."""
        return {"world_size": self.size, "backend": self.backend}


SINGLE = World()
_world = SINGLE


def current() -> World:
    """The world of this process (``SINGLE`` unless ``init`` ran)."""
    return _world


# -- the launcher's environment -------------------------------------------------------------------
@dataclass(frozen=True)
class Rendezvous:
    rank: int
    size: int
    local_rank: int
    local_size: int
    master_addr: str
    master_port: int
    launcher: str  # torchrun | srun


def tasks_on_node(tasks_per_node: str, node: int) -> int:
    """Slurm's ``SLURM_STEP_TASKS_PER_NODE`` (e.g. ``4(x2),3``) for node index ``node``."""
    counts: list[int] = []
    for part in tasks_per_node.split(","):
        match = re.fullmatch(r"(\d+)(?:\(x(\d+)\))?", part.strip())
        if match:
            counts += [int(match.group(1))] * int(match.group(2) or 1)
    return counts[node] if node < len(counts) else 1


def first_host(nodelist: str) -> str:
    """The first host of a Slurm node list (``scontrol show hostnames``)."""
    try:
        out = subprocess.run(["scontrol", "show", "hostnames", nodelist], capture_output=True, text=True,
                             timeout=60, check=True).stdout.split()
    except (OSError, subprocess.SubprocessError) as error:
        raise DistributedError(f"cannot expand the Slurm node list {nodelist!r} with scontrol ({error}); set "
                               "MASTER_ADDR to the first node's host name") from None
    if not out:
        raise DistributedError(f"scontrol show hostnames {nodelist!r} printed no host; set MASTER_ADDR")
    return out[0]


def rendezvous(env: dict[str, str] | None = None) -> Rendezvous | None:
    """Where this process stands when a launcher started several (None: it is a single process)."""
    env = dict(os.environ if env is None else env)
    if "RANK" in env and "WORLD_SIZE" in env and "MASTER_ADDR" in env:  # torchrun
        return Rendezvous(int(env["RANK"]), int(env["WORLD_SIZE"]), int(env.get("LOCAL_RANK", 0)),
                          int(env.get("LOCAL_WORLD_SIZE", env["WORLD_SIZE"])), env["MASTER_ADDR"],
                          int(env["MASTER_PORT"]), "torchrun")
    size = int(env.get("SLURM_STEP_NUM_TASKS") or 1)
    if "SLURM_STEP_ID" in env and "SLURM_PROCID" in env and size > 1:  # one task of an srun step
        nodes = env.get("SLURM_STEP_NODELIST") or env.get("SLURM_JOB_NODELIST", "")
        addr = env.get("MASTER_ADDR") or first_host(nodes)
        port = int(env.get("MASTER_PORT") or PORT_BASE + int(env.get("SLURM_JOB_ID", "0")) % PORT_SPAN)
        local_size = tasks_on_node(env.get("SLURM_STEP_TASKS_PER_NODE", str(size)), int(env.get("SLURM_NODEID", 0)))
        return Rendezvous(int(env["SLURM_PROCID"]), size, int(env.get("SLURM_LOCALID", 0)), local_size, addr, port,
                          "srun")
    return None


def init(rdzv: Rendezvous, device_type: str, processes: int, allow_cpu_fallback: bool = False) -> World:
    """Join the process group of ``rdzv`` (gloo on the CPU, NCCL with one GPU per process)."""
    global _world
    if rdzv.size != processes:
        raise DistributedError(f"device.processes is {processes} but {rdzv.launcher} started {rdzv.size} processes; "
                               f"start {processes} (torchrun --nproc_per_node {processes} / srun --ntasks {processes})")
    cuda = device_type == "cuda" and torch.cuda.is_available()
    if device_type == "cuda" and not cuda and not allow_cpu_fallback:
        raise DistributedError("device.type is 'cuda' but no CUDA GPU is visible to this process")
    if cuda:
        if rdzv.local_rank >= torch.cuda.device_count():
            raise DistributedError(f"process {rdzv.rank} is local rank {rdzv.local_rank} on its node but only "
                                   f"{torch.cuda.device_count()} GPU(s) are visible: device.processes needs one GPU "
                                   "per process")
        torch.cuda.set_device(rdzv.local_rank)
    backend = "nccl" if cuda else "gloo"
    torch.distributed.init_process_group(backend, init_method=f"tcp://{rdzv.master_addr}:{rdzv.master_port}",
                                         rank=rdzv.rank, world_size=rdzv.size, timeout=TIMEOUT)
    _world = World(rdzv.rank, rdzv.size, rdzv.local_rank, rdzv.local_size, backend)
    from workflow_lib import io

    io.set_writer(_world.main)
    return _world


def shutdown() -> None:
    global _world
    if torch.distributed.is_initialized():
        torch.distributed.destroy_process_group()
    _world = SINGLE
    from workflow_lib import io

    io.set_writer(True)


# -- collectives ------------------------------------------------------------------------------------
def _comm_device(world: World) -> torch.device:
    return torch.device("cuda", torch.cuda.current_device()) if world.backend == "nccl" else torch.device("cpu")


def average(tensors: Sequence[torch.Tensor], world: World | None = None) -> list[torch.Tensor]:
    """The element-wise mean over the processes of each tensor (one all_reduce of them all, flattened)."""
    world = world or current()
    tensors = list(tensors)
    if not world.distributed or not tensors:
        return tensors
    dtype = tensors[0].dtype if all(t.dtype == tensors[0].dtype for t in tensors) else torch.float32
    flat = torch.cat([t.detach().reshape(-1).to(dtype) for t in tensors])
    torch.distributed.all_reduce(flat)
    flat /= world.size
    out, start = [], 0
    for t in tensors:
        out.append(flat[start:start + t.numel()].view_as(t).to(t.dtype))
        start += t.numel()
    return out


def sum_values(values: Sequence[float], world: World | None = None) -> list[float]:
    """Python numbers summed over the processes (in float64)."""
    world = world or current()
    if not world.distributed:
        return [float(v) for v in values]
    tensor = torch.tensor([float(v) for v in values], dtype=torch.float64, device=_comm_device(world))
    torch.distributed.all_reduce(tensor)
    return tensor.cpu().tolist()


def gather_equal(tensor: torch.Tensor, world: World | None = None) -> torch.Tensor:
    """Every process's tensor of the same shape, concatenated along dim 0 in rank order."""
    world = world or current()
    if not world.distributed:
        return tensor
    device = _comm_device(world)
    local = tensor.detach().to(device).contiguous()
    parts = [torch.empty_like(local) for _ in range(world.size)]
    torch.distributed.all_gather(parts, local)
    return torch.cat(parts).to(tensor.device)


def gather_rows(tensor: torch.Tensor, counts: Sequence[int], world: World | None = None) -> torch.Tensor:
    """Rank r holds ``counts[r]`` rows; all rows in rank order, in every process (padded all_gather)."""
    world = world or current()
    if not world.distributed:
        return tensor
    longest = max(counts)
    padded = tensor.new_zeros((longest, *tensor.shape[1:]))
    padded[:tensor.shape[0]] = tensor
    gathered = gather_equal(padded, world)
    return torch.cat([gathered[r * longest:r * longest + n] for r, n in enumerate(counts)])


def broadcast_object(value: Any, world: World | None = None) -> Any:
    """Rank 0's ``value`` in every process."""
    world = world or current()
    if not world.distributed:
        return value
    box = [value]
    torch.distributed.broadcast_object_list(box, src=0, device=_comm_device(world))
    return box[0]


def gather_objects(value: Any, world: World | None = None) -> list[Any]:
    """Every process's ``value``, in rank order (in every process)."""
    world = world or current()
    if not world.distributed:
        return [value]
    out: list[Any] = [None] * world.size
    torch.distributed.all_gather_object(out, value)
    return out


# -- models -------------------------------------------------------------------------------------------
def shard(rows: torch.Tensor, world: World | None = None) -> torch.Tensor:
    """Rank r's slice of one step's rows: the r-th of ``size`` equal slices (len // size rows each; the
    len % size last rows, possible only in an epoch's last, short step, are left out everywhere)."""
    world = world or current()
    if not world.distributed:
        return rows
    per_rank = rows.numel() // world.size
    return rows[world.rank * per_rank:(world.rank + 1) * per_rank]


def sync_batchnorm(model: nn.Module, world: World | None = None) -> nn.Module:
    """SyncBatchNorm for every BatchNorm on CUDA (global-batch statistics); unchanged on the CPU, where torch
    has no SyncBatchNorm (each process normalises its slice)."""
    world = world or current()
    if world.backend != "nccl":
        return model
    return nn.SyncBatchNorm.convert_sync_batchnorm(model)


def has_sync_batchnorm(model: nn.Module) -> bool:
    return any(isinstance(m, nn.SyncBatchNorm) for m in model.modules())


def data_parallel(model: nn.Module, world: World | None = None, ignore: Sequence[str] = ()) -> nn.Module:
    """``model`` in DistributedDataParallel (itself when single-process). ``ignore``: names of parameters DDP
    leaves alone (the DARTS alphas: their gradients come from ``torch.autograd.grad``, see ``average``; an
    auxiliary head without loss weight, which gets no gradient)."""
    world = world or current()
    if not world.distributed:
        return model
    if ignore:  # torch names a top-level parameter "name" in some places and ".name" in others: give both
        names = [*ignore, *(f".{name}" for name in ignore if "." not in name)]
        nn.parallel.DistributedDataParallel._set_params_and_buffers_to_ignore_for_model(model, names)
    cuda = world.backend == "nccl"
    return nn.parallel.DistributedDataParallel(
        model, device_ids=[world.local_rank] if cuda else None,
        # SyncBatchNorm keeps the buffers equal everywhere; plain BN (CPU) takes rank 0's at every forward
        forward_sync_buffers=not has_sync_batchnorm(model))


@torch.no_grad()
def sync_buffers(model: nn.Module, world: World | None = None) -> None:
    """Rank 0's buffers (BatchNorm running statistics) in every process, e.g. before evaluating or saving."""
    world = world or current()
    if not world.distributed:
        return
    for buffer in model.buffers():
        torch.distributed.broadcast(buffer.data, src=0)


def seed_rank(seed: int, world: World | None = None) -> None:
    """Rank r > 0 gets its own torch random stream (drop-path masks of its rows); rank 0 keeps the stream of a
    single process. Called after the model is built, so every process starts from the same weights."""
    world = world or current()
    if world.distributed and world.rank > 0:
        torch.manual_seed(int(seed) * 1_000_003 + world.rank)
