"""The command oracle and the simulations table: never simulated twice (across pickers, seeds, generations and
reruns), failures recorded, retried and excluded, the same picks as a lookup of the same values; the loop on
someone else's design space (examples/design) end to end with real Snakemake."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from workflow_lib.config import load_config
from workflow_lib.datasets.fetch import file_record
from workflow_lib.design.command import SimulationRetry, read_results, simulate_batch
from workflow_lib.design.config import DesignError, slot_counts
from workflow_lib.design.run import finish_step, pick_step, simulate_step
from workflow_lib.design.table import Journal, read_table

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "design"
FLAKY = ROOT / "tests" / "design_flaky_simulator.py"


def _space(path: Path, n: int = 300, known: int = 20, seed: int = 0) -> Path:
    """An npz design space like examples/design (8x8 two-material grids), ``known`` rows simulated before."""
    sys.path.insert(0, str(EXAMPLE))
    from simulator import simulate

    rng = np.random.default_rng(seed)
    x = (rng.random((n, 1, 8, 8)) < rng.uniform(0.2, 0.8, (n, 1, 1, 1))).astype(np.uint8)
    y = np.full(n, np.nan)
    y[:known] = [simulate(d) for d in x[:known]]
    np.savez(path, x=x, y=y)
    return path


def _manifest(space: Path) -> Path:
    path = space.with_suffix(".manifest.json")
    path.write_text(json.dumps({"kind": "npz", "files": {"data": file_record(space)}}))
    return path


def _flaky(seen: Path, fail_every: int = 0, transient: int = 0) -> str:
    return (f"{sys.executable} {FLAKY} --designs {{designs}} --out {{out}} --seen {seen} "
            f"--fail-every {fail_every} --transient {transient}")


def _settings(command: str, pickers=None, seeds=(0,), retries=1, batch=4, **design):
    pickers = pickers or {"rf": {"model": "random_forest"}, "random": {"model": "random"}}
    block = {"kind": "npz", "source": {"type": "npz", "path": __file__, "task": "regression", "unlabelled": "drop"},
             "design": {"enabled": True, "seeds": list(seeds), "pickers": pickers, "n_initial": 8,
                        "per_generation": 4, "generations": 2, "random_forest": {"n_estimators": 10},
                        "oracle": {"type": "command", "command": command, "batch": batch, "retries": retries},
                        **design}}
    return load_config({"datasets": {"d": block}})["datasets"]["d"]["design"]


def _drive(root: Path, settings: dict, manifest: Path, journal: Path) -> dict:
    """The command oracle's jobs in order, as the DAG runs them (each simulation retried up to its attempts)."""
    seeds = settings["seeds"]
    slots = slot_counts(settings, len(seeds))
    state, batches = None, []
    for generation, count in enumerate(slots):
        folder = root / f"gen{generation}"
        outs = [str(folder / "slots" / f"b{b}.npz") for b in range(count)]
        pick_step("d", "npz", settings, manifest, generation, state, batches, folder / "state.json", outs, journal,
                  seeds, 1)
        batches = []
        for b, slot in enumerate(outs):
            for attempt in range(1, settings["oracle"]["retries"] + 2):
                try:
                    simulate_step(settings, slot, journal, folder / f"batch{b}.csv", generation, b, attempt)
                    break
                except SimulationRetry:
                    assert attempt <= settings["oracle"]["retries"]
            batches.append(str(folder / f"batch{b}.csv"))
        state = folder / "state.json"
    return finish_step("d", "npz", settings, manifest, state, batches, journal, root / "out", seeds)


def _sent(seen: Path) -> list[int]:
    return [int(i) for line in seen.read_text().splitlines() for i in line.split(":")[1].split()]


def _assert_budgets(document: dict, settings: dict) -> None:
    budget = settings["n_initial"] + settings["generations"] * settings["per_generation"]
    for run in document["runs"]:
        assert run["simulations"] == run["distinct"] == len(set(run["revealed"])) == budget, run["picker"]


