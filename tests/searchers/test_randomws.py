"""Random search with weight sharing: single paths in the cnn supernet, one path trained per step, selection."""

import copy
from itertools import islice

import pytest
import torch

from nasbench.errors import UserError
from nasbench.genotype import Edge, Genotype
from nasbench.provenance import seed_all
from nasbench.registry import SPACES
from nasbench.runner import run
from nasbench.searchers.mixers import PathMixer
from nasbench.searchers.random import GenotypeSampler, rank_key
from nasbench.searchers.randomws import RandomWeightSharing
from nasbench.spaces.base import SupernetOptions
from nasbench.spaces.cnn import CnnSpace
from nasbench.spaces.cnn_cells import POOLS, MixedOp
from nasbench.spaces.ops import CNN_OP_NAMES
from tests.conftest import tiny_config

CPU = torch.device("cpu")
# tiny cnn cells: 2 inputs + 2 nodes, edges (0,2) (1,2) (0,3) (1,3) (2,3)
PATH = CnnSpace().parse_genotype(
    "Genotype(normal=[('sep_conv_3x3', 0), ('skip_connect', 1), ('dil_conv_3x3', 1), ('max_pool_3x3', 2)], "
    "normal_concat=[2, 3], reduce=[('sep_conv_5x5', 0), ('avg_pool_3x3', 1), ('sep_conv_3x3', 0), "
    "('dil_conv_5x5', 2)], reduce_concat=[2, 3])"
)
ROWS = {(0, 2): 0, (1, 2): 1, (0, 3): 2, (1, 3): 3, (2, 3): 4}


def build(seed: int = 0, **sets: str):
    cfg = tiny_config("randomws", "cnn", seed=seed, **sets)
    seed_all(seed)
    space = SPACES.get("cnn")()
    data = space.load_data(None, cfg, CPU, seed)
    return cfg, space, data


def on_path(cell_module) -> dict[int, str]:
    """Edge row -> op of PATH in a cell of the supernet."""
    edges = PATH.cell("reduce" if cell_module.reduction else "normal")
    return {ROWS[(e.src, e.dst)]: e.op for e in edges}


def test_single_path_equals_the_mixture_with_one_hot_weights():
    cfg, space, data = build()
    net = space.supernet(cfg.space_cfg, data, SupernetOptions())
    images = next(data.train.epoch(0))[0]
    with net.mixed_by(PathMixer(net, PATH)):
        path_logits = net(images)
    with torch.no_grad():  # the mixture with weight 1 on each genotype edge's op and on none elsewhere
        for cell in ("normal", "reduce"):
            alpha = torch.full_like(getattr(net, f"alpha_{cell}"), float("-inf"))
            alpha[:, CNN_OP_NAMES.index("none")] = 0.0
            for e in PATH.cell(cell):
                alpha[ROWS[(e.src, e.dst)]] = float("-inf")
                alpha[ROWS[(e.src, e.dst)], CNN_OP_NAMES.index(e.op)] = 0.0
            getattr(net, f"alpha_{cell}").copy_(alpha)
    assert torch.allclose(net(images), path_logits, atol=1e-5)


def path_ops(net) -> set[tuple]:
    """(cell, edge row, op) for each op PATH computes, or (cell, "from", source node, op) for a pooling op,
    which runs in the source node's shared pools."""
    keys = set()
    for c, cell in enumerate(net.cells):
        for row, op in on_path(cell).items():
            keys.add((c, "from", cell.pairs[row][0], op) if op in POOLS else (c, row, op))
    return keys


def test_single_path_computes_only_the_genotypes_ops_and_restores_the_mixture():
    cfg, space, data = build()
    net = space.supernet(cfg.space_cfg, data, SupernetOptions())
    called = set()
    for c, cell in enumerate(net.cells):
        for row, edge in enumerate(cell.edges):
            for name, op in zip(edge.names, edge.ops):
                op.register_forward_hook(lambda *_, key=(c, row, name): called.add(key))
        for src, pools in enumerate(cell.pools):
            for name, op in pools.ops.items():
                op.register_forward_hook(lambda *_, key=(c, "from", src, name): called.add(key))
    images = next(data.train.epoch(0))[0]
    with net.mixed_by(PathMixer(net, PATH)):
        net(images)
    assert called == path_ops(net)
    assert any(key[1] == "from" for key in called)  # the path does use pooling
    called.clear()
    net(images)  # the mixture again: every op of every edge, and every node's pools
    n_edge_ops = sum(len(edge.ops) for cell in net.cells for edge in cell.edges)
    assert len(called) == n_edge_ops + sum(len(p.ops) for cell in net.cells for p in cell.pools)
    with pytest.raises(UserError, match="not edges of this supernet"):
        PathMixer(
            net, Genotype.of({"normal": [Edge("sep_conv_3x3", 0, 7)], "reduce": []}, {"normal": [7], "reduce": []})
        )


