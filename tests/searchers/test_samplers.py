"""GDAS, SNAS and DrNAS: their samples, gradients and regulariser against independent computations, the
ops GDAS computes, their schedules; and a searcher defined here that changes the mixing on every space."""

import math

import pytest
import torch
from scipy import integrate, special

from nasbench.errors import UserError
from nasbench.provenance import seed_all
from nasbench.registry import SEARCHERS, SPACES
from nasbench.searchers.darts import DartsSearcher
from nasbench.searchers.mixers import DirichletMixer, GumbelHardMixer, GumbelSoftMixer
from nasbench.searchers.regularizers import dirichlet_kl_to_uniform
from nasbench.searchers.samplers import Gdas, linear_schedule
from nasbench.spaces.base import SupernetOptions
from nasbench.spaces.mixing import CellMix, CellSpec, Mixer
from nasbench.spaces.nb201 import NB201_OPS, Nb201Config, Nb201Supernet, SearchCell
from nasbench.testing import build, steps
from tests.conftest import tiny_config

CPU = torch.device("cpu")


def test_gdas_weights_are_one_hot_with_the_relaxed_samples_gradient():
    alpha = torch.randn(4, 5, requires_grad=True)
    mixer = GumbelHardMixer(tau=2.0, unsampled_gradient=False)
    probe = torch.randn(4, 5)
    torch.manual_seed(3)
    hard, index = mixer.sample(alpha)
    (grad,) = torch.autograd.grad((hard * probe).sum(), alpha)
    torch.manual_seed(3)  # the same noise, by hand: the relaxed sample and its gradient
    noise = -torch.empty(4, 5).exponential_().log()
    soft = torch.softmax((torch.log_softmax(alpha, -1) + noise) / 2.0, -1)
    (want,) = torch.autograd.grad((soft * probe).sum(), alpha)
    assert torch.equal(hard.detach(), torch.nn.functional.one_hot(soft.argmax(-1), 5).float())
    assert torch.equal(index, soft.argmax(-1)) and torch.allclose(grad, want, atol=1e-6)


def test_gdas_draws_follow_softmax_alpha_whatever_the_temperature():
    """Gumbel-max: argmax((log p + g) / tau) = argmax(log p + g) is a draw from p = softmax(alpha); the
    temperature shapes only the gradient."""
    alpha = torch.tensor([[1.0, 0.0, -1.0, 0.5, 2.0]])
    p = torch.softmax(alpha, -1)[0]
    torch.manual_seed(0)
    for tau in (10.0, 0.1):
        mixer = GumbelHardMixer(tau=tau, unsampled_gradient=False)
        counts = torch.bincount(torch.cat([mixer.sample(alpha)[1] for _ in range(20000)]), minlength=5)
        assert torch.allclose(counts / 20000, p, atol=0.012)  # ~4 standard errors at n = 20000


def test_gdas_computes_only_the_sampled_op_and_its_unsampled_weights_carry_the_gradient():
    torch.manual_seed(0)
    cell = SearchCell(4, 1)
    calls = []
    for row, edge in enumerate(cell.edges):
        for name, op in zip(edge.names, edge.ops):
            op.register_forward_hook(lambda *_, key=(row, name): calls.append(key))
    alpha = torch.randn(6, 5, requires_grad=True)
    mixer = GumbelHardMixer(tau=1.0, unsampled_gradient=True)
    x = torch.randn(2, 4, 6, 6)
    torch.manual_seed(5)
    hard, index = mixer.sample(alpha)
    torch.manual_seed(5)
    mix = mixer(type("Net", (), {"alpha": lambda self, cell: alpha})(), "cell")
    out = cell(x, mix)
    sampled = {(row, NB201_OPS[int(k)]) for row, k in enumerate(index) if NB201_OPS[int(k)] != "none"}
    assert set(calls) == sampled and len(calls) == len(sampled)  # one op per edge at most, once
    # by hand, as AutoDL's NB201 cell: each edge adds h_k * op_k(x) for the sampled k and h_j for the others
    states = [x]
    row = 0
    for dst in (1, 2, 3):
        node = torch.zeros_like(x)
        for src in range(dst):
            k = int(index[row])
            for j, name in enumerate(NB201_OPS):
                if j == k:
                    if name != "none":
                        op = cell.edges[row].ops[cell.edges[row].names.index(name)]
                        node = node + hard[row, j] * op(states[src])
                else:
                    node = node + hard[row, j]
            row += 1
        states.append(node)
    probe = torch.randn_like(out)
    (grad,) = torch.autograd.grad((out * probe).sum(), alpha)
    (want,) = torch.autograd.grad((states[-1] * probe).sum(), alpha)
    assert torch.allclose(out, states[-1], atol=1e-6) and torch.allclose(grad, want, atol=1e-5)
    assert (grad != 0).all()  # every alpha of every edge gets a gradient


