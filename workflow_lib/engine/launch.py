"""Starting the processes of one training step (``device.processes`` > 1) with torch's launcher or Slurm's.

``python -m workflow_lib <step> ...`` whose settings ask for P > 1 processes, run by hand or by a rule and not
itself started by a launcher, becomes the launcher of its step: it keeps the step's checkpoint-folder lock
(``engine.step_lock``) and starts the P processes, each running the same command line, with

- outside Slurm: ``torchrun --standalone --nproc_per_node P --max-restarts 0 -m workflow_lib <step> ...``
  (``torch.distributed.run``, in this process);
- inside a Slurm job (``SLURM_JOB_ID`` set; the rules ask for P tasks, see docs/slurm.md):
  ``srun --ntasks P --cpus-per-task C --kill-on-bad-exit=1 --label python -m workflow_lib <step> ...``,
  which may span nodes.

The processes find each other in ``engine.distributed``. The step's thread count is the job's: each process
gets ``threads // P`` (at least 1) torch threads, ``C`` CPUs under Slurm.

A failure in any process ends them all (torchrun stops the others; srun's ``--kill-on-bad-exit``) and the
launcher ends with one line naming the failing rank and its message: each process records its error in the
launcher's error file (torch elastic's ``TORCHELASTIC_ERROR_FILE`` under torchrun; one file per rank in a
folder beside the checkpoints under srun). A process killed by a signal is named with the signal. The exit
status is 2 when the failure was a ``UserError`` (bad input), 1 otherwise. Of several failed processes the
one to blame is the one with the user error, else one killed by a signal other than SIGTERM (the others
then fail to reach it, or are stopped with SIGTERM), else the first.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from workflow_lib.engine.distributed import LAUNCHER_ENV
from workflow_lib.errors import EXIT_USER_ERROR

ERROR_DIR_ENV = "WORKFLOW_LIB_ERROR_DIR"  # srun: the folder of the per-rank error files


@dataclass(frozen=True)
class Failure:
    rank: int
    exitcode: int  # negative: killed by that signal
    message: str
    timestamp: float

    def blame_order(self) -> tuple:
        stopped = self.exitcode == -signal.SIGTERM  # how the launcher stops the other processes
        return (self.exitcode != EXIT_USER_ERROR, stopped, self.exitcode >= 0, self.timestamp, self.rank)


def blamed(failures: list[Failure]) -> Failure:
    """The failure that ended the job (see the module docstring)."""
    return min(failures, key=Failure.blame_order)


def failure_line(step: str, failure: Failure, processes: int) -> str:
    return f"error in step '{step}': process {failure.rank} of {processes} failed: {failure.message}"


def exit_status(failure: Failure) -> int:
    return EXIT_USER_ERROR if failure.exitcode == EXIT_USER_ERROR else 1


# -- in a started process -----------------------------------------------------------------------------
def error_file(rank: int) -> Path | None:
    """Where this process records its error for the launcher (None: started by hand, no launcher reads it)."""
    if os.environ.get("TORCHELASTIC_ERROR_FILE"):
        return Path(os.environ["TORCHELASTIC_ERROR_FILE"])
    if os.environ.get(ERROR_DIR_ENV):
        return Path(os.environ[ERROR_DIR_ENV]) / f"rank{rank}.json"
    return None


def record_error(rank: int, error: BaseException, user_error: bool) -> None:
    """Record ``error`` in torch elastic's error-file format (message, timestamp; plus the exit status);
    ``user_error``: bad input (its message alone, exit status 2), else a bug (type and message, status 1)."""
    path = error_file(rank)
    if path is None:
        return
    message = str(error) if user_error else f"{type(error).__name__}: {error}"
    code = EXIT_USER_ERROR if user_error else 1
    try:
        path.write_text(json.dumps({"message": message, "timestamp": int(time.time()), "exitcode": code}))
    except OSError:
        pass  # the process's own stderr still has the message


# -- the launcher -------------------------------------------------------------------------------------
def launch(step: str, argv: list[str], processes: int, threads: int, error_dir: Path) -> int:
    """Run ``python -m workflow_lib <argv>`` in ``processes`` processes; return the exit status.
    ``error_dir``: a folder every node can reach (the checkpoint folder), for srun's error files."""
    per_process = max(1, threads // processes) if threads > 0 else 1
    env = {LAUNCHER_ENV: str(os.getpid()), "OMP_NUM_THREADS": str(per_process)}
    if os.environ.get("SLURM_JOB_ID"):
        return _srun(step, argv, processes, per_process, env, error_dir)
    return _torchrun(step, argv, processes, env)


def _torchrun(step: str, argv: list[str], processes: int, env: dict[str, str]) -> int:
    from torch.distributed import run as torchrun
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError

    args = torchrun.parse_args(["--standalone", "--nproc_per_node", str(processes), "--max_restarts", "0",
                                "-m", "workflow_lib", *argv])
    saved = {key: os.environ.get(key) for key in env}
    os.environ.update(env)
    try:
        torchrun.run(args)
    except ChildFailedError as error:
        failures = [Failure(rank, f.exitcode, _torch_message(f), f.timestamp) for rank, f in error.failures.items()]
        failure = blamed(failures)
        print(failure_line(step, failure, processes), file=sys.stderr)
        return exit_status(failure)
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
    return 0


def _torch_message(failure) -> str:
    message = failure.message
    if isinstance(message, dict):
        message = message.get("message", "")
    if failure.exitcode < 0:
        return f"killed by signal {failure.signal_name()}"
    return str(message).strip().splitlines()[0] if message else f"exit status {failure.exitcode}"


def _srun(step: str, argv: list[str], processes: int, cpus: int, env: dict[str, str], error_dir: Path) -> int:
    error_dir.mkdir(parents=True, exist_ok=True)
    errors = Path(tempfile.mkdtemp(prefix=".errors-", dir=error_dir))
    command = ["srun", f"--ntasks={processes}", f"--cpus-per-task={cpus}", "--kill-on-bad-exit=1", "--label"]
    if os.environ.get("SLURM_STEP_ID"):  # already inside a job step: share its CPUs
        command.append("--overlap")
    command += [sys.executable, "-m", "workflow_lib", *argv]
    try:
        process = subprocess.Popen(command, env={**os.environ, **env, ERROR_DIR_ENV: str(errors)})
        try:
            code = process.wait()
        except BaseException:  # e.g. Snakemake's SIGTERM: srun passes it on to the tasks
            process.send_signal(signal.SIGTERM)
            process.wait()
            raise
        if code == 0:
            return 0
        failures = _srun_failures(errors)
        if not failures:
            print(f"error in step '{step}': srun ended with exit status {code} and no process recorded an "
                  "error (one was killed: srun's lines above name the task)", file=sys.stderr)
            return 1
        failure = blamed(failures)
        print(failure_line(step, failure, processes), file=sys.stderr)
        return exit_status(failure)
    finally:
        shutil.rmtree(errors, ignore_errors=True)


def _srun_failures(errors: Path) -> list[Failure]:
    failures = []
    for path in sorted(errors.glob("rank*.json")):
        try:
            data = json.loads(path.read_text())
            failures.append(Failure(int(path.stem[len("rank"):]), int(data.get("exitcode", 1)),
                                    str(data["message"]), float(data["timestamp"])))
        except (OSError, ValueError, KeyError):
            continue
    return failures
