"""LARS (optim.lars) against a hand computation of SimCLR's update, the excluded parameters'
plain momentum update, and the learning-rate scaling rules of --lr-scaling.

    python -m pytest -q tests/test_lars.py
"""
import math

import pytest
import torch
from torch import nn

import common
import optim
import pretrain


def model_with_grads():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4))
    for p in net.parameters():
        p.grad = torch.randn_like(p)
    return net


def test_one_lars_step_by_hand():
    net = model_with_grads()
    w0, b0 = net[0].weight.detach().clone(), net[0].bias.detach().clone()
    gamma0 = net[1].weight.detach().clone()
    gw, gb, ggamma = (p.grad.clone() for p in (net[0].weight, net[0].bias, net[1].weight))
    lr, wd, eta, m = 0.6, 1e-6, 0.001, 0.9
    opt = optim.lars(net.parameters(), lr, wd)
    opt.step()
    # the weight: decayed, then scaled by the trust ratio eta * ||w|| / ||g + wd w||
    g = gw + wd * w0
    trust = eta * w0.norm() / g.norm()
    v_w = lr * trust * g
    assert torch.allclose(net[0].weight, w0 - v_w, rtol=0, atol=1e-6)
    # excluded (bias, BatchNorm weight): no decay, no trust ratio: the plain momentum update
    assert torch.allclose(net[0].bias, b0 - lr * gb, rtol=0, atol=1e-6)
    assert torch.allclose(net[1].weight, gamma0 - lr * ggamma, rtol=0, atol=1e-6)
    # a second step with other gradients and a lower lr: v <- m v + lr r g, w <- w - v
    w1, b1 = net[0].weight.detach().clone(), net[0].bias.detach().clone()
    gw2, gb2 = torch.randn_like(w1), torch.randn_like(b1)
    net[0].weight.grad, net[0].bias.grad = gw2.clone(), gb2.clone()
    optim.set_lr(opt, 0.3)
    opt.step()
    g2 = gw2 + wd * w1
    v_w2 = m * v_w + 0.3 * (eta * w1.norm() / g2.norm()) * g2
    assert torch.allclose(net[0].weight, w1 - v_w2, rtol=0, atol=1e-6)
    assert torch.allclose(net[0].bias, b1 - (m * lr * gb + 0.3 * gb2), rtol=0, atol=1e-6)


def test_trust_ratio_is_one_for_a_zero_weight():
    p = nn.Parameter(torch.zeros(2, 2))
    p.grad = torch.ones(2, 2)
    optim.lars([p], lr=0.1, wd=0.0).step()
    assert torch.allclose(p, torch.full((2, 2), -0.1))


def test_lars_groups_exclude_biases_and_batchnorm():
    opt = optim.lars(model_with_grads().parameters(), 0.1, 1e-6)
    adapted, excluded = opt.param_groups
    assert adapted["lars"] and adapted["weight_decay"] == 1e-6 and all(p.ndim > 1 for p in adapted["params"])
    assert not excluded["lars"] and excluded["weight_decay"] == 0 and len(excluded["params"]) == 3
    assert adapted["momentum"] == 0.9 and adapted["trust_coefficient"] == 0.001


def test_lr_scaling_rules():
    assert optim.scaled_lr(0.3, 4096) == pytest.approx(4.8)  # SimCLR App. B.1
    assert optim.scaled_lr(0.075, 4096, "sqrt") == pytest.approx(0.075 * 64)
    assert optim.scaled_lr(0.12, 256) == 0.12


@pytest.mark.parametrize("flags,lr,wd", [([], 0.12, 5e-4), (["--optimizer", "lars"], 1.0, 1e-6),
                                         (["--optimizer", "lars", "--lr-scaling", "sqrt"], 0.075, 1e-6),
                                         (["--lr-scaling", "sqrt"], 0.0075, 5e-4),
                                         (["--optimizer", "lars", "--lr", "0.3", "--wd", "1e-4"], 0.3, 1e-4),
                                         (["--wd", "0"], 0.12, 0.0)])
def test_default_lr_and_wd_follow_the_optimizer(flags, lr, wd):
    """LARS takes SimCLR's CIFAR-10 recipe (its README's command: --learning_rate=1.0 per 256 images,
    --weight_decay=1e-6), not SGD's 5e-4; a value given on the command line is kept."""
    args = pretrain.build_parser().parse_args(flags)
    pretrain.check_args(args)
    assert args.lr == pytest.approx(lr) and args.wd == pytest.approx(wd)
    assert ("_lars" in args.out_dir) == ("lars" in flags) and ("_sqrt" in args.out_dir) == ("sqrt" in flags)
    assert math.isfinite(optim.scaled_lr(args.lr, args.bs, args.lr_scaling))


def test_pretrain_with_lars(tiny_data, tmp_path):
    from conftest import run_main
    out = str(tmp_path / "lars")
    run_main(pretrain, ["--data-dir", tiny_data[0], "--no-download", "--device", "cpu", "--workers", "0",
                        "--encoder", "convnet", "--fraction", "1", "--bs", "16", "--epochs", "1", "--knn-every", "0",
                        "--proj-dim", "32", "--optimizer", "lars", "--lr-scaling", "sqrt", "--out-dir", out])
    config = common.read_json(f"{out}/config.json")
    assert config["args"]["optimizer"] == "lars" and config["args"]["lr"] == 0.075 and config["args"]["wd"] == 1e-6
    ckpt = torch.load(f"{out}/checkpoint.pt", weights_only=False)
    assert ckpt["optimizer"]["param_groups"][0]["lars"] is True


def test_optim_is_a_ground_floor_module_whose_example_runs():
    """optim.py holds the optimiser pieces on its own: its docstring runs, and it imports no module
    of this project (common re-exports its names for older callers)."""
    import ast
    import doctest
    assert doctest.testmod(optim).failed == 0 and doctest.testmod(optim).attempted > 0
    tree = ast.parse(open(optim.__file__).read())
    imported = {a.name.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    imported |= {n.module.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
    assert imported <= {"math", "torch"}
    assert common.lars is optim.lars and common.lr_at is optim.lr_at
