"""darts2: the unrolled hypergradient against autograd through the virtual step, and its pure pieces."""

from __future__ import annotations

import contextlib
import copy
from types import SimpleNamespace

import pytest
import torch
import torch.autograd.forward_ad as fwAD
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call

from nasbench.genotype import Genotype
from nasbench.provenance import seed_all
from nasbench.registry import SPACES
from nasbench.searchers.darts import DartsSearcher
from nasbench.searchers.hypergradient import (
    clip_coefficient,
    finite_difference_eps,
    forward_mode_hvp,
    hessian_vector_product,
    virtual_sgd_step,
)
from nasbench.searchers.second_order import SecondOrderDarts
from nasbench.spaces.base import Supernet
from nasbench.spaces.mixing import CellSpec
from tests.conftest import tiny_config

# Tolerances on the implicit (second-order) term of the hypergradient, relative, in float64. The central
# difference errs by O(eps^2): measured 1.0e-3 on the smooth toy supernet at the paper's eps (scale 0.01),
# 1.0e-5 at scale 0.001, 1.8e-4 with dropout 0.5 (2.7 if the passes drew their own masks), 1.5e-4 with an
# active gradient clip (384 if the virtual step ignored the clip), and 2e-8 on the tiny CNN
# supernet at scale 1e-7. A factor-2 error, such as dividing by eps instead of 2 * eps, is off by
# 1.0 and fails each of them.


def rel_err(got: list[torch.Tensor], want: list[torch.Tensor]) -> float:
    num = sum(float((g - w).pow(2).sum()) for g, w in zip(got, want))
    den = sum(float(w.pow(2).sum()) for w in want)
    return (num / den) ** 0.5


def test_virtual_sgd_step_predicts_the_real_clipped_sgd_step():
    torch.manual_seed(0)
    w = [nn.Parameter(torch.randn(3, 4, dtype=torch.float64)), nn.Parameter(torch.randn(5, dtype=torch.float64))]
    opt = torch.optim.SGD(w, lr=0.05, momentum=0.9, weight_decay=3e-4)
    for max_norm in (100.0, 0.5):  # unclipped, then clipped with the momentum buffer of the first step
        grads = [torch.randn_like(p) for p in w]
        clip = clip_coefficient(grads, max_norm)
        buffers = [opt.state.get(p, {}).get("momentum_buffer") for p in w]
        predicted = virtual_sgd_step(w, [g * clip for g in grads], buffers, 0.05, 0.9, 3e-4)
        assert all(not torch.equal(a, b) for a, b in zip(predicted, w))  # it did not move the weights
        for p, g in zip(w, grads):
            p.grad = g.clone()
        norm = nn.utils.clip_grad_norm_(w, max_norm)
        assert (float(clip) == 1.0) == (float(norm) < max_norm)
        opt.step()
        for got, want in zip(predicted, w):
            torch.testing.assert_close(got, want.detach(), rtol=0, atol=1e-15)


def test_central_difference_on_a_cubic_has_the_stated_eps_and_divisor():
    # L(w, a) = sum(a * w^3): grad_a L = w^3, whose exact product with v is 3 w^2 v. The central
    # difference of w^3 is ((w + e v)^3 - (w - e v)^3) / (2 e) = 3 w^2 v + e^2 v^3, exactly.
    torch.manual_seed(1)
    w, v = torch.randn(6, dtype=torch.float64), torch.randn(6, dtype=torch.float64)
    (hvp,) = hessian_vector_product(lambda ws: [ws[0] ** 3], [w], [v])
    eps = 0.01 / v.norm()
    assert torch.allclose(finite_difference_eps([v]), eps)
    torch.testing.assert_close(hvp, 3 * w**2 * v + eps**2 * v**3, rtol=1e-9, atol=1e-12)
    assert (hvp - 3 * w**2 * v).abs().max() > 0  # eps is finite, not the exact product in disguise
    assert torch.equal(hessian_vector_product(lambda ws: [ws[0] ** 3], [w], [torch.zeros(6)])[0], torch.zeros(6))


