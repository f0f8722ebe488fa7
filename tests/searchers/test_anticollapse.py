"""The anti-collapse pieces against hand-worked values and toy problems with known answers, and the
methods built from them end to end."""

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from nasbench.genotype import Edge, Genotype
from nasbench.registry import SEARCHERS
from nasbench.runner import run
from nasbench.searchers.mixers import AuxSkipMixer, SigmoidMixer
from nasbench.searchers.perturbation import adversarial_perturbation, clip_to_simplex, epsilon, random_perturbation
from nasbench.searchers.projection import Projection, decide, decision_rounds, threshold_genotype
from nasbench.searchers.regularizers import beta_continuous, regularizer_weight, zero_one
from nasbench.spaces.base import Supernet
from nasbench.spaces.mixing import CellMix, CellSpec, Mixer
from nasbench.testing import build, steps
from tests.conftest import tiny_config


def test_beta_regulariser_and_its_gradient_by_hand():
    # rows: logsumexp(0, ln 3) = ln 4 and logsumexp(ln 2, ln 2) = ln 4; mean ln 4
    alpha = torch.tensor([[0.0, math.log(3)], [math.log(2), math.log(2)]], requires_grad=True)
    value = beta_continuous([alpha])
    assert float(value.detach()) == pytest.approx(math.log(4))
    (grad,) = torch.autograd.grad(value, alpha)  # softmax(alpha) / n_edges
    assert torch.allclose(grad, torch.tensor([[1 / 8, 3 / 8], [1 / 4, 1 / 4]]))
    assert regularizer_weight("beta", None, 0, 100) == 0 and regularizer_weight("beta", None, 99, 100) == 49.5
    assert regularizer_weight("zero-one", None, 7, 50) == 10.0


def test_zero_one_loss_by_hand():
    # sigmoid(0) = 0.5 -> 0; sigmoid(+-inf) -> 0 or 1 -> -0.25 each: mean -0.125
    alpha = torch.tensor([[0.0, 50.0], [-50.0, 0.0]])
    assert float(zero_one([alpha])) == pytest.approx(-(0.25 + 0.25) / 4, abs=1e-6)


def test_clip_to_simplex_and_the_random_perturbation():
    p = torch.tensor([[0.5, 0.7, -0.2], [-1.0, -0.5, -2.0]])
    out = clip_to_simplex(p)
    assert torch.allclose(out[0], torch.tensor([0.5, 0.7, 0.0]) / 1.2)
    assert torch.equal(out[1], torch.tensor([0.0, 1.0, 0.0]))  # all clamped away: the largest entry keeps 1
    base = {"c": torch.softmax(torch.randn(50, 4), -1)}
    torch.manual_seed(0)
    perturbed = random_perturbation(base, 0.05)["c"]
    torch.manual_seed(0)
    noise = torch.empty(50, 4).uniform_(-0.05, 0.05)
    assert torch.allclose(perturbed, clip_to_simplex(base["c"] + noise))  # U(-eps, eps), then projected
    assert noise.abs().max() <= 0.05 and torch.allclose(perturbed.sum(-1), torch.ones(50))
    assert epsilon(0, 50, 0.03, 0.3) == 0.03 and epsilon(25, 50, 0.03, 0.3) == pytest.approx(0.165)


def test_the_adversarial_perturbation_raises_the_loss_or_is_dropped():
    target = torch.tensor([[0.1, 0.2, 0.7]])

    def loss_at(p):  # largest far from the target
        return (p["c"] - target).pow(2).sum()

    start = {"c": torch.tensor([[0.2, 0.3, 0.5]])}
    torch.manual_seed(0)
    adv = adversarial_perturbation(loss_at, start, eps=0.1, steps=7)
    assert float(loss_at(adv)) > float(loss_at(start))
    assert torch.allclose(adv["c"].sum(-1), torch.ones(1)) and (adv["c"] >= 0).all()
    at_peak = {"c": torch.tensor([[1.0, 0.0, 0.0]])}  # a corner: no step inside the simplex raises this loss more
    worse = adversarial_perturbation(lambda p: -loss_at(p), at_peak, eps=0.1, steps=7)
    assert float(-loss_at(worse)) >= float(-loss_at(at_peak))


