import json

import numpy as np
import pytest
import torch

from workflow_lib.darts import GENOTYPES, PRIMITIVES, Genotype, derive_genotype
from workflow_lib.darts.derive import count_skips, edge_entropy
from workflow_lib.darts.genotypes import GenotypeError




def test_primitives_order():
    assert PRIMITIVES == ("none", "max_pool_3x3", "avg_pool_3x3", "skip_connect", "sep_conv_3x3",
                          "sep_conv_5x5", "dil_conv_3x3", "dil_conv_5x5")


@pytest.mark.parametrize("name", sorted(GENOTYPES))
def test_json_roundtrip(name, tmp_path):
    g = GENOTYPES[name]
    assert Genotype.from_json(g.to_json()) == g
    assert Genotype.from_dict(json.loads(json.dumps(g.to_dict()))) == g
    p = tmp_path / "sub" / "genotype.json"
    g.save(p)
    assert Genotype.load(p) == g
    d = json.loads(p.read_text())
    assert d["normal"][0] == list(g.normal[0]) and d["normal_concat"] == [2, 3, 4, 5]
    assert len(d["normal"]) == 8 and len(d["reduce"]) == 8


def test_kirigami_2019_cell():
    g = GENOTYPES["KIRIGAMI_2019"]
    assert g.normal == (("avg_pool_3x3", 1), ("skip_connect", 0), ("avg_pool_3x3", 2), ("skip_connect", 1),
                        ("avg_pool_3x3", 3), ("avg_pool_3x3", 2), ("avg_pool_3x3", 3), ("skip_connect", 4))
    assert g.reduce == (("skip_connect", 0), ("skip_connect", 1), ("sep_conv_5x5", 2), ("sep_conv_3x3", 0),
                        ("avg_pool_3x3", 3), ("avg_pool_3x3", 2), ("sep_conv_5x5", 4), ("sep_conv_3x3", 2))
    assert count_skips(g) == (3, 2)
    assert count_skips(GENOTYPES["DARTS_V2"]) == (2, 3)


@pytest.mark.parametrize("mutate, msg", [
    (lambda d: d["normal"].__setitem__(0, ["conv_7x7", 0]), "unknown op"),
    (lambda d: d["normal"].__setitem__(0, ["sep_conv_3x3", 2]), "out of range"),
    (lambda d: d["reduce"].__setitem__(7, ["sep_conv_3x3", 6]), "out of range"),
    (lambda d: d["reduce"].__setitem__(7, ["sep_conv_3x3", -1]), "out of range"),
    (lambda d: d["normal"].__setitem__(1, ["sep_conv_3x3", "0"]), "integer"),
    (lambda d: d["normal"].__setitem__(1, ["none", 0]), "none"),
    (lambda d: d["normal"].pop(), "even"),
    (lambda d: d.pop("reduce_concat"), "missing"),
    (lambda d: d.__setitem__("extra", 1), "unexpected"),
    (lambda d: d.__setitem__("normal_concat", [2, 3, 9]), "out of range"),
])
def test_validation_errors(mutate, msg):
    d = GENOTYPES["DARTS_V2"].to_dict()
    mutate(d)
    with pytest.raises(GenotypeError, match=msg):
        Genotype.from_dict(d)


def test_from_json_never_evals():
    with pytest.raises(GenotypeError):
        Genotype.from_json("Genotype(normal=[], normal_concat=[], reduce=[], reduce_concat=[])")


def test_derive_rule():
    an = torch.zeros(14, 8)
    # node 0 (edges 0,1): edge 1 has strong sep_conv_5x5; edge 0 has huge 'none' (ignored) + weak max_pool
    an[0, 0] = 10.0
    an[0, 1] = 1.0
    an[1, 5] = 3.0
    # node 1 (edges 2,3,4): edge 4 dil_conv_3x3 strongest, edge 2 skip second
    an[4, 6] = 4.0
    an[2, 3] = 2.0
    an[3, 4] = 1.0
    ar = torch.zeros(14, 8)
    ar[:, 2] = 1.0  # all avg pool, ties between edges -> lower input index first
    g = derive_genotype(an, ar)
    assert g.normal[0] == ("sep_conv_5x5", 1)
    assert g.normal[1] == ("max_pool_3x3", 0)
    assert g.normal[2] == ("dil_conv_3x3", 2)
    assert g.normal[3] == ("skip_connect", 0)
    assert all(op != "none" for op, _ in g.normal + g.reduce)
    assert g.reduce[:2] == (("avg_pool_3x3", 0), ("avg_pool_3x3", 1))
    assert g.normal_concat == (2, 3, 4, 5)


def test_derive_from_model_alphas_valid():
    torch.manual_seed(0)
    g = derive_genotype(1e-3 * torch.randn(14, 8), 1e-3 * torch.randn(14, 8))
    assert Genotype.from_json(g.to_json()) == g
    with pytest.raises(ValueError):
        derive_genotype(torch.zeros(13, 8), torch.zeros(14, 8))


def test_edge_entropy():
    w = np.full((14, 8), 1 / 8)
    w[3] = 0.0
    w[3, 2] = 1.0
    e = edge_entropy(w)
    assert e.shape == (14,)
    assert np.allclose(e[0], np.log(8)) and e[3] == 0.0
    assert np.allclose(edge_entropy(torch.softmax(torch.randn(14, 8), -1)).shape, (14,))
