"""A throw-away one-node Slurm cluster on this machine, for testing the Slurm profile.

Used by ``tests/test_slurm_profile.py`` through the session-scoped pytest fixture
``slurm_cluster`` defined at the bottom of this module; it can also be run by hand::

    sudo .venv/bin/python tests/slurm_cluster.py up /tmp/slurmtest   # prints the env to export
    export SLURM_CONF=/tmp/slurmtest/slurm.conf; sinfo; sbatch --wrap hostname
    sudo .venv/bin/python tests/slurm_cluster.py down /tmp/slurmtest

What it does (everything lives in one temporary directory ``root``):

* installs Debian's ``slurm-wlm`` and ``munge`` with apt-get when the binaries are missing
  (root only; otherwise the fixture skips with the reason);
* writes ``root/slurm.conf`` for this machine: ``NodeName`` = ``hostname -s`` (what slurmd
  checks), CPU layout and memory from ``slurmd -C``, no GPUs, accounting off, linuxproc
  process tracking, no task plugin, ``select/cons_tres`` with ``CR_Core_Memory``, state and
  spool directories under ``root``, free TCP ports for slurmctld/slurmd (so that it cannot
  clash with another Slurm on the same host), one partition ``debug`` (Default=YES);
* runs a *private* ``munged`` (own key ``root/munge/munge.key``, mode 0600, and own socket,
  referenced from slurm.conf as ``AuthInfo=socket=...``) so that the system's
  ``/etc/munge`` and ``/run/munge`` are neither needed nor touched;
* starts munged, slurmctld and slurmd in the foreground as child processes (``-F``/``-D``),
  records their pids in ``root/pids.json``, and waits until ``sinfo`` reports the node idle;
* every client (sbatch, squeue, srun inside jobs, Snakemake's Slurm plugin) finds the cluster
  through ``SLURM_CONF=root/slurm.conf``; :meth:`SlurmTestCluster.env` returns that environment;
* :meth:`SlurmTestCluster.stop` cancels what is left in the queue and ends exactly the
  daemons it started, by pid (SIGTERM, then SIGKILL after a grace period).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

PARTITION = "debug"
CLUSTER_NAME = "snaketest"
REQUIRED_BINARIES = ("munged", "slurmctld", "slurmd", "sbatch", "squeue", "sinfo", "scontrol", "srun")
APT_PACKAGES = ("slurm-wlm", "munge")
SBIN_DIRS = ("/usr/sbin", "/sbin", "/usr/local/sbin")


class ClusterError(RuntimeError):
    """The test cluster could not be set up; the message says which step failed and why."""


# --------------------------------------------------------------------------------------------
# installation
# --------------------------------------------------------------------------------------------


def _which(name: str) -> str | None:
    path = os.environ.get("PATH", "") + os.pathsep + os.pathsep.join(SBIN_DIRS)
    return shutil.which(name, path=path)


def missing_binaries() -> list[str]:
    return [b for b in REQUIRED_BINARIES if _which(b) is None]


def ensure_installed(timeout: float = 1200) -> str | None:
    """Install slurm-wlm and munge with apt-get when missing.

    Returns None when everything is present (or was installed), else a reason to skip.
    """
    missing = missing_binaries()
    if not missing:
        return None
    if os.geteuid() != 0:
        return f"Slurm/munge binaries missing ({', '.join(missing)}) and not root: cannot apt-get install"
    if shutil.which("apt-get") is None:
        return f"Slurm/munge binaries missing ({', '.join(missing)}) and no apt-get on this system"
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    for cmd in (
        ["apt-get", "update"],
        ["apt-get", "install", "-y", "--no-install-recommends", *APT_PACKAGES],
    ):
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout)
        if proc.returncode != 0:
            raise ClusterError(f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    missing = missing_binaries()
    if missing:
        raise ClusterError(f"still missing after apt-get install: {', '.join(missing)}")
    return None


def skip_reason() -> str | None:
    """Why the cluster cannot run here (None: it can); installs packages if needed and allowed."""
    if sys.platform != "linux":
        return "the Slurm test cluster needs Linux"
    if os.geteuid() != 0:
        if missing_binaries():
            return ensure_installed()
        return "the Slurm test cluster runs slurmd/slurmctld as root; not root"
    return ensure_installed()


# --------------------------------------------------------------------------------------------
# configuration
# --------------------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def short_hostname() -> str:
    return socket.gethostname().split(".")[0]


def node_hardware() -> dict[str, int]:
    """CPU layout and memory of this machine, as slurmd sees it (``slurmd -C``)."""
    hw: dict[str, int] = {}
    slurmd = _which("slurmd")
    if slurmd:
        proc = subprocess.run([slurmd, "-C"], capture_output=True, text=True, timeout=60)
        first = proc.stdout.splitlines()[0] if proc.stdout else ""
        for key in ("CPUs", "Boards", "SocketsPerBoard", "CoresPerSocket", "ThreadsPerCore", "RealMemory"):
            m = re.search(rf"\b{key}=(\d+)", first)
            if m:
                hw[key] = int(m.group(1))
    if "CPUs" not in hw:  # fall back to nproc / free
        hw = {"CPUs": os.cpu_count() or 1}
    if "RealMemory" not in hw:
        with open("/proc/meminfo") as fh:
            kib = int(re.search(r"MemTotal:\s+(\d+)", fh.read()).group(1))
        hw["RealMemory"] = kib // 1024
    return hw


def write_slurm_conf(root: Path, nodename: str, hw: dict[str, int], munge_socket: Path, partition: str = PARTITION) -> Path:
    ctld_port, slurmd_port = _free_port(), _free_port()
    while slurmd_port == ctld_port:
        slurmd_port = _free_port()
    # Declare a little less memory than the machine has, so slurmd never drains the node with
    # "Low RealMemory" and jobs cannot ask for all of it.
    mem = max(256, int(hw["RealMemory"] * 0.9))
    layout = " ".join(f"{k}={v}" for k, v in hw.items() if k not in ("RealMemory",))
    (root / "state").mkdir(exist_ok=True)
    (root / "spool").mkdir(exist_ok=True)
    text = f"""\