def test_the_auxiliary_skip_sits_beside_the_op_weights_and_stays_out_of_the_derivation():
    net = ToySupernet()
    mixer = AuxSkipMixer(Mixer(), beta=0.4)
    mix = mixer(net, "cell")
    plain = torch.softmax(net.alpha("cell"), -1)
    assert mix.aux_skip == 0.4 and torch.equal(mix.weights, plain)
    skip = net.cell_specs["cell"].ops.index("skip")
    folded = mix.aux_skip_folded(skip)  # what a space whose skip op is the identity does with it
    assert torch.allclose(folded.weights[:, skip], plain[:, skip] + 0.4) and folded.aux_skip == 0
    others = [c for c in range(3) if c != skip]
    assert torch.equal(folded.weights[:, others], plain[:, others])
    assert torch.allclose(mixer.strengths(net)["cell"], plain.detach())
    _, _, s = build("darts-minus", "nb201")
    s.start_epoch(0)
    assert s.aux_skip.beta == 1.0
    s.start_epoch(s.cfg.train.epochs - 1)
    assert s.aux_skip.beta == pytest.approx(1.0 / s.cfg.train.epochs)  # linear towards 0 (DARTS-' 1 -> 0.02)


class RaisedSkip(Mixer):
    """DARTS' softmax with ``beta`` added to op ``column``'s weight: the auxiliary skip where that op is the
    identity (how the suite computed DARTS-' skip before spaces took ``CellMix.aux_skip``)."""

    def __init__(self, column, beta):
        self.column, self.beta = column, beta

    def __call__(self, net, cell):
        weights = torch.softmax(net.alpha(cell), -1).clone()
        weights[:, self.column] += self.beta
        return CellMix(weights)


@pytest.mark.parametrize("space_name", ["nb201", "rnn"])
def test_the_auxiliary_skip_of_a_space_whose_skip_is_the_identity_raises_that_op(space_name):
    space, data, s = build("darts-minus", space_name)
    net, batch = s.model, next(iter(data.train.epoch(0)))
    net.eval()
    with torch.no_grad(), net.frozen_state():
        aux = net.loss(batch)
    net.mixer = RaisedSkip(space.ops.index(space.skip_ops[0]), s.aux_skip.beta)
    with torch.no_grad(), net.frozen_state():
        raised = net.loss(batch)
        net.mixer = Mixer()
        plain = net.loss(batch)
    assert torch.allclose(aux, raised, rtol=1e-6) and not torch.allclose(aux, plain)


def test_fairdarts_sigmoid_weights_and_threshold_derivation():
    net = ToySupernet(mixer=SigmoidMixer())
    assert torch.equal(net.alpha_cell.detach(), torch.zeros(3, 3))  # every weight starts at 0.5
    strengths = {"cell": torch.tensor([[0.9, 0.1, 0.2], [0.5, 0.8, 0.1], [0.1, 0.3, 0.95]])}
    genotype = Genotype.of({"cell": [Edge("zero", 0, 1), Edge("skip", 0, 2), Edge("conv", 1, 2)]}, {"cell": [2]})
    got = threshold_genotype(genotype, strengths, net, 0.85, none_allowed=True)
    assert got.cell("cell") == (Edge("zero", 0, 1), Edge("none", 0, 2), Edge("conv", 1, 2))  # 0.8 < 0.85: dropped
    assert threshold_genotype(genotype, strengths, net, 0.85, none_allowed=False) == genotype


class ToySupernet(Supernet):
    """Edges 0 -> 1, 0 -> 2, 1 -> 2 (node 2 keeps one input), each mixing ops ``zero``, ``skip``, ``conv`` on a
    scalar x whose class is sign(x); the logits are (-node 2, node 2). By construction: on 0 -> 1, skip passes
    x and conv -x / 2, so only skip carries the sign; on 1 -> 2, skip flips node 1 and conv doubles it, so
    only conv keeps the sign; 0 -> 2 adds the same small noise for skip and conv, and nothing for zero."""

    def __init__(self, mixer=None):
        super().__init__(mixer)
        self.noise_scale = 0.01
        self.add_cell_parameters("cell", CellSpec(("zero", "skip", "conv"), ((0, 1), (0, 2), (1, 2))))

    def forward(self, x):
        w = self.mixing("cell").weights  # columns: zero, skip, conv
        node1 = w[0, 1] * x + w[0, 2] * (-0.5 * x)
        noise = self.noise_scale * torch.sin(37.0 * x)  # correlates with nothing
        node2 = (w[1, 1] + w[1, 2]) * noise + w[2, 1] * (-node1) + w[2, 2] * (2.0 * node1)
        return torch.stack([-node2, node2], dim=-1)

    def loss(self, batch):
        x, y = batch
        return F.cross_entropy(self(x), y)

    def evaluate(self, batch):
        x, y = batch
        logits = self(x)
        return {"loss_sum": F.cross_entropy(logits, y, reduction="sum"), "correct": (logits.argmax(-1) == y).sum()}

    def derive(self, strengths):
        return Genotype.of({}, {})


