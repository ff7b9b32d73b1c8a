"""The one split rule of the workflow: a seeded permutation; test first, the rest into search-train / search-val."""

from __future__ import annotations

import math

import numpy as np

from workflow_lib.errors import DataError

SEARCH_TRAIN = 0
SEARCH_VAL = 1
TEST = 2
SPLIT_NAMES = {SEARCH_TRAIN: "search_train", SEARCH_VAL: "search_val", TEST: "test"}


def make_split(
    n: int, test_fraction: float = 0.2, seed: int = 42, search_val_fraction: float = 0.5
) -> np.ndarray:
    """Return an int8 vector (n,): 0 = search-train, 1 = search-val, 2 = test.

    perm = numpy.random.default_rng(seed).permutation(n); the first round(test_fraction * n) indices of
    perm are the test set; of the remaining m, the next round(search_val_fraction * m) are search-val and
    the rest search-train. Deterministic in (n, test_fraction, seed, search_val_fraction); every method
    reads the same stored split, so all test on the same samples.
    """
    n = int(n)
    if not 0.0 < test_fraction < 1.0:
        raise ValueError(f"make_split: test_fraction must be in (0, 1), got {test_fraction}")
    if not 0.0 < search_val_fraction < 1.0:
        raise ValueError(f"make_split: search_val_fraction must be in (0, 1), got {search_val_fraction}")
    n_test = int(round(test_fraction * n))
    n_rest = n - n_test
    n_val = int(round(search_val_fraction * n_rest))
    n_train = n_rest - n_val
    if min(n_test, n_val, n_train) < 1:
        raise DataError(
            f"make_split: {n} samples are too few for test_fraction={test_fraction}, "
            f"search_val_fraction={search_val_fraction} (sizes: search-train {n_train}, "
            f"search-val {n_val}, test {n_test}; each needs at least 1)"
        )
    perm = np.random.default_rng(seed).permutation(n)
    split = np.full(n, SEARCH_TRAIN, dtype=np.int8)
    split[perm[:n_test]] = TEST
    split[perm[n_test : n_test + n_val]] = SEARCH_VAL
    return split


SPLIT_METHODS = ("random", "sklearn", "official")
# The fewest samples each part may hold: a score on one test sample means nothing (R^2 needs two), and the
# search fits its weights on search-train and its architecture on search-val.
MIN_PER_PART = 2


def part_sizes(method: str, n: int, test_fraction: float, search_val_fraction: float,
               official_test: np.ndarray | None = None) -> dict[str, int]:
    """The sizes of search-train, search-val and test that ``split_for`` gives n samples (no permutation drawn)."""
    if method == "official" and official_test is not None:
        n_test = int(np.count_nonzero(official_test))
        train = n - n_test
        n_search_train = int(np.floor((1.0 - search_val_fraction) * train))
    elif method == "sklearn":  # train_test_split: ceil(test_size * n) test rows, the rest train
        n_test = math.ceil(test_fraction * n)
        train = n - n_test
        n_search_train = int(np.floor((1.0 - search_val_fraction) * train))
    else:
        n_test = int(round(test_fraction * n))
        train = n - n_test
        n_search_train = train - int(round(search_val_fraction * train))
    return {"search_train": n_search_train, "search_val": train - n_search_train, "test": n_test}


def minimum_samples(method: str, test_fraction: float, search_val_fraction: float, limit: int = 10**6) -> int | None:
    """The fewest samples whose split leaves MIN_PER_PART in every part (None for the official split: fixed test set)."""
    if method == "official":
        return None
    # below 1 / min(test_fraction, 1 - test_fraction) samples the test set or the rest holds one row at most
    start = max(3 * MIN_PER_PART, math.floor(1 / min(test_fraction, 1 - test_fraction)))
    for n in range(start, start + limit):
        if min(part_sizes(method, n, test_fraction, search_val_fraction).values()) >= MIN_PER_PART:
            return n
    return None


