"""One copy of a step per checkpoint folder (workflow_lib.engine.step_lock, taken by the command line).

Two real copies of ``python -m workflow_lib search`` on the same checkpoint folder: the second stops at once
with exit status 2, naming the folder and the process holding it; the lock dies with its process."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from workflow_lib.config import load_config, stage_json
from workflow_lib.datasets.prepared import PreparedData
from workflow_lib.engine.step_lock import LOCK_NAME, StepLockedError, step_lock


def search_command(tmp_path: Path, data: Path, out: str, epochs: int) -> list[str]:
    config = load_config({"datasets": {"toy": {"kind": "digits", "search": {
        "epochs": epochs, "batch_size": 4, "C": 4, "layers": 3, "max_steps_per_epoch": 1}}}})
    return [sys.executable, "-m", "workflow_lib", "search", "--settings", stage_json(config, "toy", "search"),
            "--data", str(data), "--out", str(tmp_path / out), "--checkpoint-dir", str(tmp_path / "ckpt"),
            "--seed", "0"]


def prepared(path: Path) -> Path:
    x = np.random.default_rng(0).random((12, 1, 8, 8), dtype=np.float32)
    PreparedData(x=x, y=np.arange(12) % 2, task="classification", split=np.array([0, 1, 2] * 4, np.int8),
                 class_names=("a", "b")).save(path)
    return path


def wait_for_holder(lock_file: Path, pid: int, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if lock_file.is_file() and lock_file.read_text().startswith(f"{pid} on "):
            return
        time.sleep(0.1)
    raise AssertionError(f"process {pid} never took the lock {lock_file}")


def test_second_copy_of_a_step_is_refused_while_the_first_runs(tmp_path):
    data = prepared(tmp_path / "prepared.npz")
    first = subprocess.Popen(search_command(tmp_path, data, "first", epochs=10_000), stdout=subprocess.DEVNULL,
                             stderr=subprocess.PIPE, text=True)
    try:
        wait_for_holder(tmp_path / "ckpt" / LOCK_NAME, first.pid)
        started = time.monotonic()
        second = subprocess.run(search_command(tmp_path, data, "second", epochs=1), capture_output=True, text=True,
                                timeout=300)
        message = second.stderr.strip().splitlines()[-1]
        assert second.returncode == 2, second.stderr
        assert message.startswith(f"error in step 'search': checkpoint folder {tmp_path / 'ckpt'} is in use by "
                                  f"another copy of this step (process {first.pid} on ")
        assert f"lock file {tmp_path / 'ckpt' / LOCK_NAME}" in message and "kill that process id" in message
        assert not (tmp_path / "second").exists()  # refused before it wrote anything
        assert time.monotonic() - started < 60  # at once: it did not wait for the lock
        assert first.poll() is None  # the first copy is untouched
    finally:
        first.kill()  # like a crash: the kernel drops the lock with the process
        first.wait(timeout=60)
    with step_lock(tmp_path / "ckpt") as lock_file:  # free again, and now held by this process
        assert lock_file.read_text() == f"{os.getpid()} on {os.uname().nodename}\n"


def test_lock_is_released_when_the_step_ends_and_a_held_lock_names_its_holder(tmp_path):
    folder = tmp_path / "ckpt"
    with step_lock(folder):
        pass
    child = subprocess.Popen([sys.executable, "-c", "import sys, time\n"
                              "from workflow_lib.engine.step_lock import step_lock\n"
                              f"with step_lock({str(folder)!r}):\n    print('locked', flush=True); time.sleep(600)"],
                             stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout.readline().strip() == "locked"
        with pytest.raises(StepLockedError, match=f"in use by another copy of this step \\(process {child.pid} on "):
            with step_lock(folder):
                pass
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=60)
    with step_lock(folder):  # the holder died: nothing left stuck
        pass