# ------------------------------------------------------------------------------------------ in-process
def test_table_is_reused_across_pickers_seeds_and_reruns(tmp_path):
    space = _space(tmp_path / "space.npz")
    manifest, journal, seen = _manifest(space), tmp_path / "simulations", tmp_path / "seen.txt"
    first = _settings(_flaky(seen), seeds=(0,))
    document = _drive(tmp_path / "first", first, manifest, journal)
    _assert_budgets(document, first)
    sent = _sent(seen)
    assert len(sent) == len(set(sent)) == document["oracle"]["sent"] == document["oracle"]["designs"]
    assert not set(sent) & set(range(20))  # given designs are never simulated
    # rerun with a second picker and a second seed: the same journal, fresh generation files
    second = _settings(_flaky(seen), seeds=(0, 1), pickers={"rf": {"model": "random_forest"},
                                                          "rf_ei": {"model": "random_forest", "acquisition": "ei"},
                                                          "random": {"model": "random"}})
    again = _drive(tmp_path / "second", second, manifest, journal)
    _assert_budgets(again, second)
    sent = _sent(seen)
    assert len(sent) == len(set(sent)), "a design went to the simulator twice"
    assert again["oracle"]["reused"] >= len(set(document["runs"][0]["revealed"]))  # seed 0's rf designs, at least
    revealed = {i for run in again["runs"] for i in run["revealed"]}
    table = read_table(tmp_path / "second" / "out" / "simulations.csv")
    assert {int(r["id"]) for r in table} == set(sent) and revealed <= set(sent)
    # the same run twice: nothing new to simulate, the same documents
    before = len(sent)
    third = _drive(tmp_path / "third", second, manifest, journal)
    assert len(_sent(seen)) == before and third["oracle"]["reused"] == len(revealed)
    assert [r["revealed"] for r in third["runs"]] == [r["revealed"] for r in again["runs"]]


def test_failed_simulations_are_recorded_retried_and_excluded(tmp_path):
    space = _space(tmp_path / "space.npz")
    manifest, journal, seen = _manifest(space), tmp_path / "simulations", tmp_path / "seen.txt"
    settings = _settings(_flaky(seen, fail_every=5, transient=3), retries=2)
    document = _drive(tmp_path / "run", settings, manifest, journal)
    _assert_budgets(document, settings)
    counts = Counter(_sent(seen))
    failed = {i for i in counts if i % 5 == 0}
    assert failed and all(counts[i] == 3 for i in failed)  # every attempt of its job, then settled
    # a design seen twice failed on an earlier attempt (the transient batches): never a settled one again
    outcomes = Journal(journal).outcomes()
    assert all(outcomes[i].attempts == counts[i] for i in counts)
    table = {int(r["id"]): r for r in read_table(tmp_path / "run" / "out" / "simulations.csv")}
    for i in failed:
        assert table[i]["status"] == "failed" and table[i]["y"] == "" and table[i]["attempts"] == "3"
        assert Path(table[i]["log"]).is_file()
    assert document["oracle"]["failed"] == len(failed) and document["oracle"]["sent"] == sum(counts.values())
    for run in document["runs"]:
        bad = [i for i in run["revealed"] if i in failed]
        assert run["failed"] == len(bad) == len(run["failed_ids"])
        generation = dict(zip(run["revealed"], [r for r in _generations(run)]))
        # a failed design is never picked again, by this run or another, in a later generation
        for other in document["runs"]:
            for i, g in zip(other["revealed"], _generations(other)):
                assert not (i in failed and i in generation and g > generation[i])


def _generations(run: dict) -> list[int]:
    sizes = [r["simulations"] for r in run["records"]]
    return [g for g, (lo, hi) in enumerate(zip([0] + sizes, sizes)) for _ in range(hi - lo)]