def test_a_path_with_none_edges_computes_nothing_there():
    cfg, space, data = build()
    net = space.supernet(cfg.space_cfg, data, SupernetOptions())
    images = next(data.train.epoch(0))[0]
    cut = PATH.cell("normal")[:1] + tuple(Edge("none", e.src, e.dst) for e in PATH.cell("normal")[1:])
    genotype = Genotype.of({"normal": cut, "reduce": PATH.cell("reduce")}, {"normal": [2, 3], "reduce": [2, 3]})
    with net.mixed_by(PathMixer(net, genotype)):
        assert torch.isfinite(net(images)).all()  # node 3 has only none edges: zeros, no error


def test_on_cifar10_the_draws_include_none_as_their_code_does():
    cfg, space, data = build()
    s = RandomWeightSharing(space, cfg, data, CPU)
    ops = {e.op for _ in range(200) for _, edges in s.sampler.sample().cells for e in edges}
    assert ops == set(CNN_OP_NAMES)  # all eight, none included
    rnn_cfg = tiny_config("randomws", "rnn")
    rnn_space = SPACES.get("rnn")()
    rnn = RandomWeightSharing(rnn_space, rnn_cfg, rnn_space.load_data(None, rnn_cfg, CPU, 0), CPU)
    assert "none" not in {e.op for _ in range(200) for _, edges in rnn.sampler.sample().cells for e in edges}


@pytest.mark.parametrize("all_ops", [False, True])
def test_one_step_trains_exactly_the_sampled_path(monkeypatch, all_ops):
    # all_ops: every op computed with 0/1 weights (their code): the same step, but every batch norm tracks
    cfg, space, data = build(train_all_ops=str(all_ops).lower())
    s = RandomWeightSharing(space, cfg, data, CPU)
    monkeypatch.setattr(s.sampler, "sample", lambda: PATH)
    before = copy.deepcopy(s.supernet.state_dict())
    s.start_epoch(0)
    s.step(next(data.train.epoch(0)), None)
    after = s.supernet.state_dict()
    checked_on = checked_off = 0
    for c, cell in enumerate(s.supernet.cells):
        path = on_path(cell)
        for row, edge in enumerate(cell.edges):
            assert isinstance(edge, MixedOp)
            for name, op in zip(edge.names, edge.ops):
                prefix = f"cells.{c}.edges.{row}.ops.{edge.names.index(name)}."
                params = [p for p in op.parameters()]
                keys = [k for k in after if k.startswith(prefix) and not k.endswith("num_batches_tracked")]
                if path.get(row) == name:
                    if params:
                        assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in params)
                        assert any(not torch.equal(before[k], after[k]) for k in keys)
                        checked_on += 1
                else:  # off the path: a zero gradient, so SGD applies only the weight decay
                    assert all(p.grad is not None and not p.grad.any() for p in params)
                    for k in keys:
                        if "running" in k:  # BN statistics stand, unless every op saw the batch
                            assert torch.equal(before[k], after[k]) != all_ops, k
                        else:  # first step, empty momentum buffer: w - lr * wd * w
                            decayed = before[k] - cfg.train.w_lr * (cfg.train.w_weight_decay * before[k])
                            assert torch.allclose(after[k], decayed, rtol=0, atol=1e-7), k
                            checked_off += 1
        for src, pools in enumerate(cell.pools):  # parameter-free: only their BN statistics can move
            for name in pools.ops:
                keys = [k for k in after if k.startswith(f"cells.{c}.pools.{src}.ops.{name}.") and "running" in k]
                moved = any(not torch.equal(before[k], after[k]) for k in keys)
                assert moved == (all_ops or (c, "from", src, name) in path_ops(s.supernet))
    assert checked_on == 1 * 2 + 2 * 3  # path ops with weights: 2 in the normal cell, 3 in each of 2 reduce cells
    assert checked_off > 100
    assert all(a.grad is None for a in s.supernet.arch_parameters())


