"""Stop rules of the search on synthetic histories, worked out by hand (epochs 1-based, as in history.json)."""

import pytest

from workflow_lib.darts.stop_rules import conclusive, darts_es, decide, last_changes, stable_genotype

ES = {"window": 5, "delta": 4, "factor": 1.3, "start_epoch": 11}  # R-DARTS's defaults (es_start_epoch 10, 0-based)


def every_epoch(values):
    return [(epoch, value) for epoch, value in enumerate(values, start=1)]


def test_darts_es_every_epoch_by_hand():
    """ev_freq 1, window 5: the local average of the value of 0-based epoch E covers epochs E-4..E and belongs to
    E-2; it is compared with the one 4 entries earlier (of E-6), which must be >= 10 (0-based): E >= 16.
    Values 1 up to epoch 16 (1-based), then 3: at epoch 17 (E = 16) the window [1, 1, 1, 1, 3] averages 1.4
    against 1.0 of E = 12: 1.4 > 1.3, stop. The stop epoch is E = 10, epoch 11 here."""
    values = [1.0] * 16 + [3.0] * 10
    decision = darts_es(every_epoch(values), ev_freq=1, total_epochs=50, **ES)
    assert (decision.rule, decision.check_epoch, decision.stop_epoch) == ("darts_es", 17, 11)
    assert decision.details["current_local_average"] == pytest.approx(1.4)
    assert decision.details["previous_local_average"] == pytest.approx(1.0)
    assert decision.details["local_average_epoch"] == 15
    assert "1.4 (epoch 15)" in decision.reason and "cell of epoch 11" in decision.reason


def test_darts_es_growth_before_the_start_epoch_never_stops():
    """Values step from 1 to 2 at epoch 9: every ratio large enough comes before the stop epoch may be 11 (the
    local averages compared at E = 14 are 1.6 and 2.0: 1.25 < 1.3; later all are 2)."""
    assert darts_es(every_epoch([1.0] * 8 + [2.0] * 30), ev_freq=1, total_epochs=50, **ES) is None


def test_darts_es_every_second_epoch_by_hand():
    """ev_freq 2: eigenvalues at 0-based epochs 0, 2, 4, ... (1-based 1, 3, 5, ...). A local average belongs to
    E - 2 * 2 and the stop epoch is E - 4 - 2 * 4 = E - 12 >= 10: E >= 22. Values 1 up to E = 20, then 3 at
    E = 22 (epoch 23): window [1, 1, 1, 1, 3] -> 1.4 (belongs to E = 18) against the local average 4 entries
    earlier (E = 14, of E = 10): 1.0."""
    eigenvalues = [(e + 1, 1.0) for e in range(0, 21, 2)] + [(23, 3.0), (25, 3.0)]
    decision = darts_es(eigenvalues, ev_freq=2, total_epochs=50, **ES)
    assert (decision.check_epoch, decision.stop_epoch, decision.details["local_average_epoch"]) == (23, 11, 19)
    # the last epoch ends the search anyway: the rule is not checked there (as in R-DARTS's code)
    assert darts_es(eigenvalues, ev_freq=2, total_epochs=23, **ES) is None


def test_darts_es_first_local_averages_are_running_means():
    """Before `window` values exist but from ceil(window/2) on, the local average is the mean of all so far; with
    start_epoch 1 and delta 1 the second local average (of 4 values) is compared with the first (of 3)."""
    decision = darts_es(every_epoch([1.0, 1.0, 1.0, 5.0, 1.0]), ev_freq=1, total_epochs=10, window=5, delta=1,
                        factor=1.3, start_epoch=1)
    # local averages: E=2: 1.0 (of epoch 0), E=3: 2.0 (of epoch 1) -> 2.0 / 1.0 > 1.3 at epoch 4; stop epoch E=0
    assert (decision.check_epoch, decision.stop_epoch) == (4, 1)
    assert decision.details["current_local_average"] == pytest.approx(2.0)


def cell(op: str) -> dict:
    return {"normal": [[op, 0]] * 8, "reduce": [["max_pool_3x3", 1]] * 8}


