"""Collapse metrics on inputs whose answers are known by hand or by an independent computation."""

import math
from itertools import islice

import pytest
import torch
from torch.func import functional_call

from nasbench.genotype import Edge, Genotype
from nasbench.metrics.collapse import (
    alpha_entropy,
    darts_es_stop,
    early_stop_decision,
    hessian_eigenvalue,
    lanczos_max_eigenvalue,
    param_free_share,
    skip_count,
    supernet_hessian_eigenvalue,
)
from nasbench.provenance import seed_all
from nasbench.registry import SEARCHERS, SPACES
from tests.conftest import tiny_config


def test_lanczos_finds_the_largest_eigenvalue_of_a_known_matrix():
    # A = Q diag(5, 2, 1, -7) Q^T: the largest eigenvalue is 5 although -7 is larger in magnitude.
    q, _ = torch.linalg.qr(torch.randn(4, 4, generator=torch.Generator().manual_seed(1), dtype=torch.float64))
    a = q @ torch.diag(torch.tensor([5.0, 2.0, 1.0, -7.0], dtype=torch.float64)) @ q.T
    eig, used = lanczos_max_eigenvalue(
        lambda v: a @ v, 4, iters=10, tol=0.0, generator=torch.Generator(), dtype=torch.float64
    )
    assert eig == pytest.approx(5.0, abs=1e-9) and used == 4  # the Krylov space is all of R^4


def test_hessian_of_a_quadratic_is_its_matrix():
    # L(x, y) = 0.5 x^T A x + 3 y^2 + x_0 y : Hessian [[A, e0], [e0^T, 6]], computed here by hand.
    a = torch.tensor([[4.0, 1.0, 0.0], [1.0, 3.0, 0.0], [0.0, 0.0, -2.0]])
    x = torch.zeros(3, requires_grad=True)
    y = torch.zeros(1, requires_grad=True)
    hess = torch.zeros(4, 4)
    hess[:3, :3], hess[3, 3], hess[0, 3], hess[3, 0] = a, 6.0, 1.0, 1.0

    def loss():
        return 0.5 * x @ a @ x + 3 * y[0] ** 2 + x[0] * y[0]

    eig, _ = hessian_eigenvalue(loss, [x, y], iters=10, tol=0.0)
    assert eig == pytest.approx(float(torch.linalg.eigvalsh(hess)[-1]), rel=1e-5)


def tiny_supernet(seed: int = 0, layers: int = 3):
    sets = {"batch_size": "4", "space.channels": "2", "space.layers": str(layers)}
    cfg = tiny_config("darts1", "cnn", seed=seed, **sets)
    seed_all(seed)
    space = SPACES.get("cnn")()
    data = space.load_data(None, cfg, torch.device("cpu"), seed)
    searcher = SEARCHERS.get("darts1")(space, cfg, data, torch.device("cpu"))
    with torch.no_grad():  # alphas away from uniform, so the Hessian is not degenerate
        for alpha in searcher.model.arch_parameters():
            alpha.normal_(0.0, 1.0)
    return searcher.model, data


def test_supernet_eigenvalue_matches_the_exact_hessian():
    model, data = tiny_supernet(layers=1)  # one (reduction) cell: the exact Hessian takes 80 double backwards
    batch = next(data.score.epoch(0))
    images, labels = batch
    names = [n for n, _ in model.named_arch_parameters()]
    values = tuple(p.detach().clone() for p in model.arch_parameters())

    def loss_of(*alphas):
        logits = functional_call(model, dict(zip(names, alphas)), (images,))
        return torch.nn.functional.cross_entropy(logits, labels)

    blocks = torch.autograd.functional.hessian(loss_of, values, vectorize=True)  # exact, one block per pair of alphas
    n = [v.numel() for v in values]
    full = torch.cat([torch.cat([blocks[i][j].reshape(n[i], n[j]) for j in range(len(n))], 1) for i in range(len(n))])
    exact = float(torch.linalg.eigvalsh(full.double())[-1])
    before = {k: v.clone() for k, v in model.state_dict().items()}
    measured = supernet_hessian_eigenvalue(model, [batch], iters=len(full), tol=1e-6)
    assert measured["hessian_eig"] == pytest.approx(exact, rel=1e-3)
    assert measured["hessian_seconds"] > 0 and measured["hessian_hvps"] >= 2
    after = model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)  # BN statistics restored, alphas untouched


