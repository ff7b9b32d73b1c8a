"""config/paper.yaml holds the published settings, each checked against its source.

Sources:
- KIRIGAMI: the 2019 graphene-kirigami DARTS study's public logs (capstone2019-neuralsearch/AC297r_2019_NAS,
  experiments/*GRAPHENE*): search second order, batch 24, C16, 8 layers, 50 epochs, half/half split of the
  training data; final training C36, 8 layers, batch 96, 200 epochs, SGD lr 0.01 cosine, weight decay 3e-4,
  drop path 0.2, no auxiliary head, no cutout; the KIRIGAMI_2019 cell has 780,949 parameters at C36, 8
  layers; ResNet-18 and Tiny ResNet with Adam lr 1e-3, batch 32, 30 epochs, no weight decay or schedule,
  on 32x40 inputs (every second column); the random forest with scikit-learn's defaults on the 15 coarse
  bits; the split train_test_split(test_size=0.2, random_state=42) on the MD file's rows.
- DARTS: Liu, Simonyan & Yang, ICLR 2019, Sec. 3.1 and App. A.1 / A.2 (CIFAR-10 search: 50 epochs, batch 64,
  C16, 8 cells, second order, the 50,000 training images split in half; evaluation: 20 cells, C36, batch 96,
  600 epochs, SGD lr 0.025 cosine, cutout 16, drop path 0.2, auxiliary towers weight 0.4; standard
  augmentation: random crop with 4-pixel padding, horizontal flip, normalisation).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from workflow_lib.config import load_config_file
from workflow_lib.config.types import CNNBaselineConfig, RandomForestConfig, SearchConfig, TrainConfig

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def paper():
    return load_config_file(ROOT / "config" / "paper.yaml")


def test_kirigami_search_as_the_2019_study(paper):
    search = SearchConfig.from_dict(paper["datasets"]["kirigami"]["search"])
    assert (search.order, search.batch_size, search.C, search.layers, search.epochs) == ("second", 24, 16, 8, 50)
    assert paper["datasets"]["kirigami"]["split"]["search_val_fraction"] == 0.5
    assert (search.input_stride, search.max_samples) == ([1, 1], None)  # full resolution, all data


def test_kirigami_final_training_as_the_2019_study(paper):
    train = TrainConfig.from_dict(paper["datasets"]["kirigami"]["train"])
    assert (train.C, train.layers, train.batch_size, train.epochs) == (36, 8, 96, 200)
    assert (train.lr, train.lr_min, train.weight_decay, train.drop_path_prob) == (0.01, 0.0, 3e-4, 0.2)
    assert not train.auxiliary and train.cutout_length == 0 and train.input_stride == [1, 1]


def test_kirigami_fixed_cell_is_the_2019_cell_with_its_parameter_count(paper):
    from workflow_lib.darts.eval_model import build_eval_network, count_parameters
    from workflow_lib.darts.genotypes import GENOTYPES

    block = paper["datasets"]["kirigami"]
    assert "fixed_cell" in block["methods"] and block["baselines"]["fixed_cell"]["genotype"] == "KIRIGAMI_2019"
    train = TrainConfig.from_dict(block["train"])
    model = build_eval_network(GENOTYPES["KIRIGAMI_2019"], 1, 1, C=train.C, layers=train.layers,
                               auxiliary=train.auxiliary)
    assert count_parameters(model) == 780_949


@pytest.mark.parametrize("name", ["resnet18", "tiny_resnet"])
def test_kirigami_resnets_as_the_2019_study(paper, name):
    cfg = CNNBaselineConfig.from_dict(paper["datasets"]["kirigami"]["baselines"][name])
    assert (cfg.optimizer, cfg.lr, cfg.batch_size, cfg.epochs) == ("adam", 1e-3, 32, 30)
    assert (cfg.weight_decay, cfg.lr_schedule) == (0.0, "constant")
    assert cfg.input_stride == [1, 2]  # every second column: 32x80 -> 32x40


def test_kirigami_random_forest_and_split_as_the_2019_study(paper):
    from sklearn.ensemble import RandomForestRegressor

    forest = RandomForestConfig.from_dict(paper["datasets"]["kirigami"]["baselines"]["random_forest"])
    defaults = RandomForestRegressor()
    assert (forest.n_estimators, forest.max_features, forest.max_depth, forest.min_samples_leaf) == (
        defaults.n_estimators, defaults.max_features, defaults.max_depth, defaults.min_samples_leaf)
    split = paper["datasets"]["kirigami"]["split"]
    assert (split["method"], split["test_fraction"], split["seed"]) == ("sklearn", 0.2, 42)
    assert paper["datasets"]["kirigami"]["source"]["type"] == "md"


def test_cifar10_as_the_darts_paper(paper):
    block = paper["datasets"]["cifar10"]
    search = SearchConfig.from_dict(block["search"])
    assert (search.order, search.batch_size, search.C, search.layers, search.epochs) == ("second", 64, 16, 8, 50)
    assert (search.w_lr, search.w_lr_min, search.alpha_lr, search.alpha_weight_decay) == (0.025, 0.001, 3e-4, 1e-3)
    train = TrainConfig.from_dict(block["train"])
    assert (train.C, train.layers, train.batch_size, train.epochs, train.lr) == (36, 20, 96, 600, 0.025)
    assert (train.cutout_length, train.drop_path_prob, train.auxiliary, train.auxiliary_weight) == (16, 0.2, True, 0.4)
    assert block["split"]["method"] == "official" and block["split"]["search_val_fraction"] == 0.5
    assert block["augment"] == {"crop_padding": 4, "horizontal_flip": True, "normalize": True}
    assert block["baselines"]["fixed_cell"]["genotype"] == "DARTS_V2"


def test_cifar10_searches_four_times_and_selects_the_cell_as_the_darts_paper(paper):
    """Liu et al., Sec. 3.1: DARTS ran 4 times with different seeds; the best cell by its validation performance
    after a short training from scratch (100 epochs) was evaluated. Kirigami keeps the 2019 protocol (no selection);
    the design loop and the learning curves keep their 3 seeds."""
    from workflow_lib.config.types import SelectionConfig

    assert paper["seeds"] == [0, 1, 2, 3]
    selection = SelectionConfig.from_dict(paper["datasets"]["cifar10"]["selection"])
    assert (selection.enabled, selection.epochs, selection.max_steps_per_epoch) == (True, 100, None)
    kirigami = paper["datasets"]["kirigami"]
    assert not kirigami["selection"]["enabled"]
    assert kirigami["design"]["seeds"] == [0, 1, 2] and kirigami["learning_curves"]["seeds"] == [0, 1, 2]



@pytest.mark.parametrize("dataset, epochs", [("kirigami", 30), ("cifar10", 100)])
def test_search_advantage_uses_a_short_protocol_at_the_published_scale(paper, dataset, epochs):
    """Yang et al. (ICLR 2020) compare the found cell with random cells under one protocol; at 600 epochs per
    cell, 9 cells x 4 seeds would cost 36 final trainings, so every cell gets the short one (CIFAR-10: the
    selection's 100 epochs)."""
    block = paper["datasets"][dataset]
    advantage = block["search_advantage"]
    assert advantage["enabled"] and advantage["num_cells"] >= 8
    assert advantage["epochs"] == epochs < block["train"]["epochs"]
    assert advantage["train_samples"] is None  # the whole training split

def test_pc_darts_config_as_the_paper():
    """PC-DARTS (Xu et al., ICLR 2020), Sec. 4.2: batch 256, weight lr 0.1 (cosine), momentum 0.9, weight decay
    3e-4, Adam for the architecture with lr 6e-4 and weight decay 1e-3, 50 epochs of which the first 15 train
    only the weights, K = 4, the DARTS supernet (C16, 8 cells)."""
    config = load_config_file(ROOT / "config" / "pc_darts.yaml")
    search = SearchConfig.from_dict(config["datasets"]["cifar10"]["search"])
    assert (search.method, search.pc_k, search.epochs, search.arch_warmup_epochs) == ("pc_darts", 4, 50, 15)
    assert (search.batch_size, search.w_lr, search.w_momentum, search.w_weight_decay) == (256, 0.1, 0.9, 3e-4)
    assert (search.alpha_lr, search.alpha_weight_decay, search.alpha_beta1, search.alpha_beta2) == (
        6e-4, 1e-3, 0.5, 0.999)
    assert (search.C, search.layers, search.order) == (16, 8, "first")