class LossModule(nn.Module):
    def __init__(self, net):
        super().__init__()
        self.net = net

    def forward(self, batch):
        return self.net.loss(batch)


def exact_and_direct(s, train, val):
    """Autograd through the virtual step of ``s``'s optimizer: (d/d alpha L_val(w'(alpha), alpha), the
    same with w' held fixed), on a copy of the supernet."""
    live = torch.get_rng_state()
    seed = int(torch.randint(2**62, (1,)))  # as the searcher does: one draw seeds its training-batch passes
    after_draw = torch.get_rng_state()
    ref = copy.deepcopy(s.model)
    loss = LossModule(ref)
    arch = {id(a) for a in ref.arch_parameters()}
    named = [(f"net.{n}", p) for n, p in ref.named_parameters() if id(p) not in arch]
    alphas = ref.arch_parameters()
    group = s.w_opt.param_groups[0]
    xi, mu, wd = group["lr"], group["momentum"], group["weight_decay"]
    torch.random.default_generator.manual_seed(seed)
    grads = torch.autograd.grad(ref.loss(train), [p for _, p in named], create_graph=True)
    buffers = [s.w_opt.state[p]["momentum_buffer"] for p in s.weights]
    assert all(float(b.abs().max()) > 0 for b in buffers)
    norm = sum(float(g.detach().pow(2).sum()) for g in grads) ** 0.5
    c = min(1.0, s.cfg.train.grad_clip / (norm + 1e-6))  # the real step's clip factor, held constant
    c = 1.0 if s.clip_rule() == "off" else c  # the reference CNN code steps with the unclipped gradient
    virtual = {n: p - xi * (mu * b + c * g + wd * p) for (n, p), g, b in zip(named, grads, buffers)}
    torch.set_rng_state(after_draw)
    exact = torch.autograd.grad(functional_call(loss, virtual, (val,)), alphas)
    fixed = {n: w.detach() for n, w in virtual.items()}
    torch.set_rng_state(after_draw)
    direct = torch.autograd.grad(functional_call(loss, fixed, (val,)), alphas)
    torch.set_rng_state(live)  # the searcher starts from the same random state
    return list(exact), list(direct)


def check_against_autograd(s, train, val, tol):
    exact, direct = exact_and_direct(s, train, val)
    weights_before = [w.detach().clone() for w in s.weights]
    s.a_opt.zero_grad(set_to_none=True)
    s.arch_gradient(train, val)
    got = [a.grad for a in s.alphas]
    implicit_fd = [g - d for g, d in zip(got, direct)]
    implicit_exact = [e - d for e, d in zip(exact, direct)]
    assert rel_err(implicit_fd, implicit_exact) < tol
    assert rel_err([2 * i for i in implicit_fd], implicit_exact) > tol  # the /eps pitfall fails
    assert rel_err(got, exact) < tol
    assert all(torch.equal(a, b) for a, b in zip(weights_before, s.weights))  # w itself never moved


# The paper's eps (scale 0.01) unless given; with dropout, the passes on the training batch must share their
# masks; a clip of 0.05 is active on the toy (gradient norm about 1.3) and scales the second-order term.
@pytest.mark.parametrize(
    "sets,tol,dropout",
    [({}, 1e-2, 0.0), ({"fd_eps_scale": "1e-3"}, 1e-4, 0.0), ({}, 1e-2, 0.5), ({"grad_clip": "0.05"}, 1e-2, 0.0)],
)
def test_unrolled_gradient_matches_autograd_on_a_smooth_supernet(sets, tol, dropout):
    s = toy_searcher(SecondOrderDarts, dropout, **sets, virtual_clip="step")
    s.step(toy_batch(0), toy_batch(1))  # momentum buffers and Adam state now exist
    check_against_autograd(s, toy_batch(2), toy_batch(3), tol)