def test_measuring_does_not_change_the_global_rng():
    model, data = tiny_supernet()
    torch.manual_seed(5)
    expected = torch.rand(3)
    torch.manual_seed(5)
    supernet_hessian_eigenvalue(model, islice(data.score.epoch(0), 1), iters=2)
    assert torch.equal(torch.rand(3), expected)


def test_alpha_entropy_by_hand():
    uniform = torch.full((3, 8), 1 / 8)
    one_hot = torch.eye(4)
    half = torch.tensor([[0.5, 0.5, 0.0, 0.0], [1.0, 0.0, 0.0, 0.0]])
    out = alpha_entropy({"normal": uniform, "reduce": one_hot, "mixed": half})
    assert out["normal"] == pytest.approx(math.log(8))
    assert out["reduce"] == pytest.approx(0.0)
    assert out["mixed"] == pytest.approx(math.log(2) / 2)  # edges: ln 2 and 0


def test_skip_count_and_parameter_free_share():
    normal = [Edge("skip_connect", 0, 2), Edge("sep_conv_3x3", 1, 2), Edge("skip_connect", 1, 3), Edge("none", 2, 3)]
    reduce = [Edge("max_pool_3x3", 0, 2), Edge("skip_connect", 1, 2), Edge("dil_conv_3x3", 0, 3), Edge("x", 2, 3)]
    g = Genotype.of({"normal": normal, "reduce": reduce}, {"normal": [2, 3], "reduce": [2, 3]})
    assert skip_count(g) == 2  # the reduce cell's skip does not count
    assert param_free_share(g) == pytest.approx(5 / 8)  # 2 skips + none | max_pool + skip
    rnn = Genotype.of({"recurrent": [Edge("identity", 0, 1), Edge("tanh", 1, 2)]}, {"recurrent": [1, 2]})
    assert skip_count(rnn) == 1


def test_darts_es_rule_on_a_hand_made_sequence():
    flat = [1.0] * 10
    assert darts_es_stop(flat, factor=1.3, window=3) is None
    # windows of 3: mean(1, 1, 1) = 1 before; after 1.0 1.0 1.0 | 1.2 1.5 1.6 the mean is 1.433 > 1.3
    rising = [1.0, 1.0, 1.0, 1.2, 1.5, 1.6]
    assert darts_es_stop(rising[:5], factor=1.3, window=3) is None  # mean(1, 1.2, 1.5) = 1.233 vs 1.0
    assert darts_es_stop(rising, factor=1.3, window=3) == 2  # keep the architecture of index 2
    assert darts_es_stop([1.0, 5.0], factor=1.3, window=3) is None  # too few values yet


def test_early_stop_decision_maps_measurements_to_epochs():
    # measured every second epoch: 1, 1, 1.2, 3 at epochs 2, 4, 6, 8; window 2 of measurements.
    # after epoch 6: mean(1, 1.2) = 1.1 vs mean(1) = 1 -> go on; after epoch 8: mean(1.2, 3) = 2.1 vs
    # mean(1, 1) = 1 -> stop and keep measurement 1, i.e. epoch 4 (index 3).
    eigs = [None, 1.0, None, 1.0, None, 1.2, None, 3.0]
    epochs = [{"epoch": e + 1, **({"hessian_eig": v} if v is not None else {})} for e, v in enumerate(eigs)]
    assert early_stop_decision(epochs[:6], factor=1.3, window=2) is None
    index, reason = early_stop_decision(epochs, factor=1.3, window=2)
    assert index == 3 and "genotype of epoch 4" in reason and "DARTS-ES" in reason
