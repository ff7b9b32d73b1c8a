"""Files from shared storage never run code: checkpoints load with torch's safe loader, CIFAR-10 batches are
checked against the published checksums and read with a restricted unpickler, and no code path loads a file
any other way. The step-level cases (one per place a file is loaded from) are in test_bad_input.py; the
workflow-level case, every .pt replaced by a malicious pickle and ``--forceall``, is at the end."""

from __future__ import annotations

import ast
import json
import pickle
import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch

from fakes.cifar10 import write_fake_cifar10
from fakes.malicious import malicious_bytes, write_malicious
from workflow_helpers import ROOT, default_config, run_snakemake, write_config
from workflow_lib.datasets import cifar10
from workflow_lib.engine.loop import EpochLoop
from workflow_lib.io import file_digest


# ----------------------------------------------------------------------------------------------- the fake
@pytest.mark.parametrize("form", ["pickle", "torch"])
def test_the_planted_files_do_run_code_when_loaded_unsafely(tmp_path, form):
    """The control: without the safe loaders the payload runs (so the tests below mean something)."""
    marker = tmp_path / "code-ran"
    path = tmp_path / "planted"
    path.write_bytes(malicious_bytes(marker, form))
    if form == "pickle":
        pickle.loads(path.read_bytes())
    else:
        torch.load(path, weights_only=False)
    assert marker.exists()


# ------------------------------------------------------------------------------------------- checkpoints
@pytest.mark.parametrize("form", ["pickle", "torch"])
def test_epoch_loop_refuses_a_planted_checkpoint(tmp_path, form):
    marker = tmp_path / "code-ran"
    path = tmp_path / "ckpt.pt"
    payload = write_malicious(path, marker, form)
    messages: list[str] = []
    model = torch.nn.Linear(2, 1)
    loop = EpochLoop(path, {"model": model}, 1, log=messages.append)
    loop.run(lambda epoch: {"train_loss": 0.0})
    assert not marker.exists()
    assert loop.resumed_from == 0 and loop.epoch == 1
    aside = tmp_path / "ckpt.pt.unusable"
    assert aside.read_bytes() == payload
    warning = messages[0]
    assert warning.startswith(f"WARNING checkpoint {path} is refused as unsafe: not a plain checkpoint")
    assert "GLOBAL posix.system" in warning and f"moved it to {aside} and starting afresh" in warning
    assert torch.load(path, weights_only=True)["epoch"] == 1  # the new checkpoint is plain data


def test_checkpoint_with_numpy_values_in_history_and_extra_loads_safely(tmp_path):
    """history / extra may hold NumPy scalars and arrays (metrics, alphas): saved as plain numbers and lists."""
    path = tmp_path / "ckpt.pt"
    loop = EpochLoop(path, {"g": torch.Generator().manual_seed(0)}, 2, log=lambda m: None)
    loop.extra["alphas"] = np.ones((2, 3))
    loop.run(lambda epoch: {"val_metric": np.float64(0.5), "steps": np.int64(3)}, stop_after=1)
    state = torch.load(path, weights_only=True)
    assert state["extra"]["alphas"] == [[1.0] * 3] * 2 and state["history"][0]["val_metric"] == 0.5
    resumed = EpochLoop(path, {"g": torch.Generator()}, 2, log=lambda m: None)
    resumed.run(lambda epoch: {"val_metric": 0.25})
    assert resumed.resumed_from == 1 and resumed.extra["alphas"] == [[1.0] * 3] * 2


UNSAFE_UNLESS = {  # call -> the keyword value that makes it safe; None: never allowed outside the one reader
    "torch.load": ("weights_only", True),  # explicit, whatever torch's default
    "pickle.load": None,
    "pickle.loads": None,
    "pickle.Unpickler": None,
    "yaml.load": None,
    "yaml.unsafe_load": None,
    "torch.jit.load": None,
}
UNSAFE_IF = {"np.load": ("allow_pickle", True), "numpy.load": ("allow_pickle", True)}  # NumPy's default is safe
ONE_READER = {("workflow_lib/datasets/cifar10.py", "pickle.Unpickler")}  # the restricted unpickler's base class


def _loads(path: Path) -> list[tuple[str, dict, int]]:
    """(dotted name, literal keywords, line) of every call or mention of a loader in a Python file."""
    tree = ast.parse(path.read_text())
    calls = {id(node.func): node for node in ast.walk(tree) if isinstance(node, ast.Call)}
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and ast.unparse(node) in {*UNSAFE_UNLESS, *UNSAFE_IF}:
            call = calls.get(id(node))
            keywords = {k.arg: getattr(k.value, "value", k.value) for k in (call.keywords if call else [])}
            found.append((ast.unparse(node), keywords, node.lineno))
    return found


def _unsafe(name: str, keywords: dict) -> bool:
    if name in UNSAFE_IF:
        key, bad = UNSAFE_IF[name]
        return keywords.get(key, not bad) is not False
    rule = UNSAFE_UNLESS[name]
    return rule is None or keywords.get(rule[0]) is not rule[1]


