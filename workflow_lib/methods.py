"""The one list of methods and workflow steps (torch-free: the config schema, the Snakefile and the report
read it). The runnable registries (``baselines.BASELINES``, ``models.MODELS``) are checked against it.

- ``METHODS``: what a dataset's ``methods:`` list may hold (``DEFAULT_METHODS`` when it lists none); ``darts`` =
  search + final training.
- ``STEPS``: every compute step of a dataset's chain, in pipeline order, as named in logs and benchmarks
  (the design steps run only where a dataset enables them).
- ``SEARCH_ADVANTAGE``: the found cell trained beside random cells of the same space, all scored on the test
  split (Yang et al., ICLR 2020); runs per seed wherever the search runs.
- ``NEURAL_STEPS``: the steps that train networks, so the ``device`` block is part of their settings (and only
  theirs: changing the device never reruns data preparation or the random forest).
"""

from __future__ import annotations

DARTS = "darts"
RANDOM_FOREST = "random_forest"
CNN_BASELINES = ("resnet18", "tiny_resnet")
RANDOM_SEARCH = "random_search"
FIXED_CELL = "fixed_cell"  # a published cell (e.g. KIRIGAMI_2019) trained like the searched one
BASELINES = (RANDOM_FOREST, *CNN_BASELINES, RANDOM_SEARCH, FIXED_CELL)
METHODS = (DARTS, *BASELINES)
DEFAULT_METHODS = (DARTS, RANDOM_FOREST, *CNN_BASELINES, RANDOM_SEARCH)  # a dataset's methods unless it lists them

DATA_STEPS = ("raw_data", "prepare")
# the design loop (design_pick / design_simulate: one job per generation / simulation, command oracle only),
# data efficiency
DESIGN_STEPS = ("design_table", "design_pick", "design_simulate", "design", "learning_curves")
SEARCH_ADVANTAGE = "search_advantage"
STEPS = (*DATA_STEPS, "search", "select_cell", "train", SEARCH_ADVANTAGE, *BASELINES, *DESIGN_STEPS)
NEURAL_STEPS = ("search", "select_cell", "train", SEARCH_ADVANTAGE, *CNN_BASELINES, RANDOM_SEARCH, FIXED_CELL,
                "design_pick",
                "design", "learning_curves")


def step_of_method(method: str) -> str:
    """The step whose results are a method's results (darts: the final training of the found cell)."""
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; known: {', '.join(METHODS)}")
    return "train" if method == DARTS else method