def test_darts_pt_decisions_keep_the_op_and_input_the_accuracy_depends_on():
    net = ToySupernet()
    x = torch.linspace(-1, 1, 201)
    y = (x > 0).long()

    def score():
        return float((net(x).argmax(-1) == y).float().mean()) * 100

    space = type("Space", (), {"inputs_per_node": 1, "derive_excludes": ()})()
    projection = Projection()
    gen = torch.Generator().manual_seed(0)
    assert decision_rounds(net, space.inputs_per_node) == 3 + 1
    for _ in range(decision_rounds(net, space.inputs_per_node)):
        decide(net, Mixer(), projection, score, space, gen)
    ops = net.cell_specs["cell"].ops
    decided = {net.cell_specs["cell"].pairs[row]: ops[col] for row, col in projection.decided["cell"].items()}
    assert decided == {(0, 1): "skip", (0, 2): "zero", (1, 2): "conv"}  # the sign's carriers; no noise
    assert projection.removed["cell"] == {1}  # node 2 keeps its input from node 1, not the edge from 0


def test_darts_pt_runs_after_the_search_and_returns_the_projected_genotype(tmp_path):
    cfg = tiny_config("darts-pt", "cnn", pt_interval="1", hessian_every="0")
    record = run(cfg, tmp_path, progress=False, echo=lambda line: None)
    assert record.status == "completed"
    searched = cfg.train.epochs
    decisions = [e.get("pt_decisions") for e in record.epochs[searched:]]
    assert len(record.epochs) == searched + len(decisions) and all(decisions)  # one decision a PT epoch here
    # 5 edges of the tiny cell decided in each cell type, then node 3's extra input removed in each
    flat = [d for ds in decisions for d in ds]
    assert sum("removed" in d for d in flat) == 2 and sum("removed" not in d for d in flat) == 10
    last = record.epochs[-1]["arch_weights"]
    for cell, weights in last.items():  # decided edges one-hot, removed ones empty
        assert all(sorted(row) in ([0.0] * 8, [0.0] * 7 + [1.0]) for row in weights), cell


def test_rdarts_l2_raises_the_weight_decay_and_pieces_combine():
    _, _, s = build("rdarts-l2", "nb201")
    assert s.w_opt.param_groups[0]["weight_decay"] == pytest.approx(s.cfg.train.w_weight_decay * 81)
    space, data, combo = build("pcdarts", "nb201")
    cfg = tiny_config("pcdarts", "nb201", regularizer="beta", regularizer_weight="5")
    combo = SEARCHERS.get("pcdarts")(space, cfg, data, torch.device("cpu"))
    combo.start_epoch(1)
    stats = steps(combo, data, 1, 1)[0]
    assert stats["arch_penalty"] > 0  # PC-DARTS with beta-DARTS' regulariser


def test_sdarts_weight_step_sees_perturbed_weights_and_alpha_does_not(monkeypatch):
    _, data, s = build("sdarts-rs", "nb201")
    s.start_epoch(0)
    seen = []
    original = s.model.mixing

    def spy(cell):
        mix = original(cell)
        seen.append((s.model.training, mix.weights.detach().clone()))
        return mix

    monkeypatch.setattr(s.model, "mixing", spy)
    alpha_before = s.model.alpha_cell.detach().clone()
    s.step(next(data.train.epoch(0)), next(data.val.epoch(0)))
    softmax = torch.softmax(alpha_before, -1)
    arch, weight = seen[0][1], seen[-1][1]
    assert torch.allclose(arch, softmax)  # the architecture step: unperturbed
    assert not torch.allclose(weight, torch.softmax(s.model.alpha_cell.detach(), -1))  # the weight step: perturbed
    assert (weight - torch.softmax(s.model.alpha_cell.detach(), -1)).abs().max() < 3 * s.eps


def test_config_pieces_are_checked():
    for bad in ({"regularizer": "l3"}, {"perturb_steps": "0"}, {"derive_threshold": "1.5"}, {"pt_lr_min": "1"}):
        with pytest.raises(Exception, match="|".join(bad)):
            tiny_config("darts1", "nb201", **bad)


def test_toy_supernet_is_a_fair_test():
    """The toy's construction: with every edge on its best op the toy classifies perfectly."""
    net = ToySupernet()
    with torch.no_grad():
        net.alpha_cell.copy_(
            torch.tensor([[-9.0, 9.0, -9.0], [9.0, -9.0, -9.0], [-9.0, -9.0, 9.0]])
        )  # skip, zero, conv
    x = torch.linspace(-1, 1, 201)
    assert float((net(x).argmax(-1) == (x > 0).long()).float().mean()) == pytest.approx(1.0, abs=0.01)
    assert isinstance(net, nn.Module)
