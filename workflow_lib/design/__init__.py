"""ML-guided design of stretchable kirigami (issue 13; Hanakata et al., PRL 121, 255304, 2018).

- config.py    DesignConfig, LearningCurvesConfig (typed, no defaults: the schema fills them)
- oracle.py    CandidateTable (all 29,791 patterns with true targets), Oracle (counted, no repeats)
- score.py     Scorer: top-k recall and R^2 on unseen candidates, from the complete table
- models.py    random forest on the coarse bits; CNNs on the (strided) sheet image via training.run.fit
- loop.py      run_design: n0 random, then G generations of k greedy (or random) picks
- document.py  design.json / design.csv
- run.py       design_step(...): the workflow's entry point
"""

from workflow_lib.design.config import DesignConfig, LearningCurvesConfig

__all__ = ["DesignConfig", "LearningCurvesConfig"]
