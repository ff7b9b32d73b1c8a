"""The split methods (random, the 2019 study's scikit-learn split, CIFAR-10's official test set) and the
on-device augmentation (random crop with padding, flip, normalisation, Cutout after)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from workflow_lib.config.types import AugmentConfig
from workflow_lib.datasets.splits import (MIN_PER_PART, SEARCH_TRAIN, SEARCH_VAL, TEST, minimum_samples,
                                          official_split, part_sizes, sklearn_split, split_for, split_sizes)
from workflow_lib.engine.augment import RandomCropFlip, channel_stats, model_inputs, train_transform
from workflow_lib.engine.batches import make_generator


def test_sklearn_split_is_train_test_split_of_the_rows():
    from sklearn.model_selection import train_test_split

    split = sklearn_split(1000, 0.2, 42, 0.5)
    train, test = train_test_split(np.arange(1000), test_size=0.2, random_state=42)
    assert set(np.flatnonzero(split == TEST)) == set(test)
    assert list(np.flatnonzero(split == SEARCH_VAL)) == sorted(train[400:])
    assert list(np.flatnonzero(split == SEARCH_TRAIN)) == sorted(train[:400])


def test_sklearn_split_differs_from_the_numpy_permutation():
    """The old schema text said seed 42 gives the 2019 test set; only the sklearn method does."""
    random = split_for("random", 1000, 0.2, 42, 0.5)
    assert set(np.flatnonzero(random == TEST)) != set(np.flatnonzero(sklearn_split(1000, 0.2, 42, 0.5) == TEST))


def test_official_split_keeps_the_test_set_and_halves_the_training_images_in_order():
    official_test = np.arange(60) >= 50
    split = official_split(official_test, 0.5)
    assert (split[50:] == TEST).all() and (split[:25] == SEARCH_TRAIN).all() and (split[25:50] == SEARCH_VAL).all()


def test_official_split_needs_an_official_test_set():
    from workflow_lib.errors import DataError

    with pytest.raises(DataError, match="official"):
        split_for("official", 10, 0.2, 0, 0.5, None)


@pytest.mark.parametrize("method", ["random", "sklearn"])
@pytest.mark.parametrize("fractions", [(0.2, 0.5), (0.1, 0.3), (0.33, 0.1), (0.05, 0.5)])
def test_part_sizes_and_minimum_samples_match_the_split(method, fractions):
    """The size check (too few samples: an error naming the minimum) predicts the split without drawing it."""
    test_fraction, search_val_fraction = fractions
    minimum = minimum_samples(method, test_fraction, search_val_fraction)
    for n in range(3, minimum + 40):
        sizes = part_sizes(method, n, test_fraction, search_val_fraction)
        if n < minimum:
            assert min(sizes.values()) < MIN_PER_PART, n
            continue
        assert split_sizes(split_for(method, n, test_fraction, 1, search_val_fraction)) == sizes, n


def test_random_crop_with_padding_is_a_shift_and_flip_mirrors():
    x = torch.arange(2 * 3 * 6 * 6, dtype=torch.float32).view(2, 3, 6, 6) + 1.0
    out = RandomCropFlip(padding=2, flip=False)(x, make_generator(0))
    assert out.shape == x.shape
    for image, shifted in zip(x, out):  # each output is the padded image cropped at some offset
        padded = torch.nn.functional.pad(image, (2, 2, 2, 2))
        assert any(torch.equal(padded[:, r:r + 6, c:c + 6], shifted) for r in range(5) for c in range(5))
    flipped = RandomCropFlip(padding=0, flip=True)(x, make_generator(3))
    for image, result in zip(x, flipped):
        assert torch.equal(result, image) or torch.equal(result, image.flip(2))


def test_augmentation_draws_from_the_batch_generator():
    x = torch.rand(8, 3, 8, 8)
    crop = RandomCropFlip(padding=4, flip=True)
    assert torch.equal(crop(x, make_generator(5)), crop(x, make_generator(5)))


def test_normalisation_uses_the_training_rows_and_pads_with_normalised_zero():
    x = torch.rand(20, 3, 4, 4) * torch.tensor([1.0, 2.0, 3.0]).view(1, 3, 1, 1)
    cfg = AugmentConfig.from_dict({"normalize": True, "crop_padding": 1})
    normalised, pad = model_inputs(x, list(range(10)), cfg)
    mean, std = channel_stats(x, list(range(10)))
    assert torch.allclose(normalised[:10].mean(dim=(0, 2, 3)), torch.zeros(3), atol=1e-5)
    assert torch.allclose(pad, -mean / std)
    out = train_transform(cfg, 0, pad)(normalised, make_generator(0))
    border = out[out.ne(normalised)]  # pixels that came from the padding hold the normalised zero
    assert border.numel() > 0


def test_no_augmentation_leaves_inputs_alone():
    x = torch.rand(4, 1, 5, 5)
    cfg = AugmentConfig.defaults()
    assert model_inputs(x, [0, 1], cfg)[0] is x and train_transform(cfg, 0, 0.0) is None
