"""Every dataset kind fetches and prepares; error messages; nothing partial on failure."""

import functools
import http.server
import json
import sys
import threading
from pathlib import Path

import numpy as np
import pytest

from workflow_lib.config.load import ConfigError, load_config
from workflow_lib.config.stage import StageConfig, stage_document
from workflow_lib.datasets import DATASETS, DataUnavailableError, PreparedData
from workflow_lib.datasets.run import fetch_step, prepare_step
from workflow_lib.kirigami import KirigamiFormatError, TARGET_NAMES, sample_valid_patterns, write_raw

sys.path.insert(0, str(Path(__file__).parent))
from fakes.cifar10 import write_fake_cifar10  # noqa: E402

UNREACHABLE = "http://127.0.0.1:9/x.dat"


def stage_for(block: dict, name: str = "ds") -> StageConfig:
    config = load_config({"datasets": {name: block}})
    return StageConfig.from_dict(stage_document(config, name, "prepare"))


def write_md_fixture(path: Path, n: int = 12, seed: int = 0) -> Path:
    patterns = sample_valid_patterns(n, seed)
    targets = np.random.default_rng(seed).uniform(0.05, 2.0, size=(n, 3))
    return write_raw(path, patterns, targets)


def fake_generate_raw_file(path, n_patterns=None, seed=0, workers=1):
    """Stands in for the (slow) lattice-spring surrogate: same files, random targets."""
    path = Path(path)
    write_md_fixture(path, n_patterns or 10, seed)
    sidecar = {"source": "surrogate", "model": "fake", "n_patterns": n_patterns, "seed": seed}
    Path(f"{path}.provenance.json").write_text(json.dumps(sidecar))
    return path


@pytest.fixture
def fast_surrogate(monkeypatch):
    from workflow_lib.kirigami import surrogate

    monkeypatch.setattr(surrogate, "generate_raw_file", fake_generate_raw_file)


def block_for(kind: str, tmp_path: Path) -> dict:
    if kind == "kirigami":
        return {"kind": "kirigami", "source": {"type": "surrogate", "n_patterns": 40}, "target": "toughness"}
    if kind == "cifar10":
        write_fake_cifar10(tmp_path / "cifar", n_per_batch=8, n_test=10)
        return {"kind": "cifar10", "source": {"path": str(tmp_path / "cifar"), "download": False,
                                              "trust_unverified": True}}  # the fake is no official file
    if kind == "digits":
        return {"kind": "digits", "source": {"subset": 200}}
    if kind == "npz":
        rng = np.random.default_rng(0)
        np.savez(tmp_path / "mine.npz", x=rng.random((25, 2, 6, 6)), y=rng.integers(0, 3, 25))
        return {"kind": "npz", "source": {"path": str(tmp_path / "mine.npz"), "task": "classification"}}
    raise AssertionError(f"no test block for dataset kind {kind!r}: add one")


@pytest.mark.parametrize("kind", sorted(DATASETS))
def test_every_kind_fetches_and_prepares(kind, tmp_path, fast_surrogate):
    stage = stage_for(block_for(kind, tmp_path))
    manifest_path = tmp_path / "results" / "ds" / "data" / "manifest.json"
    out = tmp_path / "results" / "ds" / "data" / "prepared.npz"
    fetch_step(stage, manifest_path)
    manifest = json.loads(manifest_path.read_text())
    assert manifest["kind"] == kind and manifest["dataset"] == "ds"
    for record in manifest["files"].values():
        assert len(record["sha256"]) == 64
    prepare_step(stage, manifest_path, out)

    data = PreparedData.load(out)
    assert data.x.dtype == np.float32 and data.x.ndim == 4
    assert 0.0 <= data.x.min() and data.x.max() <= 1.0
    assert data.split.dtype == np.int8 and set(np.unique(data.split)) == {0, 1, 2}
    assert len(data.test_index) == round(0.2 * data.n)
    assert data.provenance["n_samples"] == data.n and data.provenance["dataset"] == "ds"
    assert data.provenance["source"] in {"md", "surrogate", "torchvision", "sklearn", "npz"}
    summary = json.loads(out.with_suffix(".json").read_text())
    assert summary["n"] == data.n and summary["shape"] == list(data.x.shape)
    assert sum(summary["split_sizes"].values()) == data.n
    if data.task == "regression":
        assert data.out_dim == 1 and data.y.dtype == np.float32
        assert set(summary["target_stats"]) == set(data.target_names)
    else:
        assert data.out_dim == len(data.class_names) and data.y.dtype == np.int64
        assert sum(summary["class_counts"]) == data.n
    assert not [p.name for p in out.parent.iterdir() if p.name.startswith(".")]  # no temp files left

    expected = {
        "kirigami": ((40, 1, 32, 80), "surrogate"),
        "cifar10": ((50, 3, 32, 32), "torchvision"),
        "digits": ((200, 1, 8, 8), "sklearn"),
        "npz": ((25, 2, 6, 6), "npz"),
    }
    shape, source = expected[kind]
    assert data.x.shape == shape and data.provenance["source"] == source