def test_unrolled_gradient_matches_autograd_on_the_cnn_supernet():
    # ReLU and max-pool kinks make the paper's eps a secant (about 175 % off the exact product on this
    # tiny supernet); a smaller eps in float64 checks the wiring through the real space.
    cfg = tiny_config("darts2", "cnn", fd_eps_scale="1e-7")
    seed_all(0)
    space = SPACES.get("cnn")()
    data = space.load_data(None, cfg, torch.device("cpu"), 0)
    s = SecondOrderDarts(space, cfg, data, torch.device("cpu"))
    s.model.double()  # in place: the optimizers keep the same parameters
    s.start_epoch(0)
    pairs = ([(x.double(), y) for x, y in pair] for pair in zip(data.train.epoch(0), data.val.epoch(0)))
    s.step(*next(pairs))
    check_against_autograd(s, *next(pairs), tol=1e-4)


def test_reference_cnn_rule_steps_with_the_unclipped_gradient():
    """quark0/darts cnn/architect.py: w' = w - xi (mu m + g + wd w) with g unclipped, the implicit term times xi,
    even while the real step clips (0.05 on this toy, whose gradient norm is about 1.3)."""
    s = toy_searcher(SecondOrderDarts, grad_clip="0.05")
    assert s.clip_rule() == "off"  # the default on a darts-cifar10 space
    s.step(toy_batch(0), toy_batch(1))
    check_against_autograd(s, toy_batch(2), toy_batch(3), 1e-2)


def implicit_term(s, train, val):
    """(the unrolled gradient minus its direct part, v at the virtual weights), from the same state."""
    state = copy.deepcopy((s.model.state_dict(), s.w_opt.state_dict(), torch.get_rng_state()))
    _, direct = exact_and_direct(s, train, val)
    s.a_opt.zero_grad(set_to_none=True)
    s.arch_gradient(train, val)
    got = [a.grad.clone() for a in s.alphas]
    s.model.load_state_dict(state[0])
    s.w_opt.load_state_dict(state[1])
    torch.set_rng_state(state[2])
    return [g - d for g, d in zip(got, direct)]


def test_reference_ptb_rule_also_clips_v_before_the_finite_difference():
    """quark0/darts rnn/architect.py clips v to the clip norm: the implicit term is the clipped-step one times
    min(1, clip / ||v||) (the difference is linear in v, and eps = scale / ||v|| keeps the same points)."""
    sets = {"grad_clip": "0.05"}
    with_v, step_only = (toy_searcher(SecondOrderDarts, **sets, virtual_clip=rule) for rule in ("step+v", "step"))
    for s in (with_v, step_only):
        s.step(toy_batch(0), toy_batch(1))
    # v by autograd: the validation gradient at the virtual weights of the clipped step
    ref = copy.deepcopy(step_only.model)
    weights = [p for p in ref.parameters() if all(p is not a for a in ref.arch_parameters())]
    grads = torch.autograd.grad(ref.loss(toy_batch(2)), weights)
    c = min(1.0, 0.05 / (sum(float(g.pow(2).sum()) for g in grads) ** 0.5 + 1e-6))
    group = step_only.w_opt.param_groups[0]
    with torch.no_grad():
        for p, g, live in zip(weights, grads, step_only.weights):
            buf = step_only.w_opt.state[live]["momentum_buffer"]
            p -= group["lr"] * (group["momentum"] * buf + c * g + group["weight_decay"] * p)
    v = torch.autograd.grad(ref.loss(toy_batch(3)), weights)
    v_norm = sum(float(g.pow(2).sum()) for g in v) ** 0.5
    v_clip = min(1.0, 0.05 / (v_norm + 1e-6))
    assert v_clip < 0.5  # the clip is active
    got = implicit_term(with_v, toy_batch(2), toy_batch(3))
    want = [v_clip * t for t in implicit_term(step_only, toy_batch(2), toy_batch(3))]
    assert rel_err(got, want) < 1e-6


@pytest.mark.parametrize(("space", "rule"), [("cnn", "off"), ("nb201", "off"), ("rnn", "step+v")])
def test_each_space_gets_its_reference_codes_clip_rule(space, rule):
    cfg = tiny_config("darts2", space)
    seed_all(0)
    obj = SPACES.get(space)()
    s = SecondOrderDarts(obj, cfg, obj.load_data(None, cfg, torch.device("cpu"), 0), torch.device("cpu"))
    assert s.clip_rule() == rule


