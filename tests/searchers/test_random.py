"""Random search: uniform sampling, fresh training per sample, the best-score pick, the record, resume."""

import copy
import math
from collections import Counter
from itertools import islice

import pytest
import torch

from nasbench.errors import UserError
from nasbench.provenance import seed_all
from nasbench.registry import SPACES
from nasbench.runner import run
from nasbench.searchers.random import GenotypeSampler, RandomSearch, rank_key
from tests.conftest import tiny_config

CPU = torch.device("cpu")


def build(seed: int = 0, **sets: str):
    cfg = tiny_config("random", "cnn", seed=seed, **sets)
    seed_all(seed)
    space = SPACES.get("cnn")()
    data = space.load_data(None, cfg, CPU, seed)
    return cfg, space, data


def run_steps(searcher, data, epochs: int, per_epoch: int) -> None:
    for epoch in range(epochs):
        searcher.start_epoch(epoch)
        for train in islice(data.train.epoch(epoch), per_epoch):
            searcher.step(train, None)


def test_sampling_is_uniform_over_ops_and_inputs_and_never_none():
    cfg, space, _ = build()
    sampler = GenotypeSampler(space, cfg.space_cfg, seed=0)
    ops, inputs = Counter(), Counter()
    draws = 1000
    for _ in range(draws):
        genotype = sampler.sample()
        for cell in genotype.cell_names:
            edges = genotype.cell(cell)
            ops.update(e.op for e in edges)
            inputs[tuple(e.src for e in edges if e.dst == 3)] += 1  # node 3 takes 2 of nodes 0, 1, 2
    assert "none" not in ops and set(ops) == set(space.ops) - {"none"}
    n_edges = draws * 2 * 4  # 2 cells x 2 nodes x 2 edges (tiny: nodes=2)
    for count in ops.values():  # each op 1/7; binomial spread about 33, so 5 sigma is 165
        assert abs(count - n_edges / 7) < 5 * math.sqrt(n_edges * (1 / 7) * (6 / 7))
    assert set(inputs) == {(0, 1), (0, 2), (1, 2)}
    for count in inputs.values():  # each pair 1/3 of 2000 cells
        assert abs(count - 2 * draws / 3) < 5 * math.sqrt(2 * draws * (1 / 3) * (2 / 3))


def test_sampler_state_continues_the_sequence():
    cfg, space, _ = build()
    sampler = GenotypeSampler(space, cfg.space_cfg, seed=3)
    sampler.sample()
    state = copy.deepcopy(sampler.state_dict())
    expected = [sampler.sample() for _ in range(3)]
    other = GenotypeSampler(space, cfg.space_cfg, seed=99)
    other.load_state_dict(state)
    assert [other.sample() for _ in range(3)] == expected


def test_rank_key_prefers_higher_accuracy_then_lower_loss_and_lower_perplexity():
    a, b, c = {"val_acc": 60.0, "val_loss": 1.2}, {"val_acc": 70.0, "val_loss": 1.5}, {"val_acc": 70.0, "val_loss": 1.1}
    assert sorted([a, b, c], key=lambda s: rank_key(s, "acc")) == [c, b, a]
    lo, hi = {"val_loss": 4.0, "val_ppl": 54.6}, {"val_loss": 5.0, "val_ppl": 148.4}
    assert min([hi, lo], key=lambda s: rank_key(s, "ppl")) == lo


def test_budget_is_shared_evenly_over_the_runs_steps():
    cfg, space, data = build(samples="3", epochs="7", steps_per_epoch="1")
    s = RandomSearch(space, cfg, data, CPU)
    assert s.total_steps == 7
    shares = [s.share_end(i) - (s.share_end(i - 1) if i else 0) for i in range(3)]
    assert shares == [2, 2, 3]
    with pytest.raises(UserError, match="samples=5"):
        cfg, space, data = build(samples="5")  # tiny: 2 epochs x 2 steps = 4 < 5
        RandomSearch(space, cfg, data, CPU)