def test_kirigami_md_from_local_path(tmp_path):
    raw = write_md_fixture(tmp_path / "md.dat", n=15)
    stage = stage_for({"kind": "kirigami", "source": {"type": "md", "path": str(raw)}, "target": "yield_stress", "pad_rows": 0})
    fetch_step(stage, tmp_path / "d" / "manifest.json")
    prepare_step(stage, tmp_path / "d" / "manifest.json", tmp_path / "d" / "prepared.npz")
    data = PreparedData.load(tmp_path / "d" / "prepared.npz")
    assert data.x.shape == (15, 1, 30, 80) and set(np.unique(data.x)) <= {0.0, 1.0}
    assert data.target == "yield_stress" and data.target_names == TARGET_NAMES
    np.testing.assert_allclose(data.y, data.targets[:, 2])
    np.testing.assert_array_equal(data.coarse.reshape(15, 15), sample_valid_patterns(15, 0))
    prov = data.provenance
    assert prov["source"] == "md" and "Hanakata et al. 2018" in prov["description"]
    assert prov["sha256"] and prov["path"] == str(raw)


def test_kirigami_md_offline_error_names_url_and_path(tmp_path):
    stage = stage_for({"kind": "kirigami", "source": {"type": "md", "url": UNREACHABLE}}, name="kiri")
    manifest_path = tmp_path / "data" / "manifest.json"
    with pytest.raises(DataUnavailableError) as info:
        fetch_step(stage, manifest_path)
    message = str(info.value)
    assert UNREACHABLE in message
    assert str(tmp_path / "data" / "15grid_shuffled.dat") in message
    assert "datasets.kiri.source.path" in message
    assert list((tmp_path / "data").iterdir()) == []  # no manifest, no partial download


def test_kirigami_md_file_put_where_the_error_says_is_used(tmp_path):
    write_md_fixture(tmp_path / "data" / "15grid_shuffled.dat", n=8)
    stage = stage_for({"kind": "kirigami", "source": {"type": "md", "url": UNREACHABLE, "download": False}})
    fetch_step(stage, tmp_path / "data" / "manifest.json")
    prepare_step(stage, tmp_path / "data" / "manifest.json", tmp_path / "data" / "prepared.npz")
    assert PreparedData.load(tmp_path / "data" / "prepared.npz").provenance["source"] == "md"


def test_kirigami_md_download_disabled_and_missing_path(tmp_path):
    stage = stage_for({"kind": "kirigami", "source": {"type": "md", "url": UNREACHABLE, "download": False}})
    with pytest.raises(DataUnavailableError, match="download is false"):
        fetch_step(stage, tmp_path / "manifest.json")
    with pytest.raises(ConfigError, match=r"'datasets.ds.source.path': data file .*nope.dat does not exist"):
        stage_for({"kind": "kirigami", "source": {"type": "md", "path": str(tmp_path / "nope.dat")}})
    stage = StageConfig.from_dict({"dataset": "ds", "kind": "kirigami", "stage": "raw_data", "settings": {
        "kind": "kirigami", "source": {"type": "md", "path": str(tmp_path / "nope.dat")}}})
    with pytest.raises(DataUnavailableError, match="nope.dat"):  # the file vanished after the config was checked
        fetch_step(stage, tmp_path / "manifest.json")
    assert not (tmp_path / "manifest.json").exists()


def test_kirigami_md_bad_file_names_line(tmp_path):
    raw = write_md_fixture(tmp_path / "md.dat", n=5)
    lines = raw.read_text().splitlines()
    lines[2] = lines[2].replace(" ", " x", 1)
    raw.write_text("\n".join(lines) + "\n")
    stage = stage_for({"kind": "kirigami", "source": {"type": "md", "path": str(raw)}})
    with pytest.raises(KirigamiFormatError, match=r"md\.dat:3"):
        fetch_step(stage, tmp_path / "d" / "manifest.json")
    assert not (tmp_path / "d" / "manifest.json").exists()


