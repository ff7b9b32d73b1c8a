"""ML-guided design (Hanakata et al., PRL 121, 255304, 2018) on any design space with any simulator.

- config.py      DesignConfig (pickers, oracle), LearningCurvesConfig (typed, no defaults: the schema fills them)
- space.py       DesignSpace: kirigami's 29,791 patterns or an npz file's rows; features, images, given designs
- acquisition.py greedy / UCB / expected improvement; batch rules (top, diverse) and distances
- models.py      random forest (spread of its trees) and network ensembles; fit sees revealed designs only
- loop.py        generations as pick / settle / close; budgets; the in-process driver (lookup oracle)
- oracle.py      kirigami's lookup table (candidates.npz); score.py: recall and R^2 from a complete table
- table.py       the simulations journal (every simulator call) and simulations.csv
- command.py     one simulation job: the user's command on a batch, retries, verdicts
- document.py    design.json / design.csv / simulations.csv rows
- run.py         the steps: design (lookup, or the command oracle's documents), design-pick, design-simulate
"""

from workflow_lib.design.config import DesignConfig, LearningCurvesConfig

__all__ = ["DesignConfig", "LearningCurvesConfig"]