def test_the_validation_pass_at_the_virtual_weights_leaves_batch_norm_statistics_alone():
    """The reference makes that pass on a copy of the network, so the live running statistics see three training
    passes per architecture step (the virtual step's gradient and the two finite-difference points), as
    batch norm's own pass counter shows; the step's loss is the same as on the live buffers."""
    cfg = tiny_config("darts2", "cnn")
    seed_all(0)
    space = SPACES.get("cnn")()
    data = space.load_data(None, cfg, torch.device("cpu"), 0)
    s = SecondOrderDarts(space, cfg, data, torch.device("cpu"))
    s.start_epoch(0)
    counters = [b for n, b in s.model.named_buffers() if n.endswith("num_batches_tracked")]
    assert counters and all(int(c) == 0 for c in counters)
    train, val = next(iter(data.train.epoch(0))), next(iter(data.val.epoch(0)))
    s.arch_gradient(train, val)
    assert {int(c) for c in counters} == {3}
    before = {n: b.clone() for n, b in s.model.named_buffers()}
    on_copies = s.loss_at(s.weights, val, own_buffers=True)
    assert all(torch.equal(b, before[n]) for n, b in s.model.named_buffers())
    assert float(on_copies.detach()) == float(s.loss_at(s.weights, val).detach())  # batch statistics either way


def test_records_from_before_the_setting_read_as_the_clipped_step_they_ran():
    from nasbench.report import flat_settings
    from nasbench.results import RunRecord

    old = RunRecord(
        searcher="darts2",
        space="cnn",
        seed=0,
        preset="tiny",
        provenance={},
        data="",
        status="completed",
        config={"data": None, "train": {}, "space_config": {}, "searcher_config": {"fd_eps_scale": 0.01}},
    )
    assert flat_settings(old)["searcher.virtual_clip"] == "step"
    old.config["searcher_config"]["virtual_clip"] = None
    assert flat_settings(old)["searcher.virtual_clip"] is None


class CountingSupernet(Supernet):
    """A two-op toy supernet whose carried state counts the loss evaluations made outside frozen_state."""

    def __init__(self, dropout: float) -> None:
        super().__init__()
        self.lin, self.dropout = nn.Linear(3, 2), dropout
        self.add_cell_parameters("cell", CellSpec(("tanh", "square"), ((0, 1),)))
        with torch.no_grad():
            self.alpha_cell.copy_(0.1 * torch.randn(1, 2))
        self.advanced, self.frozen = 0, False

    def loss(self, batch):
        x, y = batch
        self.advanced += not self.frozen
        mix = self.mixing("cell").weights[0]
        h = F.dropout(self.lin(x), self.dropout, self.training)
        # the mean square written out: torch 2.14's F.mse_loss cannot be differentiated forward through its
        # backward (hvp="forward") when the target carries no tangent
        return (mix[0] * torch.tanh(h) + mix[1] * h.pow(2) - y).pow(2).mean()

    @contextlib.contextmanager
    def frozen_state(self):
        self.frozen = True
        try:
            yield
        finally:
            self.frozen = False

    def evaluate(self, batch):
        return {"loss_sum": self.loss(batch).detach(), "count": torch.tensor(1)}

    def derive(self, strengths):
        return Genotype.of({}, {})


def toy_searcher(cls: type[DartsSearcher], dropout: float = 0.0, **sets: str) -> DartsSearcher:
    torch.manual_seed(0)
    space = SimpleNamespace(supernet=lambda cfg, data, options: CountingSupernet(dropout).double())
    name = "darts2" if cls is SecondOrderDarts else "darts1"
    space.family = "darts-cifar10"
    s = cls(space, tiny_config(name, "cnn", **sets), None, torch.device("cpu"))
    s.start_epoch(0)
    return s