def test_last_changes_and_stable_genotype_by_hand():
    a, b = cell("sep_conv_3x3"), cell("skip_connect")
    changed_reduce = {**b, "reduce": [["avg_pool_3x3", 0]] * 8}
    genotypes = [a, b, b, changed_reduce, changed_reduce, changed_reduce, changed_reduce]  # initial, epochs 1-6
    assert last_changes(genotypes) == [{"normal": 1, "reduce": 0}, {"normal": 1, "reduce": 0},
                                       {"normal": 1, "reduce": 3}, {"normal": 1, "reduce": 3},
                                       {"normal": 1, "reduce": 3}, {"normal": 1, "reduce": 3}]
    decision = stable_genotype(genotypes, stable_epochs=3)
    assert (decision.check_epoch, decision.stop_epoch) == (6, 6)  # both cells unchanged since epoch 3
    assert "not changed for 3 epochs (since epoch 3) at epoch 6" in decision.reason
    assert stable_genotype(genotypes, stable_epochs=2).check_epoch == 5
    assert stable_genotype(genotypes, stable_epochs=4) is None
    assert stable_genotype(genotypes, stable_epochs=1, start_epoch=5).check_epoch == 5


def test_stable_genotype_does_not_count_warm_up_epochs():
    a = cell("sep_conv_3x3")
    genotypes = [a] * 8  # the alphas do not move during a warm-up: the cell is trivially unchanged
    assert stable_genotype(genotypes, stable_epochs=3).check_epoch == 3
    assert stable_genotype(genotypes, stable_epochs=3, warmup_epochs=4).check_epoch == 7


def test_decide_dispatches_on_the_rule():
    rows = [{"epoch": e, "genotype": cell("sep_conv_3x3"), "hessian_eigenvalue": None} for e in range(1, 5)]
    stop = {"rule": "none", "darts_es": ES, "stable_genotype": {"stable_epochs": 2, "start_epoch": 1}}
    assert decide(stop, rows, cell("sep_conv_3x3"), 10, 0, 0) is None
    assert decide({**stop, "rule": "stable_genotype"}, rows, cell("sep_conv_3x3"), 10, 0, 0).check_epoch == 2
    assert decide({**stop, "rule": "darts_es"}, rows, cell("sep_conv_3x3"), 10, 1, 0) is None  # no eigenvalues
    with pytest.raises(ValueError, match="unknown stop rule"):
        decide({**stop, "rule": "other"}, rows, cell("sep_conv_3x3"), 10, 0, 0)


@pytest.mark.parametrize(("changes", "epochs", "verdict", "fragment"), [
    ([10], 10, False, "last changed at epoch 10 of 10; it has to stay unchanged over the last 30% of the epochs (3)"),
    ([7], 10, True, "did not change over the last 3 of 10 epochs"),  # ceil(0.3 * 10) = 3, not 4
    ([8], 10, False, "last changed at epoch 8 of 10"),
    ([3], 7, True, "last 4 of 7 epochs"),  # ceil(2.1) = 3
    ([5], 7, False, "(3)"),
    ([], 4, True, "last 4 of 4 epochs"),
])
def test_conclusive_when_the_cell_is_unchanged_over_the_last_30_percent(changes, epochs, verdict, fragment):
    a, b = cell("sep_conv_3x3"), cell("skip_connect")
    genotypes, current = [a], a
    for epoch in range(1, epochs + 1):
        if epoch in changes:
            current = b if current is a else a
        genotypes.append(current)
    result, reason = conclusive(genotypes, None)
    assert result is verdict and fragment in reason, reason


def test_conclusive_when_a_rule_fired_and_never_inside_the_warm_up():
    genotypes = [cell("sep_conv_3x3")] * 11
    decision = stable_genotype(genotypes, stable_epochs=2)
    assert conclusive(genotypes, decision) == (True, "conclusive: the stable_genotype rule stopped the search at "
                                                     "epoch 2 (the cell of epoch 2)")
    assert conclusive(genotypes, decision.to_dict())[0]
    result, reason = conclusive(genotypes, None, warmup_epochs=8)  # the last 3 of 10 epochs include epoch 8
    assert not result and "warm-up" in reason
    assert conclusive(genotypes, None, warmup_epochs=7)[0]