@pytest.fixture
def http_dir(tmp_path):
    served = tmp_path / "served"
    served.mkdir()
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(served))
    handler.log_message = lambda *args: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield served, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_kirigami_md_download_is_validated_and_atomic(tmp_path, http_dir):
    served, base = http_dir
    write_md_fixture(served / "good.dat", n=10)
    (served / "bad.dat").write_text("<html>not data</html>\n")
    raw_dir = tmp_path / "data"

    bad = stage_for({"kind": "kirigami", "source": {"type": "md", "url": f"{base}/bad.dat"}})
    with pytest.raises(DataUnavailableError, match="not valid kirigami"):
        fetch_step(bad, raw_dir / "manifest.json")
    assert list(raw_dir.iterdir()) == []

    good = stage_for({"kind": "kirigami", "source": {"type": "md", "url": f"{base}/good.dat"}})
    fetch_step(good, raw_dir / "manifest.json")
    manifest = json.loads((raw_dir / "manifest.json").read_text())
    assert manifest["provenance"]["url"] == f"{base}/good.dat"
    assert (raw_dir / "15grid_shuffled.dat").read_bytes() == (served / "good.dat").read_bytes()
    # a second fetch reuses the downloaded file even offline
    (served / "good.dat").unlink()
    fetch_step(good, raw_dir / "manifest2.json")


def test_cifar10_offline_error(tmp_path, monkeypatch):
    stage = stage_for({"kind": "cifar10", "source": {"path": str(tmp_path / "c"), "download": False}}, name="cif")
    with pytest.raises(DataUnavailableError) as info:
        fetch_step(stage, tmp_path / "d" / "manifest.json")
    message = str(info.value)
    assert "cifar-10-python.tar.gz" in message and str(tmp_path / "c" / "cifar-10-batches-py") in message
    assert "datasets.cif.source.path" in message

    from workflow_lib.datasets import cifar10

    def offline(root):
        raise OSError("network is unreachable")

    monkeypatch.setattr(cifar10, "_torchvision_download", offline)
    stage = stage_for({"kind": "cifar10", "source": {"path": str(tmp_path / "c"), "download": True}})
    with pytest.raises(DataUnavailableError, match="could not download CIFAR-10 from https://www.cs.toronto.edu"):
        fetch_step(stage, tmp_path / "d" / "manifest.json")
    assert not (tmp_path / "d" / "manifest.json").exists()


def test_cifar10_pools_train_and_test_and_subsets(tmp_path):
    write_fake_cifar10(tmp_path / "c", n_per_batch=6, n_test=10)
    stage = stage_for({"kind": "cifar10", "source": {"path": str(tmp_path / "c"), "subset": 24, "seed": 3,
                                                     "trust_unverified": True}})
    fetch_step(stage, tmp_path / "d" / "manifest.json")
    manifest = json.loads((tmp_path / "d" / "manifest.json").read_text())
    assert manifest["provenance"]["official_md5_match"] is False
    prepare_step(stage, tmp_path / "d" / "manifest.json", tmp_path / "d" / "p.npz")
    data = PreparedData.load(tmp_path / "d" / "p.npz")
    assert data.x.shape == (24, 3, 32, 32) and data.class_names[0] == "airplane"
    assert data.provenance["n_pool"] == 40 and "official" in data.provenance["split_note"]


def test_digits_values():
    from workflow_lib.config import DataConfig
    from sklearn.datasets import load_digits

    cfg = DataConfig.from_dict({"kind": "digits"})
    data = DATASETS["digits"].prepare(cfg, DATASETS["digits"].fetch(cfg, Path(".")))
    digits = load_digits()
    assert data.x.shape == (1797, 1, 8, 8) and data.x.max() == 1.0
    np.testing.assert_allclose(data.x[:, 0] * 16, digits.images)
    assert data.class_names == tuple("0123456789")