def test_simulate_batch_on_its_last_attempt_records_and_succeeds(tmp_path):
    space = _space(tmp_path / "space.npz", n=30, known=0)
    with np.load(space) as npz:
        ids = np.arange(10, 16)
        np.savez(tmp_path / "slot.npz", x=npz["x"][ids], id=ids)
    seen = tmp_path / "seen.txt"
    command = _flaky(seen, fail_every=4)
    with pytest.raises(SimulationRetry, match="1 of 6 designs failed on attempt 1 of 2"):
        simulate_batch(tmp_path / "slot.npz", tmp_path / "j", tmp_path / "out.csv", command, 0, 0, 1, 2)
    assert not (tmp_path / "out.csv").exists()
    outcomes = simulate_batch(tmp_path / "slot.npz", tmp_path / "j", tmp_path / "out.csv", command, 0, 0, 2, 2)
    assert [line.split(": ")[1] for line in seen.read_text().splitlines()] == ["10 11 12 13 14 15", "12"]
    assert outcomes[12].status == "failed" and outcomes[12].attempts == 2 and outcomes[11].status == "ok"
    rows = {int(r["id"]): r for r in read_table(tmp_path / "out.csv")}
    assert sorted(rows) == list(range(10, 16)) and rows[12]["status"] == "failed"


def test_the_command_gets_what_the_template_says(tmp_path):
    ids = np.array([3, 7])
    np.savez(tmp_path / "slot.npz", x=np.zeros((2, 1, 2, 2), np.float32), id=ids)
    # braces other than {designs} and {out} reach the shell untouched; paths are quoted
    command = ("awk 'BEGIN {print \"id,y\"; print \"3,1.5\"; print \"7,nan\"}' > {out}; "
               "test -s {designs} && echo {designs} >/dev/null")
    outcomes = simulate_batch(tmp_path / "slot.npz", tmp_path / "j 1", tmp_path / "out.csv", command, 0, 0, 1, 1)
    assert outcomes[3].y == 1.5 and outcomes[7].status == "failed"


def test_results_csv_rows_that_give_nothing(tmp_path):
    path = tmp_path / "r.csv"
    path.write_text("id,y\n1,2.0\n2,inf\n3,1\n3,2\nx,1\n9,1\n4,\n5,0.5")
    assert read_results(path, {1, 2, 3, 4, 5}) == {1: 2.0, 5: 0.5}
    assert read_results(tmp_path / "missing.csv", {1}) == {}


def test_the_journal_refuses_another_simulator_or_design_file(tmp_path):
    journal = Journal(tmp_path / "j")
    journal.bind("sim {designs} {out}", "abc", 10)
    journal.bind("sim {designs} {out}", "abc", 10)
    with pytest.raises(DesignError, match="another command"):
        journal.bind("other {designs} {out}", "abc", 10)
    with pytest.raises(DesignError, match="another design candidates"):
        journal.bind("sim {designs} {out}", "xyz", 10)


def test_command_and_lookup_pick_the_same_designs(tmp_path):
    """The kirigami surrogate as a command (simulate-kirigami) on an npz of cut patterns, against a lookup of
    the same values: the same picks, the same documents."""
    from workflow_lib.design.run import design_step
    from workflow_lib.kirigami import sample_valid_patterns
    from workflow_lib.kirigami.surrogate import simulate

    patterns = sample_valid_patterns(200, 0).reshape(-1, 1, 3, 5).astype(np.uint8)
    truth = simulate(patterns[:, 0]).targets[:, 0].astype(np.float32).astype(np.float64)
    np.savez(tmp_path / "lookup.npz", x=patterns, y=truth)
    np.savez(tmp_path / "command.npz", x=patterns, y=np.full(len(patterns), np.nan))
    command = (f"{sys.executable} -m workflow_lib simulate-kirigami --designs {{designs}} --out {{out}} "
               "--target yield_strain")
    pickers = {"rf": {"model": "random_forest"}, "rf_ucb": {"model": "random_forest", "acquisition": "ucb",
                                                           "batch": "diverse"}}
    settings = _settings(command, pickers=pickers, batch=50, retries=0)
    via_command = _drive(tmp_path / "c", settings, _manifest(tmp_path / "command.npz"), tmp_path / "j")
    lookup = {**settings, "oracle": {**settings["oracle"], "type": "lookup", "command": None}}
    via_lookup = design_step("d", "npz", lookup, _manifest(tmp_path / "lookup.npz"), tmp_path / "l", [0], 1)
    for a, b in zip(via_command["runs"], via_lookup["runs"]):
        assert a["revealed"] == b["revealed"] and a["top_designs"][0]["value"] == b["top_designs"][0]["value"]
        assert [r["best"] for r in a["records"]] == [r["best"] for r in b["records"]]
    assert via_lookup["true"] is not None and via_command["true"] is None


