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
from workflow_lib.config.stage import StageConfig, stage_document
from workflow_lib.methods import STEPS

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
    assert config["datasets"]["kirigami"]["split"] == {"test_fraction": 0.2, "search_val_fraction": 0.5, "seed": 42,
                                                       "method": "random"}


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


@pytest.mark.parametrize("name", ["config/config.yaml", "config/paper.yaml", "config/pc_darts.yaml",
                                  "tests/config/tiny.yaml"])
def test_shipped_configs_validate(name):
    config = load_config_file(ROOT / name)
    for dataset in config["datasets"]:
        for stage in STEPS:
            document = stage_document(config, dataset, stage)
            assert StageConfig.from_dict(document).to_dict() == document
        DataConfig.from_dict(stage_document(config, dataset, "prepare")["settings"])


def test_bad_yaml_file_names_the_file(tmp_path):
    path = tmp_path / "broken.yaml"
    path.write_text("datasets:\n  kirigami: {kind: kirigami\n  digits: {kind: digits}\n")
    with pytest.raises(ConfigError, match=r"broken.yaml:3:9: not valid YAML: expected ',' or '}'"):
        load_config_file(path)


def test_stage_slices_are_independent():
    """Changing one stage's block changes only that stage's document (so only it reruns)."""
    base = load_config(yaml.safe_load((ROOT / "tests" / "config" / "tiny.yaml").read_text()))
    changed = load_config(yaml.safe_load((ROOT / "tests" / "config" / "tiny.yaml").read_text()))
    changed["datasets"]["kirigami"]["train"]["epochs"] += 1
    for dataset in base["datasets"]:
        for stage in STEPS:
            same = stage_document(base, dataset, stage) == stage_document(changed, dataset, stage)
            readers = ("train", "random_search", "fixed_cell", "select_cell", "search_advantage")
            assert same == (not (dataset == "kirigami" and stage in readers))


def test_methods_have_one_source():
    """The schema's allowed methods, the baseline registry and the rules' wildcards all come from
    workflow_lib.methods."""
    from workflow_lib import methods
    from workflow_lib.baselines import BASELINES

    schema = load_schema()
    allowed = schema["$defs"]["dataset"]["properties"]["methods"]
    assert allowed["items"]["enum"] == list(methods.METHODS)
    assert allowed["default"] == list(methods.DEFAULT_METHODS)
    assert tuple(BASELINES) == methods.BASELINES
    assert "enum" not in yaml.safe_load((ROOT / "config" / "schema.yaml").read_text())["$defs"]["dataset"][
        "properties"]["methods"]["items"]


def test_schema_is_the_one_source_of_defaults():
    """The typed configs declare no defaults of their own: from_dict({}) is the schema's defaults."""
    import dataclasses

    from workflow_lib.config import types

    blocks = [cls for cls in vars(types).values()
              if isinstance(cls, type) and issubclass(cls, types.ConfigBlock) and cls is not types.ConfigBlock]
    assert len(blocks) == 15
    for cls in blocks:
        for field in dataclasses.fields(cls):
            assert field.default is dataclasses.MISSING and field.default_factory is dataclasses.MISSING, field
        config = load_config({"datasets": {"k": {"kind": "kirigami"}}})
        block = config["datasets"]["k"]
        expected = {
            "DeviceConfig": config["device"], "ResourcesConfig": block["resources"], "SplitConfig": block["split"],
            "SearchConfig": block["search"], "TrainConfig": block["train"],
            "CNNBaselineConfig": block["baselines"]["resnet18"],
            "RandomForestConfig": block["baselines"]["random_forest"],
            "RandomSearchConfig": block["baselines"]["random_search"],
            "FixedCellConfig": block["baselines"]["fixed_cell"], "AugmentConfig": block["augment"],
            "SelectionConfig": block["selection"], "SearchAdvantageConfig": block["search_advantage"],
            "SearchDiagnosticsConfig": block["search"]["diagnostics"], "SearchStopConfig": block["search"]["stop"],
        }.get(cls.__name__)
        if expected is not None:
            assert cls.defaults().to_dict() == expected, cls


@pytest.mark.parametrize(("search", "fragment"), [
    ({"epochs": 5, "arch_warmup_epochs": 5},
     "config key 'datasets.kirigami.search.arch_warmup_epochs': 5 warm-up epochs of 5 leave no epoch that updates "
     "the architecture"),
    ({"stop": {"rule": "darts_es"}, "diagnostics": {"hessian_every": 0}},
     "config key 'datasets.kirigami.search.stop.rule': darts_es stops on the Hessian eigenvalue"),
    ({"stop": {"rule": "early"}}, "'datasets.kirigami.search.stop.rule': 'early' is not one of"),
    ({"diagnostics": {"hessian_samples": 1}}, "'datasets.kirigami.search.diagnostics.hessian_samples': 1 is less"),
])
def test_search_checks_name_the_key(search, fragment):
    with pytest.raises(ConfigError) as info:
        load_config(minimal(search=search))
    assert fragment in str(info.value)


