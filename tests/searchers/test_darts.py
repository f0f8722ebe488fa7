"""darts1 against an independent computation of its two updates."""

import copy

import torch

from nasbench.provenance import seed_all
from nasbench.registry import SPACES
from nasbench.searchers.darts import DartsSearcher
from tests.conftest import tiny_config


def test_one_step_matches_a_hand_computed_adam_and_sgd_update():
    cfg = tiny_config("darts1", "cnn", grad_clip="1e9", w_momentum="0.9")
    seed_all(0)
    space = SPACES.get("cnn")()
    data = space.load_data(None, cfg, torch.device("cpu"), 0)
    s = DartsSearcher(space, cfg, data, torch.device("cpu"))
    s.start_epoch(0)
    train, val = next(data.train.epoch(0)), next(data.val.epoch(0))
    reference = copy.deepcopy(s.model)
    t = cfg.train

    # alpha: the validation-loss gradient at the current weights, then Adam's first step, which
    # moves each coordinate by -lr * sign(g + wd * alpha) (bias-corrected m / sqrt(v) = sign)
    loss = reference.loss(val)
    alphas = reference.arch_parameters()
    grads = torch.autograd.grad(loss, alphas)
    expected_alphas = [a - t.arch_lr * torch.sign(g + t.arch_weight_decay * a) for a, g in zip(alphas, grads)]

    # w: the training-loss gradient at the *updated* alpha, then plain SGD (no momentum yet on step 1)
    with torch.no_grad():
        for a, new in zip(alphas, expected_alphas):
            a.copy_(new)
    weights = reference.weight_parameters()
    w_grads = torch.autograd.grad(reference.loss(train), weights)
    expected_weights = [w - t.w_lr * (g + t.w_weight_decay * w) for w, g in zip(weights, w_grads)]

    stats = s.step(train, val)
    assert torch.allclose(stats["arch_loss"], loss.detach())
    for got, want in zip(s.model.arch_parameters(), expected_alphas):
        assert torch.allclose(got, want, atol=1e-7)
    for got, want in zip(s.model.weight_parameters(), expected_weights):
        assert torch.allclose(got, want, atol=1e-6)


def test_cosine_schedule_starts_at_lr_and_ends_near_lr_min():
    cfg = tiny_config("darts1", "cnn", epochs="10")
    seed_all(0)
    space = SPACES.get("cnn")()
    s = DartsSearcher(space, cfg, space.load_data(None, cfg, torch.device("cpu"), 0), torch.device("cpu"))
    lrs = []
    for epoch in range(10):
        s.start_epoch(epoch)
        lrs.append(s.w_lr)
    assert lrs[0] == cfg.train.w_lr
    assert abs(lrs[5] - (cfg.train.w_lr + cfg.train.w_lr_min) / 2) < 1e-12  # half way: the mean
    assert all(a > b for a, b in zip(lrs, lrs[1:])) and lrs[-1] > cfg.train.w_lr_min
