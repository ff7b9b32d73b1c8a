"""ONE training engine for the DARTS search, final training and the CNN baselines.

See docs/DESIGN.md ("Engine contract") and each module's docstring:

- device:  resolve_device, DeviceUnavailableError, set_threads, autocast, autocast_factory, to_channels_last
- seeding: seed_everything, rng_state, set_rng_state
- task:    Task (regression | classification)
- batches: Batches, Cutout, make_generator
- loop:    EpochLoop
- steps:   train_epoch, evaluate, predict, split_output, cosine_lr, set_lr
- distributed: World, current, rendezvous, init, shard, average, data_parallel, sync_batchnorm, ... (one
  training in several processes, device.processes); launch: starting them (torchrun, srun)
"""

from workflow_lib.engine.batches import Batches, Cutout, make_generator
from workflow_lib.engine.device import (
    DeviceUnavailableError,
    autocast,
    autocast_factory,
    device_label,
    resolve_device,
    set_threads,
    to_channels_last,
)
from workflow_lib.engine.loop import EpochLoop, fingerprint_of
from workflow_lib.engine.seeding import rng_state, seed_everything, set_rng_state
from workflow_lib.engine.steps import cosine_lr, evaluate, predict, set_lr, split_output, train_epoch
from workflow_lib.engine.task import Task

__all__ = [
    "Batches",
    "Cutout",
    "DeviceUnavailableError",
    "EpochLoop",
    "Task",
    "autocast",
    "autocast_factory",
    "cosine_lr",
    "device_label",
    "evaluate",
    "fingerprint_of",
    "make_generator",
    "predict",
    "resolve_device",
    "rng_state",
    "seed_everything",
    "set_lr",
    "set_rng_state",
    "set_threads",
    "split_output",
    "to_channels_last",
    "train_epoch",
]
