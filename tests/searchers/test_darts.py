"""darts1 against an independent computation of its two updates, and of its one-level variant."""

import copy

import pytest
import torch

from nasbench.errors import UserError
from nasbench.provenance import seed_all
from nasbench.registry import SEARCHERS, SPACES
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


def test_one_level_step_takes_both_updates_from_one_training_loss():
    # SNAS' and DARTS' one-level optimisation: the gradients of the training loss at the same point, alpha's
    # clipped to arch_grad_clip, the weights' to grad_clip; no architecture-split batch is used
    cfg = tiny_config("darts1", "cnn", one_level="true", arch_grad_clip="1e-3", grad_clip="0.5")
    seed_all(0)
    space = SPACES.get("cnn")()
    data = space.load_data(None, cfg, torch.device("cpu"), 0)
    s = DartsSearcher(space, cfg, data, torch.device("cpu"))
    s.start_epoch(0)
    assert not s.uses_val_batches(0)
    train = next(data.train.epoch(0))
    reference = copy.deepcopy(s.model)
    t = cfg.train

    loss = reference.loss(train)
    alphas, weights = reference.arch_parameters(), reference.weight_parameters()
    grads = torch.autograd.grad(loss, [*alphas, *weights])
    a_grads, w_grads = grads[: len(alphas)], grads[len(alphas) :]
    a_norm = torch.sqrt(sum((g**2).sum() for g in a_grads))
    w_norm = torch.sqrt(sum((g**2).sum() for g in w_grads))
    assert a_norm > 1e-3 and w_norm > 0.5  # both clips are active
    a_grads = [g * 1e-3 / a_norm for g in a_grads]
    w_grads = [g * 0.5 / w_norm for g in w_grads]
    # Adam's first step moves each coordinate by -lr * g' / (|g'| + eps), g' = g + wd * alpha (bias-corrected
    # m / sqrt(v)); SGD's first step has no momentum yet
    decayed = [g + t.arch_weight_decay * a for a, g in zip(alphas, a_grads)]
    expected_alphas = [a - t.arch_lr * g / (g.abs() + 1e-8) for a, g in zip(alphas, decayed)]
    expected_weights = [w - t.w_lr * (g + t.w_weight_decay * w) for w, g in zip(weights, w_grads)]

    stats = s.step(train, None)
    assert torch.allclose(stats["train_loss"], loss.detach()) and torch.equal(stats["arch_loss"], stats["train_loss"])
    for got, want in zip(s.model.arch_parameters(), expected_alphas):
        assert torch.allclose(got, want, atol=1e-7)
    for got, want in zip(s.model.weight_parameters(), expected_weights):
        assert torch.allclose(got, want, atol=1e-6)


def test_one_level_keeps_pc_darts_warm_up_and_is_refused_where_it_cannot_apply():
    cfg = tiny_config("pcdarts", "nb201", one_level="true", warmup_epochs="1", epochs="2")
    seed_all(0)
    space = SPACES.get("nb201")()
    data = space.load_data(None, cfg, torch.device("cpu"), 0)
    s = SEARCHERS.get("pcdarts")(space, cfg, data, torch.device("cpu"))
    before = [a.detach().clone() for a in s.alphas]
    s.start_epoch(0)  # warm-up: the weights alone
    s.step(next(data.train.epoch(0)), None)
    assert all(torch.equal(a, b) for a, b in zip(s.alphas, before))
    s.start_epoch(1)
    s.step(next(data.train.epoch(1)), None)
    assert not all(torch.equal(a, b) for a, b in zip(s.alphas, before))
    assert not s.uses_val_batches(1)
    with pytest.raises(UserError, match="one_level takes no second-order"):
        tiny_config("darts2", "nb201", one_level="true")
    with pytest.raises(UserError, match="one_level with perturb=random"):
        tiny_config("sdarts-rs", "nb201", one_level="true")


def test_snas_is_one_level_where_its_code_is():
    cnn, nb201 = tiny_config("snas", "cnn").searcher_cfg, tiny_config("snas", "nb201").searcher_cfg
    assert cnn.one_level and cnn.arch_grad_clip == 10.0  # SNAS-Series' train_search.py on the DARTS space
    assert not nb201.one_level and nb201.arch_grad_clip == 0.0  # DrNAS' NAS-Bench-201 code: two splits
    assert not tiny_config("snas", "cnn", one_level="false").searcher_cfg.one_level