def check_split_sizes(method: str, n: int, test_fraction: float, search_val_fraction: float,
                      official_test: np.ndarray | None, what: str) -> None:
    """Refuse data too small for its split, naming ``what`` (the data file) and the minimum it needs."""
    sizes = part_sizes(method, n, test_fraction, search_val_fraction, official_test)
    if min(sizes.values()) >= MIN_PER_PART:
        return
    minimum = minimum_samples(method, test_fraction, search_val_fraction)
    needs = f"; the data needs at least {minimum} samples" if minimum else ""
    raise DataError(
        f"{what}: {n} samples are too few for the split (split.method {method}, test_fraction {test_fraction}, "
        f"search_val_fraction {search_val_fraction} give search-train {sizes['search_train']}, search-val "
        f"{sizes['search_val']}, test {sizes['test']}); each part needs at least {MIN_PER_PART} samples (a score "
        f"on one test sample means nothing, R^2 needs two){needs}"
    )


def _codes(n: int, test: np.ndarray, search_val: np.ndarray) -> np.ndarray:
    split = np.full(n, SEARCH_TRAIN, dtype=np.int8)
    split[test] = TEST
    split[search_val] = SEARCH_VAL
    return split


def sklearn_split(n: int, test_fraction: float = 0.2, seed: int = 42, search_val_fraction: float = 0.5) -> np.ndarray:
    """The 2019 kirigami study's split: scikit-learn's ``train_test_split(range(n), test_size=test_fraction,
    random_state=seed)`` on the file's row order; of the training rows, in the order train_test_split returns
    them, the first part is search-train and the last ``search_val_fraction`` search-val (the DARTS code's
    ``train_portion`` split of its training set)."""
    from sklearn.model_selection import train_test_split

    train, test = train_test_split(np.arange(n), test_size=test_fraction, random_state=seed)
    n_search_train = int(np.floor((1.0 - search_val_fraction) * len(train)))
    return _codes(n, test, train[n_search_train:])


def official_split(official_test: np.ndarray, search_val_fraction: float = 0.5) -> np.ndarray:
    """A dataset's own test set (CIFAR-10: the 10,000 test images); its training images split in order into
    search-train and search-val, as the DARTS code splits the 50,000 (train_portion 0.5: 25,000 / 25,000)."""
    official_test = np.asarray(official_test, dtype=bool)
    train = np.flatnonzero(~official_test)
    n_search_train = int(np.floor((1.0 - search_val_fraction) * len(train)))
    return _codes(len(official_test), np.flatnonzero(official_test), train[n_search_train:])


def split_for(method: str, n: int, test_fraction: float, seed: int, search_val_fraction: float,
              official_test: np.ndarray | None = None, what: str = "the data") -> np.ndarray:
    """The split of ``method`` (config key split.method); data too small for it is refused (``check_split_sizes``)."""
    if method in SPLIT_METHODS and (method != "official" or official_test is not None):
        check_split_sizes(method, n, test_fraction, search_val_fraction, official_test, what)
    if method == "random":
        return make_split(n, test_fraction, seed, search_val_fraction)
    if method == "sklearn":
        return sklearn_split(n, test_fraction, seed, search_val_fraction)
    if method == "official":
        if official_test is None:
            raise DataError("split.method 'official' needs a dataset with its own test set (cifar10)")
        return official_split(official_test, search_val_fraction)
    raise DataError(f"split.method must be one of {SPLIT_METHODS}, got {method!r}")


def split_sizes(split: np.ndarray) -> dict[str, int]:
    split = np.asarray(split)
    return {name: int(np.count_nonzero(split == code)) for code, name in SPLIT_NAMES.items()}


def subset_index(n: int, subset: int | None, seed: int, what: str = "dataset") -> np.ndarray:
    """Sorted indices of a seeded random subset of `subset` of n samples (all n when subset is None)."""
    if subset is None or subset == n:
        return np.arange(n)
    if subset < 1 or subset > n:
        raise DataError(f"source.subset={subset} is outside 1..{n} (the {what} has {n} samples)")
    return np.sort(np.random.default_rng(seed).choice(n, size=int(subset), replace=False))


PROXY_SEED = 0  # the search's proxy subset is the same for every search seed and for the random search


def proxy_rows(index: np.ndarray, max_samples: int | None) -> np.ndarray:
    """A search proxy's rows: all of ``index``, or a fixed seeded subset of ``max_samples`` of them (sorted).

    The DARTS search and the random-search candidates draw the same subset, so both get the same data budget.
    """
    index = np.asarray(index)
    if max_samples is None or max_samples >= len(index):
        return index
    keep = np.random.default_rng(PROXY_SEED).permutation(len(index))[:max_samples]
    return np.sort(index[keep])