def test_no_code_path_loads_a_file_that_could_run_code():
    """Every torch.load / np.load in the workflow, tests and bench is the safe form; nothing else unpickles."""
    files = [p for folder in ("workflow_lib", "bench", "scripts", "tests") for p in sorted((ROOT / folder).rglob("*.py"))]
    problems = []
    for path in files:
        rel = str(path.relative_to(ROOT))
        for name, keywords, line in _loads(path):
            if (rel, name) in ONE_READER or (rel == "tests/test_untrusted_files.py" and name in (
                    "pickle.loads", "pickle.load", "torch.load") and keywords.get("weights_only") is not True):
                continue  # the restricted CIFAR-10 reader; this module's control and its loads of what it planted
            if _unsafe(name, keywords):
                problems.append(f"{rel}:{line}: {name}({', '.join(f'{k}={v}' for k, v in keywords.items())})")
    assert not problems, problems
    for smk in [ROOT / "Snakefile", *(ROOT / "rules").glob("*.smk")]:
        assert "pickle" not in smk.read_text() and "torch.load" not in smk.read_text(), smk


# -------------------------------------------------------------------------------------------- CIFAR-10
def test_cifar10_checksums_come_from_torchvision():
    from torchvision.datasets import CIFAR10

    sums = cifar10.official_md5()
    assert set(sums) == set(cifar10.FILES) and sums["data_batch_1"] == "c99cafc152244af753f735de768cd75f"
    assert sums["batches.meta"] == CIFAR10.meta["md5"] and cifar10.ARCHIVE_MD5 == CIFAR10.tgz_md5


def test_cifar10_copy_matching_the_published_sums_needs_no_trust(tmp_path, monkeypatch):
    """Stands in for the real files: the published sums are made the fake's, and nothing else changes."""
    folder = write_fake_cifar10(tmp_path / "c", n_per_batch=4, n_test=4)
    monkeypatch.setattr(cifar10, "official_md5", lambda: {n: file_digest(folder / n, "md5") for n in cifar10.FILES})
    assert cifar10.verify(folder, trust_unverified=False) is True
    data, labels, names, n_train = cifar10.read_cifar10(folder)
    assert data.shape == (24, 3, 32, 32) and n_train == 20 and names[0] == "airplane"


def test_cifar10_reader_takes_python2_numpy_pickles_and_nothing_else(tmp_path):
    """The official batches are Python-2 pickles naming numpy.core.multiarray; NumPy 2 writes numpy._core."""
    entry = {b"data": np.arange(2 * 3072, dtype=np.uint8).reshape(2, 3072), b"labels": [1, 2], "count": np.int64(2)}
    modern = pickle.dumps(entry, protocol=2)
    assert b"numpy._core.multiarray" in modern
    for name, raw in (("modern", modern), ("legacy", modern.replace(b"numpy._core.multiarray", b"numpy.core.multiarray"))):
        (tmp_path / name).write_bytes(raw)
        loaded = cifar10._load_pickle(tmp_path / name)
        assert loaded["labels"] == [1, 2] and np.array_equal(loaded["data"], entry[b"data"]) and loaded["count"] == 2
    marker = tmp_path / "code-ran"
    write_malicious(tmp_path / "evil", marker, form="pickle")
    with pytest.raises(cifar10.DataError, match="refused posix.system"):
        cifar10._load_pickle(tmp_path / "evil")
    assert not marker.exists()


# ------------------------------------------------------------------------------------- the whole workflow
@pytest.mark.workflow
def test_every_pt_replaced_by_a_malicious_pickle_then_forceall_runs_no_code(tmp_path):
    """The issue's 'done when': a fresh run, every .pt under results_dir and checkpoint_dir replaced by a pickle
    that would run a command, then ``snakemake --forceall``: no code runs, every planted checkpoint is refused
    with a warning naming it, and the run completes afresh (digits only, tiny settings, to stay short)."""
    config = default_config()
    digits = config["datasets"]["digits"]
    digits["methods"] = ["darts", "tiny_resnet", "random_search"]
    digits["search"].update(order="first", epochs=2, max_steps_per_epoch=2)
    config["datasets"] = {"digits": digits}
    configfile = write_config(tmp_path / "digits.yaml", config)
    run_snakemake(tmp_path, "--cores", "2", configfile=configfile)

    marker = tmp_path / "code-ran"
    planted = sorted(p for folder in ("results", "checkpoints") for p in (tmp_path / folder).rglob("*.pt"))
    assert {p.parent.name if p.name == "ckpt.pt" else p.name for p in planted} >= {
        "supernet.pt", "cand0.pt", "final", "seed0"}  # search/train/tiny_resnet ckpt.pt sit in seed0/
    assert len(planted) >= 6
    payloads = {path: write_malicious(path, marker) for path in planted}
    result = run_snakemake(tmp_path, "--cores", "2", "--forceall", configfile=configfile)
    assert not marker.exists()
    logs = "\n".join(p.read_text() for p in (tmp_path / "logs").rglob("*.log"))
    refused = set()
    for path in planted:
        relative = path.relative_to(tmp_path)
        if relative.parts[0] == "results":  # an output (supernet.pt): rewritten by the rerun, and plain
            assert torch.load(path, weights_only=True)
        elif f"checkpoint {relative} is refused as unsafe: not a plain checkpoint" in logs:
            assert (path.parent / (path.name + ".unusable")).read_bytes() == payloads[path]
            refused.add(str(relative.parent.relative_to("checkpoints/digits")))
        else:  # a random-search candidate or advantage cell recorded as finished (candidates.json, cells.json):
            # never read again
            finished = path.parent.name == "candidates" or relative.parts[2] == "search_advantage"
            assert finished and path.read_bytes() == payloads[path], relative
    assert refused == {"search/seed0", "train/seed0", "tiny_resnet/seed0", "random_search/seed0/final"}
    summary = json.loads((tmp_path / "results" / "digits" / "summary.json").read_text())
    assert set(summary["methods"]) == {"darts", "tiny_resnet", "random_search"}, summary
    assert result.returncode == 0
