"""The Slurm profile (profiles/slurm) against a real one-node Slurm cluster on this machine.

* Static checks (fast, no cluster): both profiles parse, carry the documented keys, and
  Snakemake accepts them (dry runs); there is no profiles/default/.
* ``test_workflow_through_slurm`` (marked ``slurm``): the session fixture ``slurm_cluster``
  (tests/slurm_cluster.py) installs slurm-wlm/munge if needed, starts munged, slurmctld and
  slurmd; the workflow runs once locally (profiles/local) and once with
  ``snakemake --profile profiles/slurm`` plus the overrides this test cluster needs
  (:func:`cluster_overrides`); the test checks that every job went through Slurm and
  that the results equal the local run's.

All workflows run by default (``WORKFLOW_CASES`` below; the environment variable
``SLURM_TEST_WORKFLOW=toy|real|design`` picks one): ``toy_case`` is the tiny tests/slurm_workflow/Snakefile,
``real_case`` the repository's Snakefile with its quick config, ``design_case`` the design loop of
examples/design with its simulator as Slurm jobs.
"""

from __future__ import annotations

import json
import math
import os
import re
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import pytest
import yaml

try:  # tests/ on sys.path (pytest's default rootdir-relative import)
    from slurm_cluster import SlurmTestCluster, slurm_cluster  # noqa: F401  (fixture)
except ImportError:  # tests/ as a package
    from .slurm_cluster import SlurmTestCluster, slurm_cluster  # noqa: F401

REPO = Path(__file__).resolve().parents[1]
PROFILES = REPO / "profiles"
SLURM_PROFILE = PROFILES / "slurm"
LOCAL_PROFILE = PROFILES / "local"
TOY_SNAKEFILE = Path(__file__).resolve().parent / "slurm_workflow" / "Snakefile"
GPU_RULES = ("search", "train", "baseline_cnn", "random_search", "fixed_cell", "select_cell", "design_pick",
             "design", "learning_curves")
DIGITS_GPU_RULES = ("search", "train", "baseline_cnn", "random_search")  # what the tiny digits chain runs
SNAKEMAKE = [sys.executable, "-m", "snakemake"]


def load_profile(profile_dir: Path) -> dict:
    return yaml.safe_load((profile_dir / "config.yaml").read_text())


def clean_env(extra: dict | None = None) -> dict:
    """This environment without Slurm settings, with this Python's bin directory (the virtual
    environment) first on PATH: rules call `python -m workflow_lib ...`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLURM_", "SBATCH_", "SRUN_", "SALLOC_"))}
    env["PATH"] = os.pathsep.join([os.path.dirname(sys.executable), env.get("PATH", "")])
    env.update(extra or {})
    return env


def run_snakemake(args: list[str], env: dict, log: Path, timeout: float) -> str:
    """Run snakemake from the repository root; fail the test with the log's tail on error."""
    t0 = time.monotonic()
    with open(log, "w") as fh:
        proc = subprocess.run([*SNAKEMAKE, *args], cwd=REPO, env=env, stdout=fh, stderr=subprocess.STDOUT, timeout=timeout)
    text = log.read_text(errors="replace")
    if proc.returncode != 0:
        pytest.fail(f"snakemake exited with {proc.returncode} after {time.monotonic() - t0:.0f}s: "
                    f"{' '.join(args)}\n... {log}:\n{text[-6000:]}")
    return text


# --------------------------------------------------------------------------------------------
# which workflow: the toy now, the real quick workflow once it runs end to end
# --------------------------------------------------------------------------------------------