def test_unlabelled_rows_need_the_command_oracle_and_drop(tmp_path):
    from workflow_lib.config.types import DataConfig
    from workflow_lib.datasets.npz import NpzFormatError, prepare
    from workflow_lib.design.space import npz_space

    space = _space(tmp_path / "space.npz", n=40, known=10)
    manifest = json.loads(_manifest(space).read_text())
    with pytest.raises(DesignError, match="lookup oracle needs every design's target"):
        npz_space(space, "lookup")
    keep = DataConfig.from_dict({"kind": "npz", "source": {"type": "npz", "path": str(space), "task": "regression"}})
    with pytest.raises(NpzFormatError, match="set source.unlabelled: drop"):
        prepare(keep, manifest)
    drop = DataConfig.from_dict({"kind": "npz", "source": {"type": "npz", "path": str(space), "task": "regression",
                                                          "unlabelled": "drop"}})
    data = prepare(drop, manifest)
    assert data.n == 10 and np.isfinite(data.y).all() and data.provenance["unlabelled_dropped"] == 30
    np.savez(tmp_path / "none.npz", x=np.zeros((3, 1, 2, 2)), y=np.full(3, np.nan))
    none = DataConfig.from_dict({"kind": "npz", "source": {"type": "npz", "path": str(tmp_path / "none.npz"),
                                                          "task": "regression", "unlabelled": "drop"}})
    with pytest.raises(NpzFormatError, match="NaN in every row"):
        prepare(none, json.loads(_manifest(tmp_path / "none.npz").read_text()))


# ------------------------------------------------------------------------------------------ real Snakemake
def example_config(workdir: Path, seen: Path, seeds: list[int]) -> dict:
    """examples/design/config.yaml, smaller, with the flaky simulator and its files in ``workdir``."""
    import yaml

    config = yaml.safe_load((EXAMPLE / "config.yaml").read_text())
    config.update(results_dir="results", checkpoint_dir="checkpoints", log_dir="logs", seeds=[0])
    for name, block in config["datasets"].items():
        block["source"]["path"] = str(workdir / Path(block["source"]["path"]).name)
        block["design"].update(seeds=seeds, n_initial=6, per_generation=3, generations=2)
        block["baselines"]["random_forest"]["n_estimators"] = 20
        block["design"]["random_forest"]["n_estimators"] = 20
    oracle = config["datasets"]["conductor"]["design"]["oracle"]
    oracle.update(command=_flaky(seen, fail_every=7, transient=5), batch=3, retries=2)
    return config


def make_example_spaces(workdir: Path) -> None:
    for extra in ([], ["--all-known"]):
        out = workdir / ("space_known.npz" if extra else "space.npz")
        subprocess.run([sys.executable, str(EXAMPLE / "make_space.py"), "--n", "400", "--known", "60", "--out",
                        str(out), *extra], check=True, capture_output=True)