def toy_batch(seed: int):
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(4, 3, generator=gen, dtype=torch.float64), torch.randn(4, 2, generator=gen, dtype=torch.float64)


@pytest.mark.parametrize("cls", [DartsSearcher, SecondOrderDarts])
def test_only_the_real_passes_advance_the_carried_state(cls):
    s = toy_searcher(cls)
    s.step(toy_batch(0), toy_batch(1))
    s.step(toy_batch(2), toy_batch(3))
    assert s.model.advanced == 4  # per step: the architecture's validation pass and the weight step


def test_with_xi_zero_the_gradient_is_first_order():
    first, second = toy_searcher(DartsSearcher), toy_searcher(SecondOrderDarts)
    for s in (first, second):
        s.step(toy_batch(0), toy_batch(1))  # a momentum buffer exists: w' = w needs xi = 0, not mu = 0
        s.w_opt.param_groups[0]["lr"] = 0.0
        s.a_opt.zero_grad(set_to_none=True)
        s.arch_gradient(toy_batch(2), toy_batch(3))
    assert torch.allclose(second.model.alpha_cell.grad, first.model.alpha_cell.grad, rtol=1e-6, atol=1e-9)
    assert second.model.alpha_cell.grad.abs().max() > 0


def test_shared_train_gradient_steps_the_weights_from_alpha_before_its_update():
    shared, plain = toy_searcher(SecondOrderDarts, share_train_grad="true"), toy_searcher(SecondOrderDarts)
    reference = copy.deepcopy(shared.model)  # the same initial weights and alpha
    weights = reference.weight_parameters()
    reference.loss(toy_batch(0)).backward()  # at alpha before the architecture step
    nn.utils.clip_grad_norm_(weights, shared.cfg.train.grad_clip)
    t = shared.cfg.train
    torch.optim.SGD(weights, lr=t.w_lr, momentum=t.w_momentum, weight_decay=t.w_weight_decay).step()
    for s in (shared, plain):
        s.step(toy_batch(0), toy_batch(1))
    gap = [float((a - b).detach().abs().max()) for a, b in zip(shared.model.weight_parameters(), weights)]
    plain_gap = [float((a - b).detach().abs().max()) for a, b in zip(plain.model.weight_parameters(), weights)]
    assert max(gap) < 1e-12 and max(plain_gap) > 1e-9  # plain darts2 takes it after the update
    assert torch.equal(shared.model.alpha_cell, plain.model.alpha_cell)  # the architecture gradient is the same
    assert shared.model.advanced == plain.model.advanced == 2  # one training and one validation pass count


def test_shared_train_gradient_keeps_the_rnn_finite_difference_on_the_state_it_started_from():
    """The shared pass advances the hidden state; the finite-difference passes must still start where it started."""
    steps = {}
    for share in ("false", "true"):
        cfg = tiny_config("darts2", "rnn", share_train_grad=share)
        seed_all(0)
        space = SPACES.get("rnn")()
        data = space.load_data(None, cfg, torch.device("cpu"), 0)
        s = SecondOrderDarts(space, cfg, data, torch.device("cpu"))
        s.start_epoch(0)
        train = data.train.epoch(0)
        with torch.no_grad():
            s.model.loss(next(train))  # a hidden state to carry
        start = dict(s.model.hidden)
        s.arch_gradient(next(train), next(data.val.epoch(0)))
        steps[share] = s, start
    (plain, _), (shared, start) = steps["false"], steps["true"]
    assert all(torch.equal(a.grad, b.grad) for a, b in zip(shared.alphas, plain.alphas))
    assert "train" in shared.model.hidden and (
        "train" not in start or not torch.equal(start["train"], shared.model.hidden["train"])
    )


def test_forward_mode_product_on_a_cubic_is_exact():
    # L(w, a) = sum(a * w^3): the product with v is 3 w^2 v, with none of the central difference's e^2 v^3
    torch.manual_seed(1)
    w, v = torch.randn(6, dtype=torch.float64), torch.randn(6, dtype=torch.float64)
    a = torch.ones(6, dtype=torch.float64, requires_grad=True)

    def grad_alpha_at(ws):
        return list(torch.autograd.grad((a * ws[0] ** 3).sum(), [a]))

    (hvp,) = forward_mode_hvp(grad_alpha_at, [w], [v])
    torch.testing.assert_close(hvp, 3 * w**2 * v, rtol=1e-14, atol=1e-14)