@dataclass
class WorkflowCase:
    name: str
    args: list[str]  # snakemake arguments for both runs (snakefile, config, targets)
    compare: Callable[[Path, Path], None]  # (local workdir, slurm workdir) -> assert equal results
    slurm_rules: set[str] | None = None  # exactly the rules that must have been submitted
    required_rules: set[str] = field(default_factory=set)  # rules that must be among them
    slurm_only_args: list[str] = field(default_factory=list)  # extra arguments of the Slurm run
    failed_jobs: int = 0  # Slurm jobs expected to fail (and be retried by Snakemake)
    check_slurm_run: Callable[[Path, dict, SlurmTestCluster], None] | None = None
    env: dict = field(default_factory=dict)  # extra environment for both runs
    prepare_workdir: Callable[[Path], None] | None = None
    timeout: float = 600


def _files(root: Path, skip: Callable[[Path], bool]) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file() and not skip(p)}


def compare_toy(local: Path, slurm: Path) -> None:
    skip = lambda p: "logs" in p.parts  # the logs record SLURM_JOB_ID, which differs by design
    a, b = _files(local / "results", skip), _files(slurm / "results", skip)
    assert sorted(a) == sorted(b)
    assert a, "no results written"
    for name in a:
        assert a[name] == b[name], f"{name} differs between the local and the Slurm run"


def check_toy_slurm_run(workdir: Path, jobs: dict, cluster: SlurmTestCluster) -> None:
    """The toy's own evidence: each job logged its SLURM_JOB_ID; seed 0's search was
    interrupted once and the retry resumed from its per-epoch checkpoint with more time."""
    logs = workdir / "results" / "toy" / "logs"
    all_ids = {i for ids in jobs.values() for i in ids}
    for log in logs.glob("*.log"):
        m = re.search(r"SLURM_JOB_ID=(\d+)", log.read_text())
        assert m and m.group(1) in all_ids, f"{log.name} was not written inside a submitted Slurm job"
    search_log = (logs / "search_seed0.log").read_text()
    assert "resumed after epoch 2" in search_log, search_log
    assert len(jobs["search"]) == 3, jobs  # seed 0 twice (failure + retry), seed 1 once
    limits = sorted(cluster.job_info(i).get("TimeLimit") for i in jobs["search"])
    # runtime "240 * attempt" from the profile: 4 h for first attempts, 8 h for the retry
    assert limits == ["04:00:00", "04:00:00", "08:00:00"], limits


def toy_case() -> WorkflowCase:
    return WorkflowCase(
        name="toy",
        args=["--snakefile", str(TOY_SNAKEFILE)],
        compare=compare_toy,
        slurm_rules={"prepare", "search", "train"},  # `summary` is a local rule
        # seed 0's search fails once after epoch 2 (a stand-in for a timeout or preemption)
        slurm_only_args=["--config", "interrupt_search_seeds=[0]"],
        failed_jobs=1,
        check_slurm_run=check_toy_slurm_run,
        timeout=600,
    )


# The real workflow: what to run and how small.  Adjust the override/targets when the quick
# config changes; runs in a temporary working directory with the repository on PYTHONPATH.
REAL_CONFIG_OVERRIDES: list[str] = []  # e.g. ["results_dir=results"]; note --config lists become lists of str
REAL_TARGETS = ["results/digits/summary.json"]
NON_DETERMINISTIC_KEY = re.compile(r"seconds|time|date|host|device|version|path|run_info", re.I)


def _numbers(obj, prefix=""):
    if isinstance(obj, bool) or obj is None or isinstance(obj, str):
        return
    if isinstance(obj, (int, float)):
        yield prefix, float(obj)
    elif isinstance(obj, dict):
        for k, v in obj.items():
            if not NON_DETERMINISTIC_KEY.search(str(k)):
                yield from _numbers(v, f"{prefix}/{k}")
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            yield from _numbers(v, f"{prefix}[{i}]")