@pytest.mark.workflow
def test_design_loop_on_someone_elses_design_space(tmp_path):
    from workflow_helpers import planned_jobs, run_snakemake, write_config

    make_example_spaces(tmp_path)
    seen = tmp_path / "seen.txt"
    config = write_config(tmp_path / "config.yaml", example_config(tmp_path, seen, [0, 1]))
    targets = ["results/conductor/design/design.json", "results/conductor_lookup/design/design.json",
               "results/conductor/summary.json"]
    dry = run_snakemake(tmp_path, "-n", "--cores", "2", *targets, configfile=config)
    jobs = planned_jobs(dry.stdout + dry.stderr)
    assert jobs["design_pick"] == 3 and jobs["design"] == 2 and jobs["design_simulate"] == 4 + 2 * 8
    run_snakemake(tmp_path, "--cores", "2", *targets, configfile=config)

    design = json.loads((tmp_path / "results/conductor/design/design.json").read_text())
    settings = {"n_initial": 6, "generations": 2, "per_generation": 3}
    _assert_budgets(design, settings)
    counts = Counter(_sent(seen))
    outcomes = {int(r["id"]): r for r in read_table(tmp_path / "results/conductor/design/simulations.csv")}
    assert set(counts) == set(outcomes) and not set(counts) & set(range(60))  # the given designs stay given
    for i, n in counts.items():  # sent again only after a failed attempt: the retries of its job
        assert n == 1 or i % 7 == 0 or i % 5 == 0 or outcomes[i]["attempts"] == str(n), (i, n)
        assert outcomes[i]["attempts"] == str(n)
    assert {i for i in outcomes if outcomes[i]["status"] == "failed"} == {i for i in counts if i % 7 == 0}
    assert design["oracle"]["failed"] == sum(i % 7 == 0 for i in counts) and design["n_given"] == 60
    lookup = json.loads((tmp_path / "results/conductor_lookup/design/design.json").read_text())
    _assert_budgets(lookup, settings)
    assert lookup["true"]["best"] > 0 and "found_top10" in lookup["runs"][0]["records"][-1]
    summary = json.loads((tmp_path / "results/conductor/summary.json").read_text())
    assert "random_forest" in summary["methods"]  # trained and tested on the 60 labelled rows

    assert planned_jobs(run_snakemake(tmp_path, "-n", "--cores", "2", *targets, configfile=config).stdout) == {}
    # a third seed: the picks rerun, the simulator sees only designs it never saw
    before = set(counts)
    config = write_config(tmp_path / "config3.yaml", example_config(tmp_path, seen, [0, 1, 2]))
    run_snakemake(tmp_path, "--cores", "2", targets[0], configfile=config)
    again = json.loads((tmp_path / "results/conductor/design/design.json").read_text())
    _assert_budgets(again, settings)
    later = _sent(seen)[sum(counts.values()):]
    assert not set(later) & before and again["oracle"]["reused"] > 0


def test_kirigami_designs_go_to_the_surrogate_command(tmp_path):
    """Kirigami with the command oracle: the slot file holds the sheet images and the cut patterns, and
    simulate-kirigami answers with the values of the lookup table (float32, like the prepared data)."""
    from workflow_lib.design.space import kirigami_space
    from workflow_lib.kirigami.command import simulate_designs
    from workflow_lib.kirigami.surrogate import simulate

    from test_design_loop import _md_like

    space = kirigami_space(_md_like(), "command")
    designs = space.designs(np.array([0, 17, 29790]))
    assert designs["x"].shape == (3, 1, 32, 80) and designs["pattern"].shape == (3, 3, 5)
    assert space.truth is None and not np.isfinite(space.given).any()
    np.savez(tmp_path / "d.npz", **designs)
    assert simulate_designs(tmp_path / "d.npz", tmp_path / "out.csv", "toughness") == 3
    rows = list(csv.DictReader(open(tmp_path / "out.csv")))
    expected = simulate(designs["pattern"]).targets[:, 1].astype(np.float32).astype(float)
    assert [int(r["id"]) for r in rows] == [0, 17, 29790] and [float(r["y"]) for r in rows] == list(expected)