def test_forward_mode_product_takes_the_tangents_off_autograds_tape():
    """A tangent whose computation involves alpha is recorded by autograd (and holds its inputs) in a plain
    dual pass; inside ``forward_mode_hvp`` it is not, and the product is still exact (double backward)."""
    gen = torch.Generator().manual_seed(3)
    w, v = (torch.randn(5, generator=gen, dtype=torch.float64) for _ in range(2))
    a = torch.rand(5, generator=gen, dtype=torch.float64).requires_grad_()
    tangents = []

    def grad_alpha_at(ws):
        h = torch.tanh(a * ws[0])  # its tangent (1 - h^2) * a * v involves alpha
        tangents.append(fwAD.unpack_dual(h).tangent)
        return list(torch.autograd.grad((h * h).sum(), [a]))

    with fwAD.dual_level():
        grad_alpha_at([fwAD.make_dual(w, v)])
    (hvp,) = forward_mode_hvp(grad_alpha_at, [w], [v])
    on_tape, off_tape = tangents
    assert on_tape.grad_fn is not None and off_tape.grad_fn is None
    torch.testing.assert_close(off_tape, on_tape.detach(), rtol=0, atol=0)
    wd = w.clone().requires_grad_()
    (gw,) = torch.autograd.grad((torch.tanh(a * wd) ** 2).sum(), [wd], create_graph=True)
    (want,) = torch.autograd.grad((gw * v).sum(), [a])
    torch.testing.assert_close(hvp, want, rtol=1e-13, atol=1e-13)


@pytest.mark.parametrize("space", ["nb201", "cnn", "rnn"])
def test_forward_mode_product_matches_double_backward_on_each_supernet(space):
    """The exact product by forward over reverse against reverse over reverse, grad_alpha(grad_w L . v), in
    float64 on each space's tiny supernet (dropout masks shared through the searcher's seeded passes)."""
    cfg = tiny_config("darts2", space)
    seed_all(0)
    obj = SPACES.get(space)()
    data = obj.load_data(None, cfg, torch.device("cpu"), 0)
    s = SecondOrderDarts(obj, cfg, data, torch.device("cpu"))
    s.model.double()
    train = next(iter(data.train.epoch(0)))
    if space != "rnn":
        train = (train[0].double(), train[1])
    state, v = s.model.carried_state(), [torch.randn_like(w) for w in s.weights]
    got = forward_mode_hvp(lambda ws: s.train_alpha_grad(ws, train, 7, state), s.weights, v)
    with s.model.frozen_state(), s.seeded_rng(7):
        s.model.restore_state(state)
        loss = s.loss_at(s.weights, train)
    grads = torch.autograd.grad(loss, s.weights, create_graph=True, allow_unused=True, materialize_grads=True)
    inner = sum((g * d).sum() for g, d in zip(grads, v))
    want = torch.autograd.grad(inner, s.alphas, allow_unused=True, materialize_grads=True)
    assert rel_err(got, list(want)) < 1e-12


def test_unrolled_gradient_with_the_forward_mode_product_is_exact():
    """With an exact product, eq. 7 with v at w' is the exact gradient through the one-step unroll."""
    s = toy_searcher(SecondOrderDarts, hvp="forward", virtual_clip="step")
    s.step(toy_batch(0), toy_batch(1))
    exact, direct = exact_and_direct(s, toy_batch(2), toy_batch(3))
    s.a_opt.zero_grad(set_to_none=True)
    s.arch_gradient(toy_batch(2), toy_batch(3))
    assert rel_err([a.grad for a in s.alphas], exact) < 1e-12
    assert rel_err(direct, exact) > 1e-3  # the second-order term is there to get right