def test_search_diagnostics_and_stop_defaults():
    from workflow_lib.config.types import SearchDiagnosticsConfig, SearchStopConfig

    search = SearchConfig.from_dict({})
    diagnostics, stop = SearchDiagnosticsConfig.from_dict(search.diagnostics), SearchStopConfig.from_dict(search.stop)
    assert (diagnostics.hessian_every, diagnostics.hessian_samples) == (2, 256)
    assert stop.rule == "none"
    assert stop.darts_es == {"window": 5, "delta": 4, "factor": 1.3, "start_epoch": 11}  # R-DARTS's code
    load_config(minimal(search={"epochs": 5, "arch_warmup_epochs": 4, "stop": {"rule": "darts_es"}}))


def test_diagnostics_and_stop_do_not_rerun_the_random_search():
    base = load_config(minimal())
    changed = load_config(minimal(search={"diagnostics": {"hessian_every": 5}, "stop": {"rule": "stable_genotype"}}))
    assert stage_document(base, "kirigami", "random_search") == stage_document(changed, "kirigami", "random_search")
    assert stage_document(base, "kirigami", "search") != stage_document(changed, "kirigami", "search")


def test_typed_config_rejects_bad_values_with_the_key():
    with pytest.raises(ConfigError, match="config key 'search.layers': 1 is less than the minimum of 3"):
        SearchConfig.from_dict({"layers": 1})


@pytest.mark.parametrize("step, keys", [
    ("search", {"search.input_stride"}),
    ("resnet18", {"baselines.resnet18.input_stride"}),
    ("random_search", {"search.input_stride", "train.input_stride"}),
    ("fixed_cell", {"train.input_stride"}),
    ("select_cell", {"train.input_stride"}),
    ("design", {"design.input_stride"}),
    ("learning_curves", {"train.input_stride", "baselines.tiny_resnet.input_stride",
                         "baselines.resnet18.input_stride"}),
])
def test_every_input_stride_of_a_step_is_named_by_its_config_key(step, keys):
    """A step's own stride check (on its prepared data) names the key the user wrote."""
    from workflow_lib.config.stage import input_strides, stage_settings

    config = load_config({"datasets": {"k": {  # a different stride everywhere, so a wrong key shows
        "kind": "kirigami", "search": {"input_stride": [1, 2]}, "train": {"input_stride": [2, 1]},
        "baselines": {"resnet18": {"input_stride": [1, 3]}, "tiny_resnet": {"input_stride": [3, 1]}},
        "design": {"input_stride": [2, 2]},
        "learning_curves": {"methods": ["random_forest", "tiny_resnet", "resnet18", "darts"]}}}})
    block = config["datasets"]["k"]
    found = dict(input_strides(step, stage_settings(config, "k", step)))
    assert set(found) == keys
    for key, stride in found.items():
        node = block
        for part in key.split("."):
            node = node[part]
        assert node == stride, key


def test_processes_default_to_one_and_batches_must_split_over_them():
    assert load_config(minimal())["device"]["processes"] == 1
    assert StageConfig.from_dict(stage_document(load_config(minimal()), "kirigami", "train")).device.processes == 1
    # the defaults: search 64, train 96, resnet18 / tiny_resnet 128, random_search 64: all even
    load_config({**minimal(), "device": {"processes": 2}})
    with pytest.raises(ConfigError) as info:
        load_config({**minimal(train={"batch_size": 96}), "device": {"processes": 5}})
    assert str(info.value).startswith("config key 'datasets.kirigami.search.batch_size': batch_size 64 is the global "
                                      "batch of the device.processes = 5 processes and must be divisible by it")
    with pytest.raises(ConfigError, match="'datasets.kirigami.baselines.tiny_resnet.batch_size': batch_size 30"):
        load_config({**minimal(methods=["tiny_resnet"], baselines={"tiny_resnet": {"batch_size": 30}}),
                     "device": {"processes": 4}})
    # a batch no multi-process step trains with is not checked (the design loop runs in one process)
    load_config({**minimal(methods=["random_forest"]), "device": {"processes": 7}})
    with pytest.raises(ConfigError, match="'device.processes': 0 is less than the minimum of 1"):
        load_config({**minimal(), "device": {"processes": 0}})