def compare_summaries(local: Path, slurm: Path) -> None:
    a = sorted(p.relative_to(local) for p in (local / "results").glob("*/summary.json"))
    b = sorted(p.relative_to(slurm) for p in (slurm / "results").glob("*/summary.json"))
    assert a and a == b, (a, b)
    for rel in a:
        na = dict(_numbers(json.loads((local / rel).read_text())))
        nb = dict(_numbers(json.loads((slurm / rel).read_text())))
        assert na.keys() == nb.keys(), rel
        for key in na:
            assert math.isclose(na[key], nb[key], rel_tol=1e-6, abs_tol=1e-9), f"{rel}{key}: {na[key]} != {nb[key]}"


def _link_config(workdir: Path) -> None:
    (workdir / "config").symlink_to(REPO / "config", target_is_directory=True)


def real_case() -> WorkflowCase:
    return WorkflowCase(
        name="real",
        args=["--snakefile", str(REPO / "Snakefile"), "--configfile", str(REPO / "tests" / "config" / "tiny.yaml"),
              *(["--config", *REAL_CONFIG_OVERRIDES] if REAL_CONFIG_OVERRIDES else []), "--", *REAL_TARGETS],
        compare=compare_summaries,
        required_rules=set(DIGITS_GPU_RULES),  # the GPU rules, with their GPU request mapped away
        env={"PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))},
        prepare_workdir=_link_config,
        timeout=1800,
    )


# The design loop with a command oracle (examples/design): the simulations run as Slurm jobs, one per slot of
# each generation, and the picks equal those of the local run.
DESIGN_EXAMPLE = REPO / "examples" / "design"
DESIGN_TARGET = "results/conductor/design/design.json"


def design_case(root: Path) -> WorkflowCase:
    config = yaml.safe_load((DESIGN_EXAMPLE / "config.yaml").read_text())
    block = config["datasets"]["conductor"]
    data = root / "design_space.npz"
    subprocess.run([sys.executable, str(DESIGN_EXAMPLE / "make_space.py"), "--n", "300", "--known", "30", "--out",
                    str(data)], check=True, capture_output=True, timeout=120)
    block["source"]["path"] = str(data)
    block["design"].update(seeds=[0], n_initial=6, per_generation=3, generations=1,
                           pickers={"random_forest_ei": {"model": "random_forest", "acquisition": "ei"},
                                    "random": {"model": "random"}})
    block["design"]["random_forest"]["n_estimators"] = 20
    block["design"]["oracle"].update(batch=3, command=f"{sys.executable} {DESIGN_EXAMPLE / 'simulator.py'} "
                                                      "--designs {designs} --out {out}")
    config.update(results_dir="results", checkpoint_dir="checkpoints", log_dir="logs",
                  datasets={"conductor": block})
    path = root / "design.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return WorkflowCase(
        name="design",
        args=["--snakefile", str(REPO / "Snakefile"), "--configfile", str(path), "--", DESIGN_TARGET],
        compare=compare_designs,
        slurm_rules={"design_pick", "design_simulate", "design"},  # raw_data is a local rule
        check_slurm_run=check_design_slurm_run,
        env={"PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))},
        timeout=900,
    )


def compare_designs(local: Path, slurm: Path) -> None:
    a, b = (json.loads((d / DESIGN_TARGET).read_text()) for d in (local, slurm))
    assert [(r["picker"], r["revealed"]) for r in a["runs"]] == [(r["picker"], r["revealed"]) for r in b["runs"]]
    assert [r["records"][-1]["best"] for r in a["runs"]] == [r["records"][-1]["best"] for r in b["runs"]]
    for document in (a, b):
        assert all(r["simulations"] == r["distinct"] == 9 for r in document["runs"])
        assert document["oracle"]["sent"] == document["oracle"]["sent_distinct"] == document["oracle"]["designs"]


def check_design_slurm_run(workdir: Path, jobs: dict, cluster: SlurmTestCluster) -> None:
    """Every slot of every generation was a Slurm job (2 + 2), every simulator call recorded."""
    assert len(jobs["design_simulate"]) == 4 and len(jobs["design_pick"]) == 2, jobs
    calls = sorted((workdir / "results/conductor/design/simulations/calls").glob("*.csv"))
    calls = [c for c in calls if not c.name.endswith(".out.csv")]
    assert calls, "no simulator call recorded"
    simulate_logs = list((workdir / "logs/slurm/rule_design_simulate").rglob("*.log"))
    assert len(simulate_logs) == 4, simulate_logs


CASES = {"toy": lambda root: toy_case(), "real": lambda root: real_case(), "design": design_case}
# All by default: the real quick workflow (results must match a local run), the toy one, which also
# proves a failed job is retried with more time and resumes from its checkpoint, and the design loop whose
# simulations are Slurm jobs.
WORKFLOW_CASES = [name for name in ("real", "toy", "design")
                  if os.environ.get("SLURM_TEST_WORKFLOW", name) == name]


# --------------------------------------------------------------------------------------------
# what the test cluster changes in the profile
# --------------------------------------------------------------------------------------------


def _fmt(value) -> str:
    return "None" if value is None else str(value)


def cluster_overrides(profile: dict, cluster: SlurmTestCluster) -> list[str]:
    """Command-line arguments that adapt profiles/slurm to the one-node test cluster.

    A command-line option replaces the profile's entry of the same name as a whole, so the
    resource tables are rebuilt from the profile with only the site-specific values changed:
    partition -> the test partition, account -> unset, GPUs -> none (the node has none),
    memory -> what the node has; runtimes (including `attempt` expressions) stay as they are.
    """
    node_mem = cluster.mem_mb // 4  # room for a few jobs side by side
    default = dict(profile.get("default-resources") or {})
    default.update(slurm_partition=cluster.partition, slurm_account=None)
    if not isinstance(default.get("mem_mb"), int) or default["mem_mb"] > node_mem:
        default["mem_mb"] = node_mem
    set_resources = []
    for rule, res in (profile.get("set-resources") or {}).items():
        res = dict(res)
        res.pop("gpu_model", None)
        res.pop("slurm_partition", None)  # a GPU partition of the site: use the test partition
        if "gpu" in res:
            res["gpu"] = 0
        if "mem_mb" in res and (not isinstance(res["mem_mb"], int) or res["mem_mb"] > node_mem):
            res["mem_mb"] = node_mem
        set_resources += [f"{rule}:{k}={_fmt(v)}" for k, v in res.items()]
    args = ["--default-resources", *[f"{k}={_fmt(v)}" for k, v in default.items()]]
    if set_resources:
        args += ["--set-resources", *set_resources]
    return args + [
        "--max-threads", str(max(1, cluster.cpus // 2)),  # two jobs side by side on this node
        "--slurm-status-command", "squeue",  # no slurmdbd: sacct cannot answer
        "--slurm-init-seconds-before-status-checks", "2",
        "--seconds-between-status-checks", "2",
        "--slurm-keep-successful-logs",  # the test reads the job ids from the log file names
        "--slurm-logdir", "logs/slurm",
    ]


SUBMITTED = re.compile(r"Job \d+ has been submitted with SLURM jobid (\d+) \(log: (\S+)\)")


def submitted_jobs(snakemake_log: str, logdir: Path) -> dict[str, list[str]]:
    """rule -> Slurm job ids, from Snakemake's log, checked against the plugin's log files."""
    jobs: dict[str, list[str]] = {}
    for jobid, path in SUBMITTED.findall(snakemake_log):
        rel = Path(path).relative_to(logdir)  # rule_<name>/<wildcards>/<jobid>.log
        assert rel.parts[0].startswith("rule_") and rel.name == f"{jobid}.log", path
        assert Path(path).is_file(), f"no Slurm log file {path}"
        jobs.setdefault(rel.parts[0][len("rule_"):], []).append(jobid)
    return jobs


# --------------------------------------------------------------------------------------------
# static checks of the profiles (no cluster)
# --------------------------------------------------------------------------------------------


def test_no_default_profile():
    # Snakemake applies profiles/default/ silently to every run of the workflow.
    assert not (PROFILES / "default").exists()


def test_slurm_profile_contents():
    p = load_profile(SLURM_PROFILE)
    assert p["executor"] == "slurm"
    assert int(p["jobs"]) >= 1
    assert p["rerun-incomplete"] is True and int(p["retries"]) >= 1
    assert p["slurm-logdir"] and p["slurm-requeue"] is True
    assert p["default-resources"]["slurm_account"] == "<YOUR_ACCOUNT>"
    assert p["default-resources"]["slurm_partition"] == "<YOUR_PARTITION>"
    for key in ("mem_mb", "runtime"):
        assert key in p["default-resources"]
    for rule in GPU_RULES:
        res = p["set-resources"][rule]
        assert res["gpu"] >= 1 and "mem_mb" in res and "runtime" in res, rule
    text = (SLURM_PROFILE / "config.yaml").read_text()
    assert "gpu_model" in text and "<YOUR_GPU_MODEL>" in text


def test_local_profile_contents():
    p = load_profile(LOCAL_PROFILE)
    assert "executor" not in p
    assert p["cores"]
    assert any(str(r).startswith("gpu=") for r in p["resources"])


def _names(args_help: str) -> set[str]:
    return set(re.findall(r"(--[a-z0-9-]+)", args_help))


def test_profile_keys_are_snakemake_options():
    """Every profile key is an option of this Snakemake + plugin (a typo would be fatal later)."""
    help_text = subprocess.run([*SNAKEMAKE, "--help"], capture_output=True, text=True, cwd=REPO, timeout=300).stdout
    options = _names(help_text)
    for profile in (SLURM_PROFILE, LOCAL_PROFILE):
        for key in load_profile(profile):
            assert f"--{key}" in options, f"{profile.name}: unknown option --{key}"


@pytest.mark.parametrize("profile", ["local", "slurm"])
def test_profile_dry_run(profile, tmp_path):
    """Snakemake accepts the profile (resources and expressions included) on the toy workflow."""
    out = run_snakemake(["--profile", str(PROFILES / profile), "--snakefile", str(TOY_SNAKEFILE),
                         "--directory", str(tmp_path), "--dry-run"], clean_env(), tmp_path / "dry.log", timeout=300)
    assert re.search(r"\bsearch\b", out)


# --------------------------------------------------------------------------------------------
# the workflow through Slurm
# --------------------------------------------------------------------------------------------


@pytest.mark.slurm
@pytest.mark.parametrize("case_name", WORKFLOW_CASES)
def test_workflow_through_slurm(slurm_cluster: SlurmTestCluster, tmp_path, case_name):
    case = CASES[case_name](tmp_path)
    local_dir, slurm_dir = tmp_path / "local", tmp_path / "slurm"
    for d in (local_dir, slurm_dir):
        d.mkdir()
        if case.prepare_workdir:
            case.prepare_workdir(d)

    # 1. the reference: the same workflow with the local profile
    run_snakemake(["--profile", str(LOCAL_PROFILE), "--cores", str(slurm_cluster.cpus), "--directory", str(local_dir),
                   *case.args], clean_env(case.env), tmp_path / "local.log", case.timeout)

    # 2. through Slurm: the profile plus what this test cluster needs
    overrides = cluster_overrides(load_profile(SLURM_PROFILE), slurm_cluster)
    args = ["--profile", str(SLURM_PROFILE), "--directory", str(slurm_dir), *overrides, *case.slurm_only_args, *case.args]
    (tmp_path / "slurm.cmd").write_text(" ".join(["snakemake", *args]) + "\n")
    t0 = time.monotonic()
    log = run_snakemake(args, slurm_cluster.env(case.env), tmp_path / "slurm.log", case.timeout)
    print(f"Slurm run of the {case.name} workflow: {time.monotonic() - t0:.0f}s; log {tmp_path / 'slurm.log'}")

    # 3. the jobs went through Slurm: submitted, logged by sbatch, completed in slurmctld
    jobs = submitted_jobs(log, slurm_dir / "logs" / "slurm")
    assert jobs, f"no job was submitted to Slurm:\n{log[-3000:]}"
    if case.slurm_rules is not None:
        assert set(jobs) == case.slurm_rules, jobs
    assert case.required_rules <= set(jobs), jobs
    ids = {i for v in jobs.values() for i in v}
    done = slurm_cluster.completed_job_ids()
    queue = slurm_cluster.queue()
    retried = ids - done  # jobs that failed (toy: one on purpose) and were resubmitted
    assert len(retried) == case.failed_jobs, (retried, queue)
    for jobid in ids - retried:
        assert queue.get(jobid, "COMPLETED") == "COMPLETED", (jobid, queue)
    for jobid in ids:
        info = slurm_cluster.job_info(jobid)
        if not info:
            continue  # already purged from slurmctld (MinJobAge); the log above is the record
        assert info["Partition"] == slurm_cluster.partition, info
        assert info["Requeue"] == "1", "profile's slurm-requeue did not reach sbatch"
        assert "gres/gpu" not in info.get("TRES", ""), info
    if case.check_slurm_run:
        case.check_slurm_run(slurm_dir, jobs, slurm_cluster)

    # 4. same results as the local run
    case.compare(local_dir, slurm_dir)


# --------------------------------------------------------------------------------------------
# one training in two Slurm tasks (device.processes: 2, CPU, gloo)
# --------------------------------------------------------------------------------------------


def two_process_config(path: Path) -> Path:
    """The tiny config's digits final training of the DARTS_V2 cell (no search) in 2 processes."""
    config = yaml.safe_load((REPO / "tests" / "config" / "tiny.yaml").read_text())
    digits = json.loads(json.dumps(config["datasets"]["digits"]))  # undo the YAML anchors
    digits["methods"] = ["darts"]
    digits["train"]["genotype"] = "DARTS_V2"
    config.update(datasets={"digits": digits}, device={"type": "cpu", "processes": 2})
    path.write_text(yaml.safe_dump(config))
    return path


@pytest.mark.slurm
def test_two_process_training_through_slurm(slurm_cluster: SlurmTestCluster, tmp_path):
    """The train rule asks Slurm for 2 tasks (`tasks`, `mpi`, `cpus_per_task` from the rule's resources), the
    job's command starts its 2 processes with srun, and they train together with gloo."""
    configfile = two_process_config(tmp_path / "two.yaml")
    (tmp_path / "config").symlink_to(REPO / "config", target_is_directory=True)
    target = "results/digits/methods/darts/seed0/metrics.json"
    overrides = cluster_overrides(load_profile(SLURM_PROFILE), slurm_cluster)
    args = ["--profile", str(SLURM_PROFILE), "--directory", str(tmp_path), *overrides, "--snakefile",
            str(REPO / "Snakefile"), "--configfile", str(configfile), "--", target]
    env = {"PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
    log = run_snakemake(args, slurm_cluster.env(env), tmp_path / "slurm.log", 900)
    jobs = submitted_jobs(log, tmp_path / "logs" / "slurm")
    assert len(jobs.get("train", [])) == 1, jobs
    info = slurm_cluster.job_info(jobs["train"][0])
    if info:  # not yet purged from slurmctld
        assert info["NumTasks"] == "2", info
    metrics = json.loads((tmp_path / target).read_text())
    assert metrics["run_info"]["world_size"] == 2 and metrics["run_info"]["backend"] == "gloo"
    train_log = (tmp_path / "logs" / "digits" / "train_darts_seed0.log").read_text()
    assert "0: " in train_log and "epoch 3/3" in train_log  # srun --label: rank 0's lines, the epochs once
    assert train_log.count("epoch 3/3") == 1, train_log[-2000:]