# one-node test cluster written by tests/slurm_cluster.py
ClusterName={CLUSTER_NAME}
SlurmctldHost={nodename}(127.0.0.1)
SlurmctldPort={ctld_port}
SlurmdPort={slurmd_port}
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket={munge_socket}
StateSaveLocation={root / 'state'}
SlurmdSpoolDir={root / 'spool'}
SlurmctldPidFile={root / 'slurmctld.pid'}
SlurmdPidFile={root / 'slurmd.pid'}
SlurmctldLogFile={root / 'slurmctld.log'}
SlurmdLogFile={root / 'slurmd.log'}
SlurmctldDebug=info
SlurmdDebug=info
# no accounting database: sacct cannot answer, squeue is the status command
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
MpiDefault=none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
SchedulerType=sched/backfill
ReturnToService=2
# finished jobs stay visible to squeue/scontrol for 30 minutes (the Slurm plugin uses squeue
# only when MinJobAge >= 3 x its first status-check delay)
MinJobAge=1800
KillWait=5
InactiveLimit=0
SlurmdTimeout=60
NodeName={nodename} NodeAddr=127.0.0.1 {layout} RealMemory={mem} State=UNKNOWN
PartitionName={partition} Nodes={nodename} Default=YES MaxTime=INFINITE State=UP
"""
    conf = root / "slurm.conf"
    conf.write_text(text)
    return conf


def make_munge_key(path: Path) -> None:
    """Create a munge key (0600, owned by the user running munged) if missing."""
    if path.exists():
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    mungekey = _which("mungekey")
    if mungekey:
        subprocess.run([mungekey, "-c", "-k", str(path)], check=True, capture_output=True, timeout=60)
    else:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(os.urandom(1024))
    os.chmod(path, 0o600)


# --------------------------------------------------------------------------------------------
# the cluster
# --------------------------------------------------------------------------------------------


@dataclass
class SlurmTestCluster:
    root: Path
    partition: str = PARTITION
    nodename: str = field(default_factory=short_hostname)
    hw: dict = field(default_factory=dict)
    procs: dict = field(default_factory=dict)  # name -> subprocess.Popen
    pids: dict = field(default_factory=dict)  # name -> pid (also in root/pids.json)

    @property
    def conf(self) -> Path:
        return self.root / "slurm.conf"

    @property
    def slurmctld_log(self) -> Path:
        return self.root / "slurmctld.log"

    @property
    def cpus(self) -> int:
        return int(self.hw.get("CPUs", 1))

    @property
    def mem_mb(self) -> int:
        """Memory the node offers to jobs (what slurm.conf declares)."""
        m = re.search(r"RealMemory=(\d+)", self.conf.read_text())
        return int(m.group(1))

    def env(self, extra: dict | None = None) -> dict:
        """Environment for Slurm clients (and everything that should submit to this cluster):
        this process's environment plus ``extra``, pointed at this cluster."""
        env = dict(os.environ, **(extra or {}))
        for key in [k for k in env if k.startswith(("SLURM_", "SBATCH_", "SALLOC_", "SRUN_"))]:
            del env[key]  # never inherit settings of an enclosing allocation
        env["SLURM_CONF"] = str(self.conf)
        env["PATH"] = os.pathsep.join(
            [str(self.root / "bin"), os.path.dirname(sys.executable), env.get("PATH", ""), *SBIN_DIRS]
        )
        return env

    def _write_srun_shim(self) -> None:
        """``root/bin/srun``: the real srun with SLURM_CONF pointing at this cluster.

        snakemake-executor-plugin-slurm-jobstep (0.6.1) removes every SLURM_* variable except
        the job's identity -- SLURM_CONF included -- before it calls ``srun`` inside the job.
        A real cluster has /etc/slurm/slurm.conf (or configless slurmd) so srun still finds its
        controller; this private cluster has no system-wide config, so the jobs find srun
        through PATH (exported by sbatch --export=ALL) and this shim puts SLURM_CONF back.
        """
        real = _which("srun")
        bindir = self.root / "bin"
        bindir.mkdir(exist_ok=True)
        shim = bindir / "srun"
        shim.write_text(f'#!/bin/sh\nSLURM_CONF="{self.conf}"\nexport SLURM_CONF\nexec "{real}" "$@"\n')
        shim.chmod(0o755)

    def run(self, *cmd: str, check: bool = True, timeout: float = 60) -> subprocess.CompletedProcess:
        return subprocess.run(list(cmd), env=self.env(), capture_output=True, text=True, check=check, timeout=timeout)

    # ---- start / stop -----------------------------------------------------------------------

    def _spawn(self, name: str, cmd: list[str]) -> None:
        log = open(self.root / f"{name}.stdout", "ab")
        proc = subprocess.Popen(
            cmd, env=self.env(), stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True
        )
        log.close()
        self.procs[name] = proc
        self.pids[name] = proc.pid
        (self.root / "pids.json").write_text(json.dumps(self.pids, indent=1))

    def _check_alive(self, name: str) -> None:
        proc = self.procs[name]
        if proc.poll() is not None:
            raise ClusterError(f"{name} exited with {proc.returncode} during start-up\n{self.diagnostics()}")

    def _wait(self, what: str, pred, timeout: float, alive=()) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for name in alive:
                self._check_alive(name)
            try:
                if pred():
                    return
            except (subprocess.SubprocessError, OSError):
                pass
            time.sleep(0.5)
        raise ClusterError(f"timed out after {timeout:.0f}s waiting for {what}\n{self.diagnostics()}")

    def start(self, timeout: float = 120) -> "SlurmTestCluster":
        self.root.mkdir(parents=True, exist_ok=True)
        os.chmod(self.root, 0o700)  # munged refuses group/world-writable directories
        self.hw = node_hardware()
        munge_dir = self.root / "munge"
        munge_dir.mkdir(mode=0o700, exist_ok=True)
        key, sock = munge_dir / "munge.key", munge_dir / "munge.socket"
        make_munge_key(key)
        write_slurm_conf(self.root, self.nodename, self.hw, sock, self.partition)
        self._write_srun_shim()

        self._spawn("munged", [
            _which("munged"), "--foreground", "--force", f"--socket={sock}", f"--key-file={key}",
            f"--pid-file={munge_dir / 'munged.pid'}", f"--log-file={munge_dir / 'munged.log'}",
            f"--seed-file={munge_dir / 'munged.seed'}",
        ])
        munge, unmunge = _which("munge"), _which("unmunge")

        def munge_ok() -> bool:
            if not sock.exists():
                return False
            if not (munge and unmunge):
                return True
            cred = subprocess.run([munge, "-n", "-S", str(sock)], capture_output=True, timeout=10)
            return cred.returncode == 0 and subprocess.run(
                [unmunge, "-S", str(sock)], input=cred.stdout, capture_output=True, timeout=10
            ).returncode == 0

        self._wait("munged", munge_ok, timeout, alive=("munged",))

        self._spawn("slurmctld", [_which("slurmctld"), "-D", "-i", "-f", str(self.conf)])
        self._wait("slurmctld (scontrol ping)", lambda: "UP" in self.run("scontrol", "ping", check=False).stdout,
                   timeout, alive=("munged", "slurmctld"))

        self._spawn("slurmd", [_which("slurmd"), "-D", "-N", self.nodename, "-f", str(self.conf)])

        def node_idle() -> bool:
            out = self.run("sinfo", "-h", "-N", "-p", self.partition, "-o", "%N %t", check=False).stdout.split()
            return len(out) >= 2 and out[1] == "idle"

        self._wait(f"node {self.nodename} idle in sinfo", node_idle, timeout, alive=("munged", "slurmctld", "slurmd"))
        return self

    def stop(self, grace: float = 20) -> None:
        """Cancel leftover jobs, then stop the daemons this object started (by pid)."""
        if self.procs.get("slurmctld") is not None and self.procs["slurmctld"].poll() is None:
            try:
                self.run("scancel", "--partition", self.partition, check=False, timeout=20)
                deadline = time.monotonic() + grace
                while time.monotonic() < deadline:
                    out = self.run("squeue", "-h", "-t", "PD,R,CG,S", "-o", "%i", check=False, timeout=20).stdout
                    if not out.strip():
                        break
                    time.sleep(0.5)
            except (subprocess.SubprocessError, OSError):
                pass
        for name in ("slurmd", "slurmctld", "munged"):  # reverse start order
            proc = self.procs.get(name)
            if proc is None or proc.poll() is not None:
                continue
            try:
                os.kill(proc.pid, signal.SIGTERM)
                proc.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                os.kill(proc.pid, signal.SIGKILL)
                proc.wait(timeout=grace)
            except ProcessLookupError:
                pass
        self.procs.clear()

    # ---- evidence ---------------------------------------------------------------------------

    def completed_job_ids(self) -> set[str]:
        """Job ids slurmctld logged as finished with exit status 0 (``_job_complete: JobId=N done``)."""
        text = self.slurmctld_log.read_text(errors="replace") if self.slurmctld_log.exists() else ""
        done = set(re.findall(r"_job_complete: JobId=(\d+) done", text))
        failed = set(re.findall(r"_job_complete: JobId=(\d+) WEXITSTATUS [1-9]", text))
        return done - failed

    def queue(self, name: str | None = None) -> dict[str, str]:
        """``squeue --states=all``: job id -> state (finished jobs stay for MinJobAge seconds)."""
        args = ["squeue", "-h", "--states=all", "-o", "%i|%T"] + (["--name", name] if name else [])
        rows = [line.split("|") for line in self.run(*args, check=False).stdout.split()]
        return {r[0]: r[1] for r in rows if len(r) == 2}

    def job_info(self, jobid: str) -> dict[str, str]:
        """``scontrol show job -o``: the job's fields (empty once slurmctld has purged it)."""
        out = self.run("scontrol", "show", "job", "-o", str(jobid), check=False).stdout
        return dict(re.findall(r"(\w+)=(\S*)", out))

    def diagnostics(self, lines: int = 40) -> str:
        parts = []
        for name in ("munge/munged.log", "munged.stdout", "slurmctld.log", "slurmctld.stdout", "slurmd.log", "slurmd.stdout"):
            p = self.root / name
            if p.exists():
                tail = p.read_text(errors="replace").splitlines()[-lines:]
                parts.append(f"--- {p} (last {lines} lines) ---\n" + "\n".join(tail))
        return "\n".join(parts)