def test_gdas_anneals_tau_linearly_and_updates_the_weights_first(monkeypatch):
    assert [linear_schedule(e, 5, 10.0, 0.1) for e in (0, 4)] == [10.0, pytest.approx(0.1)]
    assert linear_schedule(2, 5, 10.0, 0.1) == pytest.approx(5.05)
    _, data, s = build("gdas", "nb201")
    assert isinstance(s, Gdas) and s.cfg.train.weight_step_first
    s.start_epoch(s.cfg.train.epochs - 1)
    assert s.mixer.tau == pytest.approx(s.cfg.searcher_cfg.tau_min)
    order = []
    monkeypatch.setattr(s, "weight_gradient", lambda train: order.append("w") or torch.tensor(0.0))
    monkeypatch.setattr(s, "arch_gradient", lambda train, val: order.append("alpha") or torch.tensor(0.0))
    s.step(next(data.train.epoch(0)), next(data.val.epoch(0)))
    assert order == ["w", "alpha"]


@pytest.mark.parametrize("name, start, end", [("gdas", 10.0, 0.1), ("snas", 1.0, 0.03)])
def test_each_sampler_anneals_its_own_papers_temperature_and_refuses_a_rising_one(name, start, end):
    _, _, s = build(name, "nb201")
    c = s.cfg.searcher_cfg
    assert (c.tau_max, c.tau_min) == (start, end)
    s.start_epoch(1)
    assert s.mixer.tau == pytest.approx(linear_schedule(1, s.cfg.train.epochs, start, end))
    assert s.epoch_extras()["tau"] == s.mixer.tau
    with pytest.raises(UserError, match=r"^tau_min=2.0 is above tau_max=1.0: the temperature anneals from tau_max"):
        type(c)(tau_max=1.0, tau_min=2.0).check()


def concrete_mean(logit: float, tau: float) -> float:
    """E[x_1] of a 2-op Gumbel-softmax sample, by quadrature: x_1 = sigmoid((logit + L) / tau), with
    L = g_1 - g_2 ~ Logistic(0, 1)."""

    def integrand(t: float) -> float:
        return special.expit((logit + t) / tau) * math.exp(-t) / (1 + math.exp(-t)) ** 2

    return integrate.quad(integrand, -50, 50)[0]


@pytest.mark.parametrize("tau", [0.3, 1.0, 3.0])
def test_snas_sample_mean_matches_the_concrete_distribution(tau):
    alpha = torch.tensor([[0.8, -0.4]])
    mixer = GumbelSoftMixer(tau)
    net = type("Net", (), {"alpha": lambda self, cell: alpha})()
    torch.manual_seed(0)
    draws = torch.cat([mixer(net, "c").weights for _ in range(40000)])
    assert float(draws[:, 0].mean()) == pytest.approx(concrete_mean(1.2, tau), abs=0.005)
    assert torch.allclose(draws.sum(-1), torch.ones(len(draws)))


def test_drnas_samples_have_the_dirichlet_mean_and_the_record_keeps_it():
    torch.manual_seed(0)
    net = Nb201Supernet(Nb201Config(channels=4, cells_per_stage=1), 10, SupernetOptions(mixer=DirichletMixer()))
    with torch.no_grad():
        net.alpha_cell.copy_(torch.randn(6, 5))
    beta = torch.nn.functional.elu(net.alpha_cell.detach()) + 1
    mean = beta / beta.sum(-1, keepdim=True)
    draws = torch.stack([net.mixing("cell").weights.detach() for _ in range(20000)])
    assert torch.allclose(draws.mean(0), mean, atol=0.006)
    assert torch.allclose(net.mixer.strengths(net)["cell"], mean)
    w = net.mixing("cell").weights
    assert w.requires_grad  # reparameterised: gradients reach alpha