@pytest.mark.parametrize("space_name", ["cnn", "nb201", "rnn"])
def test_training_every_op_moves_the_weights_exactly_as_the_path_alone(space_name):
    nets = []
    for all_ops in ("false", "true"):
        cfg = tiny_config("randomws", space_name, train_all_ops=all_ops)
        seed_all(0)
        space = SPACES.get(space_name)()
        data = space.load_data(None, cfg, CPU, 0)
        s = RandomWeightSharing(space, cfg, data, CPU)
        s.start_epoch(0)
        for batch in islice(data.train.epoch(0), 3):
            s.step(batch, None)
        nets.append(s.supernet)
    path, every = (dict(net.named_parameters()) for net in nets)
    # equal up to rounding (the sums run in another order): 1e-6 after 3 steps here, 1e-5 in the RNN
    assert all(torch.allclose(path[k], every[k], rtol=0, atol=1e-5) for k in path)
    stats = [{k: b for k, b in net.named_buffers() if "running_mean" in k} for net in nets]
    if space_name == "rnn":  # the cell's one batch norm is on every path: training every op changes nothing
        assert all(torch.allclose(stats[0][k], stats[1][k], rtol=0, atol=1e-5) for k in stats[0])
        return
    assert sum(not torch.equal(stats[0][k], stats[1][k]) for k in stats[0]) > len(stats[0]) / 2


def test_every_op_is_trained_by_default_only_where_their_code_does():
    assert tiny_config("randomws", "cnn").searcher_cfg.train_all_ops
    assert not tiny_config("randomws", "nb201").searcher_cfg.train_all_ops  # NAS-Bench-201's RSPS: the path
    assert not tiny_config("randomws", "rnn").searcher_cfg.train_all_ops  # the same result there
    assert not tiny_config("randomws", "cnn", train_all_ops="false").searcher_cfg.train_all_ops


def test_selection_screens_then_rescores_and_returns_the_best(monkeypatch):
    cfg, space, data = build(candidates="6", candidate_batches="1", finalists="3")
    s = RandomWeightSharing(space, cfg, data, CPU)
    full_batches = list(islice(data.score.epoch(0), 2))

    def fake(genotype, batches):  # the full split reverses the screening's order
        screen = float(sum(map(ord, space.format_genotype(genotype))) % 101)
        return {"val_loss": 1.0, "val_acc": screen if len(list(batches)) == 1 else 100.0 - screen}

    monkeypatch.setattr(s, "shared_score", fake)
    s.start_epoch(0)
    assert s.score(full_batches) == fake(s.probe, full_batches) and s.derive() == s.probe  # not yet selected
    replay = GenotypeSampler(space, cfg.space_cfg, cfg.seed, s.sampler.ops)
    replay.load_state_dict(copy.deepcopy(s.sampler.state_dict()))
    s.start_epoch(cfg.train.epochs - 1)
    scores = s.score(full_batches)

    candidates = [replay.sample() for _ in range(6)]
    finalists = sorted(candidates, key=lambda g: rank_key(fake(g, [0]), "acc"))[:3]
    best = min(finalists, key=lambda g: rank_key(fake(g, full_batches), "acc"))
    assert best not in (finalists[0], min(candidates, key=lambda g: rank_key(fake(g, full_batches), "acc")))
    assert s.derive() == best and scores == fake(best, full_batches)
    extras = s.epoch_extras()
    assert extras["screened"] == 6 and [f["genotype"] for f in extras["finalists"]][0] == space.format_genotype(best)
    assert {f["genotype"] for f in extras["finalists"]} == {space.format_genotype(g) for g in finalists}


def test_config_is_checked():
    with pytest.raises(UserError, match="finalists=3 is more than candidates=2"):
        tiny_config("randomws", "cnn", candidates="2", finalists="3")


def test_a_run_selects_in_its_last_epoch(tmp_path):
    cfg = tiny_config("randomws", "cnn")
    record = run(cfg, tmp_path, progress=False, echo=lambda line: None)
    first, last = record.epochs
    assert first["scored"] == "probe" and last["scored"] == "selection"
    assert record.genotype == last["finalists"][0]["genotype"] and last["val_acc"] == last["finalists"][0]["val_acc"]
