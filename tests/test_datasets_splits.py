import numpy as np
import pytest

from workflow_lib.datasets.splits import SEARCH_TRAIN, SEARCH_VAL, TEST, make_split, split_sizes, subset_index


def test_split_is_deterministic():
    a = make_split(1000, 0.2, 42, 0.5)
    b = make_split(1000, 0.2, 42, 0.5)
    assert a.dtype == np.int8 and a.shape == (1000,)
    np.testing.assert_array_equal(a, b)


def test_split_sizes_and_disjointness():
    split = make_split(1000)
    assert split_sizes(split) == {"search_train": 400, "search_val": 400, "test": 200}
    test = set(np.flatnonzero(split == TEST))
    train = set(np.flatnonzero(split == SEARCH_TRAIN))
    val = set(np.flatnonzero(split == SEARCH_VAL))
    assert not (test & train) and not (test & val) and not (train & val)
    assert len(test | train | val) == 1000


def test_split_rule_is_the_documented_permutation():
    n = 101
    split = make_split(n, 0.2, 7, 0.5)
    perm = np.random.default_rng(7).permutation(n)
    n_test = round(0.2 * n)
    assert set(perm[:n_test]) == set(np.flatnonzero(split == TEST))
    assert split_sizes(split)["search_val"] == round(0.5 * (n - n_test))


def test_different_seed_gives_different_split():
    assert not np.array_equal(make_split(500, seed=1), make_split(500, seed=2))


def test_test_set_does_not_depend_on_search_val_fraction():
    a = make_split(300, 0.2, 42, 0.5)
    b = make_split(300, 0.2, 42, 0.3)
    np.testing.assert_array_equal(a == TEST, b == TEST)


@pytest.mark.parametrize("kwargs", [{"n": 2}, {"n": 10, "test_fraction": 1.0}, {"n": 10, "search_val_fraction": 0.0}])
def test_bad_split_arguments(kwargs):
    with pytest.raises(ValueError, match="make_split"):
        make_split(**kwargs)


def test_subset_index():
    a = subset_index(100, 10, 0)
    assert len(a) == 10 and np.all(np.diff(a) > 0)
    np.testing.assert_array_equal(a, subset_index(100, 10, 0))
    np.testing.assert_array_equal(subset_index(5, None, 0), np.arange(5))
    with pytest.raises(ValueError, match="subset=200"):
        subset_index(100, 200, 0)
