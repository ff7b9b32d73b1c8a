"""Config schema: defaults, validation messages that name the key, stage slices, shipped configs."""

from pathlib import Path

import pytest
import yaml

from workflow_lib.config import (
    ConfigError,
    DataConfig,
    SearchConfig,
    TrainConfig,
    load_config,
    load_config_file,
)
from workflow_lib.config.load import load_schema
from workflow_lib.config.stage import STAGES, StageConfig, stage_document

ROOT = Path(__file__).resolve().parents[1]


def minimal(**dataset):
    return {"datasets": {"kirigami": {"kind": "kirigami", **dataset}}}


def test_defaults_are_the_darts_paper_defaults():
    config = load_config(minimal())
    search = SearchConfig.from_dict(config["datasets"]["kirigami"]["search"])
    assert (search.epochs, search.batch_size, search.C, search.layers) == (50, 64, 16, 8)
    assert (search.w_lr, search.w_lr_min, search.w_momentum, search.w_weight_decay) == (0.025, 0.001, 0.9, 3e-4)
    assert search.w_grad_clip == 5.0
    assert (search.alpha_lr, search.alpha_beta1, search.alpha_beta2, search.alpha_weight_decay) == (
        3e-4, 0.5, 0.999, 1e-3)
    assert search.l1_alpha == 0.0 and search.entropy_alpha == 0.0
    train = TrainConfig.from_dict(config["datasets"]["kirigami"]["train"])
    assert (train.auxiliary_weight, train.drop_path_prob) == (0.4, 0.2)
    assert config["seeds"] == [0] and config["device"]["type"] == "cpu"
    assert config["datasets"]["kirigami"]["split"] == {"test_fraction": 0.2, "search_val_fraction": 0.5, "seed": 42}


@pytest.mark.parametrize(
    ("config", "fragment"),
    [
        (minimal(search={"epochs": 0}), "'datasets.kirigami.search.epochs': 0 is less than the minimum of 1"),
        (minimal(search={"order": "third"}), "'datasets.kirigami.search.order': 'third' is not one of"),
        (minimal(target="strength"), "'datasets.kirigami.target'"),
        (minimal(typo=1), "'datasets.kirigami': Additional properties are not allowed ('typo' was unexpected)"),
        ({"datasets": {"k": {}}}, "'datasets.k': 'kind' is a required property"),
        ({"datasets": {"9lives": {"kind": "digits"}}}, "does not match"),
        ({"datasets": {}}, "'datasets'"),
        ({**minimal(), "seeds": []}, "'seeds': [] should be non-empty"),
        ({**minimal(), "device": {"type": "tpu"}}, "'device.type'"),
        ({}, "'datasets' is a required property"),
    ],
)
def test_bad_config_names_key_and_problem(config, fragment):
    with pytest.raises(ConfigError) as info:
        load_config(config)
    assert fragment in str(info.value)


def test_every_schema_property_has_a_description():
    schema = load_schema()
    missing = []

    def walk(node, path):
        if not isinstance(node, dict):
            return
        for name, sub in node.get("properties", {}).items():
            if "$ref" not in sub and "description" not in sub:
                missing.append(f"{path}.{name}")
            walk(sub, f"{path}.{name}")
        for name, sub in node.get("$defs", {}).items():
            walk(sub, f"$defs.{name}")

    walk(schema, "")
    assert missing == []


@pytest.mark.parametrize("name", ["config.yaml", "paper.yaml"])
def test_shipped_configs_validate(name):
    config = load_config_file(ROOT / "config" / name)
    for dataset in config["datasets"]:
        for stage in STAGES:
            document = stage_document(config, dataset, stage)
            assert StageConfig.from_dict(document).to_dict() == document
        DataConfig.from_dict(stage_document(config, dataset, "data")["settings"])


def test_bad_yaml_file_names_the_file(tmp_path):
    path = tmp_path / "broken.yaml"
    path.write_text("datasets: [unclosed\n")
    with pytest.raises(ConfigError, match="broken.yaml is not valid YAML"):
        load_config_file(path)


def test_stage_slices_are_independent():
    """Changing one stage's block changes only that stage's document (so only it reruns)."""
    base = load_config(yaml.safe_load((ROOT / "config" / "config.yaml").read_text()))
    changed = load_config(yaml.safe_load((ROOT / "config" / "config.yaml").read_text()))
    changed["datasets"]["kirigami"]["train"]["epochs"] += 1
    for dataset in base["datasets"]:
        for stage in STAGES:
            same = stage_document(base, dataset, stage) == stage_document(changed, dataset, stage)
            assert same == (not (dataset == "kirigami" and stage in ("train", "random_search")))