def stop_from_pidfile(root: Path, grace: float = 20) -> None:
    """Stop the daemons recorded in ``root/pids.json`` (for ``python slurm_cluster.py down``)."""
    pids = json.loads((Path(root) / "pids.json").read_text())
    env = dict(os.environ, SLURM_CONF=str(Path(root) / "slurm.conf"))
    subprocess.run(["scancel", "--partition", PARTITION], env=env, capture_output=True, timeout=20)
    for name in ("slurmd", "slurmctld", "munged"):
        pid = pids.get(name)
        if not pid:
            continue
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
        except FileNotFoundError:
            continue
        if name not in cmdline:  # the pid was reused by something else: leave it alone
            continue
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + grace
        while Path(f"/proc/{pid}").exists() and time.monotonic() < deadline:
            time.sleep(0.2)
        if Path(f"/proc/{pid}").exists():
            os.kill(pid, signal.SIGKILL)


# --------------------------------------------------------------------------------------------
# pytest fixture (session scope): import it into a test module or list this module in
# ``pytest_plugins`` of tests/conftest.py to share it between modules
# --------------------------------------------------------------------------------------------

try:
    import pytest
except ImportError:  # plain ``python slurm_cluster.py`` without pytest
    pytest = None

if pytest is not None:

    @pytest.fixture(scope="session")
    def slurm_cluster(tmp_path_factory):
        """A running one-node Slurm cluster; skips when it cannot run here."""
        reason = skip_reason()
        if reason:
            pytest.skip(reason)
        cluster = SlurmTestCluster(root=tmp_path_factory.mktemp("slurm"))
        try:
            cluster.start()
            yield cluster
        finally:
            cluster.stop()


def main(argv: list[str]) -> int:
    if len(argv) != 3 or argv[1] not in ("up", "down"):
        print(f"usage: {argv[0]} up|down DIR", file=sys.stderr)
        return 2
    root = Path(argv[2]).resolve()
    if argv[1] == "down":
        stop_from_pidfile(root)
        return 0
    reason = skip_reason()
    if reason:
        print(reason, file=sys.stderr)
        return 1
    cluster = SlurmTestCluster(root=root)
    try:
        cluster.start()
    except Exception:
        cluster.stop()
        raise
    # leave the daemons running (they are in their own sessions); Popen objects are dropped
    cluster.procs.clear()
    print(f"export SLURM_CONF={cluster.conf}")
    print(f"# pids: {json.dumps(cluster.pids)}; stop with: {argv[0]} down {root}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
