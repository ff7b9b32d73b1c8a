"""``python -m workflow_lib train`` with ``device.processes: 2``: the command starts its processes with torchrun
(gloo, CPU), holds the step lock, and reports a failed process with one line naming it.

* end to end: metrics.json written once, by rank 0, recording world_size 2 and gloo; the epochs logged once;
* a second copy of the step stops at once (the launcher holds the checkpoint folder's lock);
* one process killed mid-run: the job ends with the killed process's line; a rerun resumes from the
  checkpoint (every process restores its state) and ends identical to an uninterrupted 2-process run;
* bad input in the processes: one line naming the process, exit status 2.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from test_training import tiny_data

REPO = Path(__file__).resolve().parents[1]
TRAIN = {"epochs": 3, "batch_size": 8, "C": 4, "layers": 3, "lr": 0.05, "auxiliary": True, "auxiliary_weight": 0.4,
         "drop_path_prob": 0.2, "max_steps_per_epoch": 3, "genotype": "DARTS_V2"}


def settings(processes: int = 2, **train) -> str:
    return json.dumps({"dataset": "tiny", "kind": "npz", "stage": "train",
                       "device": {"type": "cpu", "processes": processes}, "settings": {**TRAIN, **train}})


def command(tmp_path: Path, name: str, text: str, *extra: str) -> list[str]:
    return [sys.executable, "-m", "workflow_lib", "train", "--settings", text, "--data", str(tmp_path / "data.npz"),
            "--out", str(tmp_path / name / "out"), "--checkpoint-dir", str(tmp_path / name / "ckpt"), "--seed", "0",
            "--threads", "2", *extra]


def env() -> dict:
    """This environment outside any Slurm job (inside one the command would start its processes with srun)."""
    outside = {k: v for k, v in os.environ.items() if not k.startswith(("SLURM_", "SRUN_", "SBATCH_"))}
    return {**outside, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}


@pytest.fixture
def data(tmp_path):
    tiny_data("regression", n=80).save(tmp_path / "data.npz")  # 64 training rows, 16 test rows
    return tmp_path / "data.npz"


def run(cmd: list[str], timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, capture_output=True, text=True, cwd=REPO, env=env(), timeout=timeout)


def test_train_in_two_processes(tmp_path, data):
    proc = run(command(tmp_path, "a", settings()))
    assert proc.returncode == 0, proc.stderr[-3000:]
    metrics = json.loads((tmp_path / "a" / "out" / "metrics.json").read_text())
    assert metrics["run_info"]["world_size"] == 2 and metrics["run_info"]["backend"] == "gloo"
    assert metrics["epochs"] == 3 and set(metrics["test"]) == {"r2", "mae", "rmse", "loss"}
    assert proc.stderr.count("epoch 3/3") == 1  # rank 0 logs the epochs
    assert not list((tmp_path / "a" / "out").glob(".*"))  # one writer: no temporary file left behind


def _workers(launcher: int) -> dict[int, int]:
    """rank -> pid of the processes torchrun started under ``launcher``."""
    found = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            if int(fields[1]) != launcher:
                continue
            environ = (stat.parent / "environ").read_bytes().split(b"\0")
        except (OSError, IndexError, ValueError):
            continue
        for item in environ:
            if item.startswith(b"RANK="):
                found[int(item[5:])] = int(stat.parent.name)
    return found


def _epochs_done(checkpoint: Path) -> int:
    try:
        return int(torch.load(checkpoint, weights_only=True)["epoch"])
    except Exception:  # noqa: BLE001 - not written yet (or being replaced)
        return 0


def test_killed_process_fails_the_job_and_the_rerun_resumes(tmp_path, data):
    long = settings(epochs=24, batch_size=4, max_steps_per_epoch=None)  # 16 steps an epoch, about 0.4 s
    reference = run(command(tmp_path, "ref", long))
    assert reference.returncode == 0, reference.stderr[-3000:]

    job = subprocess.Popen(command(tmp_path, "b", long), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                           cwd=REPO, env=env())
    checkpoint = tmp_path / "b" / "ckpt" / "ckpt.pt"
    deadline = time.monotonic() + 120
    while _epochs_done(checkpoint) < 2 and time.monotonic() < deadline and job.poll() is None:
        time.sleep(0.2)
    workers = _workers(job.pid)
    assert sorted(workers) == [0, 1], workers
    # frozen, so that the job cannot finish its 24 epochs (about 10 s) while the second copy starts up
    for pid in workers.values():
        os.kill(pid, signal.SIGSTOP)
    # a second copy of the step on the same folder stops at once: the launcher holds the lock
    second = run(command(tmp_path, "b", long), timeout=60)
    assert second.returncode == 2 and "is in use by another copy" in second.stderr, second.stderr[-2000:]
    os.kill(workers[1], signal.SIGKILL)
    os.kill(workers[0], signal.SIGCONT)  # rank 0 goes on and finds its peer gone
    _, stderr = job.communicate(timeout=120)
    assert job.returncode == 1, stderr[-3000:]
    assert "error in step 'train': process 1 of 2 failed: killed by signal SIGKILL" in stderr.splitlines()[-1]
    assert not (tmp_path / "b" / "out" / "metrics.json").exists()
    done = _epochs_done(checkpoint)
    assert 2 <= done < 24

    rerun = run(command(tmp_path, "b", long))
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    assert f"resumed from {checkpoint} at epoch {done}/24" in rerun.stderr
    resumed = json.loads((tmp_path / "b" / "out" / "metrics.json").read_text())
    uninterrupted = json.loads((tmp_path / "ref" / "out" / "metrics.json").read_text())
    assert resumed["test"] == uninterrupted["test"]  # every process resumed exactly (bitwise on the CPU)
    assert (tmp_path / "b" / "out" / "predictions.csv").read_text() == (
        tmp_path / "ref" / "out" / "predictions.csv").read_text()


def test_bad_input_in_the_processes_is_one_line_and_exit_2(tmp_path, data):
    data.write_bytes(b"not an npz file")  # read by the processes (the launcher reads only the settings)
    proc = run(command(tmp_path, "c", settings()))
    assert proc.returncode == 2, proc.stderr[-3000:]
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("error in step 'train': process ") and "of 2 failed:" in last and str(data) in last
    assert "Traceback" not in proc.stderr


def test_processes_that_do_not_match_the_setting(tmp_path, data):
    """torchrun started by hand with another number of processes than device.processes says."""
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           *command(tmp_path, "d", settings(processes=3))[1:]]
    proc = run(cmd)
    assert proc.returncode != 0
    assert "device.processes is 3 but torchrun started 2 processes" in proc.stderr
