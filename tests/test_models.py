"""MODELS registry: published parameter counts; forward/backward/output shape on the workflow's input shapes."""

import pytest
import torch

from workflow_lib.models import MODELS, build_model, count_parameters, resnet18, tiny_resnet




# tiny settings for the DARTS network so the test takes seconds
SMALL = {"darts_eval": {"genotype": "DARTS_V2", "C": 4, "layers": 3, "auxiliary": True}}


def test_published_parameter_counts():
    assert count_parameters(resnet18(in_channels=1, out_dim=1)) == 11_168_193
    assert count_parameters(tiny_resnet(in_channels=1, out_dim=1)) == 77_273


def test_resnet_reuses_torchvision_blocks():
    from torchvision.models.resnet import BasicBlock

    model = tiny_resnet(1, 1)
    assert sum(isinstance(m, BasicBlock) for m in model.modules()) == 4
    assert sum(isinstance(m, BasicBlock) for m in resnet18(1, 1).modules()) == 8
    assert not any(isinstance(m, torch.nn.MaxPool2d) for m in model.modules())


@pytest.mark.parametrize("name", sorted(MODELS))
@pytest.mark.parametrize("shape,out_dim", [((1, 32, 80), 1), ((3, 32, 32), 10), ((1, 8, 8), 10)])
def test_forward_backward_shapes(name, shape, out_dim):
    torch.manual_seed(0)
    model = build_model(name, shape[0], out_dim, **SMALL.get(name, {}))
    model.train()
    out = model(torch.randn(2, *shape))
    logits, aux = out if isinstance(out, tuple) else (out, None)
    assert logits.shape == (2, out_dim)
    loss = logits.pow(2).mean() + (aux.pow(2).mean() if aux is not None else 0)
    loss.backward()
    assert all(p.grad is not None for n, p in model.named_parameters() if "auxiliary" not in n)
    model.eval()
    with torch.no_grad():
        out = model(torch.randn(3, *shape))
    logits = out[0] if isinstance(out, tuple) else out
    assert logits.shape == (3, out_dim)


def test_darts_eval_excludes_aux_from_count():
    from workflow_lib.darts import count_parameters as darts_count

    with_aux = build_model("darts_eval", 1, 1, **SMALL["darts_eval"])
    without = build_model("darts_eval", 1, 1, **{**SMALL["darts_eval"], "auxiliary": False})
    assert count_parameters(with_aux) == count_parameters(without) == darts_count(with_aux)
    assert count_parameters(with_aux, exclude_aux=False) > count_parameters(with_aux)


def test_unknown_model():
    with pytest.raises(ValueError, match="unknown model"):
        build_model("vgg", 1, 1)