def test_drnas_kl_regulariser_by_the_closed_form():
    c = torch.tensor([[2.0, 0.5, 1.0], [1.0, 1.0, 1.0]])
    by_hand = 0.0
    for row in c.double().numpy():  # KL(Dir(c) || Dir(1)) = lnG(c0) - sum lnG(c) - lnG(K) + sum (c-1)(psi(c) - psi(c0))
        c0 = row.sum()
        by_hand += (
            special.gammaln(c0)
            - special.gammaln(row).sum()
            - special.gammaln(len(row))
            + ((row - 1) * (special.digamma(row) - special.digamma(c0))).sum()
        )
    assert float(dirichlet_kl_to_uniform(c)) == pytest.approx(by_hand, rel=1e-5)
    assert float(dirichlet_kl_to_uniform(torch.ones(3, 4))) == pytest.approx(0.0, abs=1e-6)


def test_drnas_kl_needs_the_l2_anchor_off():
    with pytest.raises(Exception, match="arch_weight_decay=0"):
        tiny_config("drnas", "nb201", reg_type="kl")
    cfg = tiny_config("drnas", "nb201", reg_type="kl", arch_weight_decay="0")
    seed_all(0)
    space = SPACES.get("nb201")()
    data = space.load_data(None, cfg, CPU, 0)
    s = SEARCHERS.get("drnas")(space, cfg, data, CPU)
    stats = s.step(next(data.train.epoch(0)), next(data.val.epoch(0)))
    assert float(stats["arch_penalty"]) > 0 and s.model.alpha_cell.grad is not None


class TemperedMixer(Mixer):
    """A mixing no space was written for: softmax(alpha / T) with a large T, and only the two strongest
    ops of each edge computed."""

    def __call__(self, net, cell):
        alpha = net.alpha(cell)
        weights = torch.softmax(alpha / 4.0, dim=-1)
        active = [tuple(row.topk(2).indices.tolist()) for row in weights.detach()]
        return CellMix(weights, active=active)


class TemperedDarts(DartsSearcher):
    summary = "test: softmax(alpha / 4), two ops per edge"

    def make_mixer(self):
        return TemperedMixer()


@pytest.fixture
def tempered():
    SEARCHERS.register("defined-in-a-test")(TemperedDarts)  # not "tempered": the example plugin may hold it
    yield "defined-in-a-test"
    SEARCHERS.unregister("defined-in-a-test")


@pytest.mark.parametrize("space_name", ["cnn", "nb201", "rnn"])
def test_a_searcher_defined_here_changes_the_mixing_on_every_space(tempered, space_name):
    space, data, s = build(tempered, space_name)
    stats = steps(s, data, 0, 2)
    assert all(math.isfinite(v) for st in stats for v in st.values())
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in s.alphas)
    genotype = s.derive()
    assert space.parse_genotype(space.format_genotype(genotype)) == genotype


def test_cellspec_groups_edges_by_destination():
    spec = CellSpec(("a", "b"), ((0, 1), (0, 2), (1, 2)))
    assert spec.n_edges == 3 and spec.destinations == [1, 2, 2]


def test_the_suites_measurements_see_a_samplers_expected_supernet():
    from nasbench.searchers.mixers import ExpectedMixer

    torch.manual_seed(0)
    net = Nb201Supernet(Nb201Config(channels=4, cells_per_stage=1), 10, SupernetOptions(mixer=DirichletMixer()))
    x = torch.randn(2, 3, 8, 8)
    net.eval()
    with torch.no_grad():
        sampled = [net(x) for _ in range(2)]
        with net.mixed_by(ExpectedMixer(net.mixer)):
            expected = [net(x) for _ in range(2)]
        with net.mixed_by(
            type("Mean", (Mixer,), {"__call__": lambda self, n, c: CellMix(DirichletMixer().mean(n.alpha(c)))})()
        ):
            by_hand = net(x)
    assert not torch.allclose(*sampled) and torch.equal(*expected) and torch.allclose(expected[0], by_hand)
    gdas = GumbelHardMixer(tau=1.0, unsampled_gradient=True)
    mix = gdas.expected(net, "cell")
    assert mix.active is None and torch.allclose(mix.weights, torch.softmax(net.alpha_cell, -1))