def test_surrogate_reuse_and_real_generator(tmp_path):
    """The real lattice-spring surrogate, kept tiny (3 patterns); the file is reused when its sidecar matches."""
    from workflow_lib.config import DataConfig
    from workflow_lib.datasets import kirigami as kds

    cfg = DataConfig.from_dict({"kind": "kirigami", "source": {"type": "surrogate", "n_patterns": 3, "seed": 5}})
    first = kds.fetch(cfg, tmp_path)
    assert first["reused"] is False
    assert first["provenance"]["surrogate"]["n_patterns"] == 3
    path = tmp_path / kds.SURROGATE_FILE
    sidecar = Path(f"{path}.provenance.json")
    assert kds._surrogate_reusable(path, sidecar, 3, 5)
    assert not kds._surrogate_reusable(path, sidecar, 3, 6)  # another seed
    assert not kds._surrogate_reusable(path, sidecar, 4, 5)  # another size
    assert kds.fetch(cfg, tmp_path)["reused"] is True
    data = kds.prepare(cfg, first)
    assert data.provenance["source"] == "surrogate" and "SURROGATE, not MD" in data.provenance["description"]
    assert data.provenance["surrogate"]["model"]
    path.write_text(path.read_text() + "\n")  # changed file -> sha256 no longer matches the sidecar
    assert not kds._surrogate_reusable(path, sidecar, 3, 5)


def test_prepare_failure_leaves_previous_output_untouched(tmp_path):
    rng = np.random.default_rng(0)
    npz_path = tmp_path / "mine.npz"
    np.savez(npz_path, x=rng.random((20, 1, 4, 4)), y=rng.random(20))
    stage = stage_for({"kind": "npz", "source": {"path": str(npz_path), "task": "regression"}})
    d = tmp_path / "d"
    fetch_step(stage, d / "manifest.json")
    prepare_step(stage, d / "manifest.json", d / "prepared.npz")
    before = {p.name: p.read_bytes() for p in d.iterdir()}

    # the raw file changes after the fetch: prepare refuses, old outputs stay as they were
    np.savez(npz_path, x=rng.random((20, 1, 4, 4)), y=rng.random(20))
    with pytest.raises(ValueError, match="changed since it was fetched"):
        prepare_step(stage, d / "manifest.json", d / "prepared.npz")
    # a fresh output path stays absent
    with pytest.raises(ValueError):
        prepare_step(stage, d / "manifest.json", d / "fresh.npz")
    assert {p.name: p.read_bytes() for p in d.iterdir()} == before


def test_prepare_without_manifest_or_with_wrong_kind(tmp_path):
    stage = stage_for({"kind": "digits"})
    with pytest.raises(DataUnavailableError, match="run the fetch step"):
        prepare_step(stage, tmp_path / "manifest.json", tmp_path / "p.npz")
    (tmp_path / "manifest.json").write_text(json.dumps({"kind": "cifar10", "files": {}}))
    with pytest.raises(ValueError, match="kind 'cifar10'"):
        prepare_step(stage, tmp_path / "manifest.json", tmp_path / "p.npz")
    assert not (tmp_path / "p.npz").exists()


def test_split_too_small_writes_nothing(tmp_path):
    np.savez(tmp_path / "tiny.npz", x=np.zeros((2, 1, 2, 2)), y=np.array([0, 1]))
    stage = stage_for({"kind": "npz", "source": {"path": str(tmp_path / "tiny.npz")}})
    fetch_step(stage, tmp_path / "d" / "manifest.json")
    with pytest.raises(ValueError, match="too few"):
        prepare_step(stage, tmp_path / "d" / "manifest.json", tmp_path / "d" / "p.npz")
    assert sorted(p.name for p in (tmp_path / "d").iterdir()) == ["manifest.json"]


def test_cifar10_official_split_tests_on_the_test_batch(tmp_path):
    """split.method official: the 10 fake test images are the test set; the 40 training images split in half."""
    block = block_for("cifar10", tmp_path)
    block["split"] = {"method": "official"}
    stage = stage_for(block)
    manifest_path = tmp_path / "manifest.json"
    fetch_step(stage, manifest_path)
    prepare_step(stage, manifest_path, tmp_path / "prepared.npz")
    data = PreparedData.load(tmp_path / "prepared.npz")
    assert data.n == 50 and list(data.test_index) == list(range(40, 50))
    assert list(data.search_train_index) == list(range(20)) and list(data.search_val_index) == list(range(20, 40))
    assert data.provenance["split"]["method"] == "official"


def test_official_split_is_refused_for_datasets_without_a_test_set():
    with pytest.raises(ConfigError, match="'datasets.ds.split.method': 'official' needs"):
        stage_for({"kind": "digits", "split": {"method": "official"}})