def test_each_sample_trains_fresh_weights_and_the_best_score_wins(monkeypatch):
    cfg, space, data = build(samples="3", epochs="2", steps_per_epoch="3")
    built = []  # (network, its initial weights, genotype)
    original = space.network

    def network(genotype, space_cfg, d):
        net = original(genotype, space_cfg, d)
        built.append((net, copy.deepcopy(net.state_dict()), genotype))
        return net

    monkeypatch.setattr(space, "network", network)
    accuracies = iter([40.0, 70.0, 55.0])  # stubbed scorer: sample 1 is the best
    scored = []

    def evaluate(self, net):
        scored.append(net)
        return {"val_loss": 1.0, "val_acc": next(accuracies)}

    monkeypatch.setattr(RandomSearch, "evaluate", evaluate)
    s = RandomSearch(space, cfg, data, CPU)
    s.start_epoch(0)
    for train in islice(data.train.epoch(0), 3):
        s.step(train, None)
    assert [e["index"] for e in s.epoch_extras()["samples"]] == [0]  # sample 1 is mid-way at the epoch's end
    assert s.derive() == built[0][2] and s.score([])["val_acc"] == 40.0
    s.start_epoch(1)
    for train in islice(data.train.epoch(1), 3):
        s.step(train, None)

    assert len(built) == 3 and [n for n, _, _ in built] == scored  # one new network per sample, each scored
    for k, (net, initial, _) in enumerate(built):
        trained = net.state_dict()
        weights = [name for name, p in net.named_parameters()]
        assert all(not torch.equal(initial[w], trained[w]) for w in weights)  # it trained
        if k:  # it did not start from the previous sample's trained weights (stem, classifier, ...)
            previous = built[k - 1][0].state_dict()
            shared = [w for w in weights if w in previous and previous[w].shape == initial[w].shape]
            assert "stem.0.weight" in shared and all(not torch.equal(initial[w], previous[w]) for w in shared)
    assert s.derive() == built[1][2]
    assert s.score([]) == {"val_loss": 1.0, "val_acc": 70.0}
    extras = s.epoch_extras()["samples"]
    assert [(e["index"], e["val_acc"], e["steps"]) for e in extras] == [(1, 70.0, 2), (2, 55.0, 2)]
    assert extras[0]["genotype"] == space.format_genotype(built[1][2])
    with pytest.raises(RuntimeError, match="all 3 samples are done"):
        s.step(next(data.train.epoch(1)), None)


def test_state_round_trip_at_a_sample_boundary():
    cfg, space, data = build()  # tiny: 2 samples of 2 steps
    s = RandomSearch(space, cfg, data, CPU)
    run_steps(s, data, 1, 2)  # sample 0 done, sample 1 just started
    state, rng = copy.deepcopy(s.state_dict()), torch.get_rng_state()
    s.start_epoch(1)
    losses = [float(s.step(b, None)["train_loss"]) for b in islice(data.train.epoch(1), 2)]
    _, space2, data2 = build(seed=5)
    fresh = RandomSearch(space2, cfg, data, CPU)
    fresh.load_state_dict(state)
    torch.set_rng_state(rng)
    fresh.start_epoch(1)
    assert [float(fresh.step(b, None)["train_loss"]) for b in islice(data.train.epoch(1), 2)] == losses
    assert [x.scores for x in fresh.samples] == [x.scores for x in s.samples] and fresh.derive() == s.derive()


def test_a_run_records_every_sample_with_its_score(tmp_path):
    cfg = tiny_config("random", "cnn", samples="3", epochs="3", steps_per_epoch="2")
    record = run(cfg, tmp_path, progress=False, echo=lambda line: None)
    assert record.status == "completed"
    samples = [x for epoch in record.epochs for x in epoch["samples"]]
    assert [x["index"] for x in samples] == [0, 1, 2] and all(x["steps"] == 2 for x in samples)
    best = max(samples, key=lambda x: (x["val_acc"], -x["val_loss"]))
    assert record.genotype == best["genotype"] and record.metrics["val_acc"] == best["val_acc"]


def test_oracle_scores_every_sample_by_the_table_and_returns_the_best(tmp_path):
    from nasbench.data.nb201_table import lookup

    cfg = tiny_config("random", "nb201", oracle="true", samples="30")
    record = run(cfg, tmp_path, progress=False, echo=lambda line: None)
    assert record.status == "completed"
    samples = [s for e in record.epochs for s in e["samples"]]
    assert len(samples) == 30 and all(s["oracle"] == 1.0 and s["steps"] == 0 for s in samples)
    for s in samples[:5]:  # each score is the table's entry for that cell
        assert s["true_test_acc"] == lookup(s["genotype"])["cifar10"]
    best = max(samples, key=lambda s: s["true_test_acc"])
    assert record.genotype == best["genotype"]
    assert record.metrics["true_test_acc"] == best["true_test_acc"]
    assert "train_loss" not in record.epochs[0]  # nothing was trained


def test_oracle_needs_a_space_with_ground_truth():
    cfg, space, data = build(oracle="true")
    with pytest.raises(UserError, match="oracle=true needs a space with a ground-truth table"):
        RandomSearch(space, cfg, data, CPU)
