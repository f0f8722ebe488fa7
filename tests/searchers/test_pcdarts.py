"""pcdarts: the paper's protocol as presets, the warm-up through the runner, and edge-normalised derivation."""

from __future__ import annotations

import pytest
import torch

from nasbench import runner
from nasbench.config import resolve_config
from nasbench.errors import UserError
from nasbench.genotype import Edge
from nasbench.provenance import seed_all
from nasbench.registry import SPACES
from nasbench.searchers.pcdarts import PcDarts, proportional_warmup
from tests.conftest import tiny_config


def preset(name: str):
    return resolve_config(
        PcDarts,
        SPACES.get("cnn")(),
        searcher="pcdarts",
        preset=name,
        seed=0,
        device="cpu",
        data=None,
        train_flags={},
        set_pairs={},
    )


def test_paper_preset_is_the_papers_cifar10_protocol():
    cfg = preset("paper")
    t = cfg.train
    assert (t.epochs, t.batch_size, t.w_lr, t.w_lr_min, t.w_momentum, t.w_weight_decay) == (
        50,
        256,
        0.1,
        1e-3,
        0.9,
        3e-4,
    )
    assert (t.arch_lr, t.arch_beta1, t.arch_beta2, t.arch_weight_decay) == (6e-4, 0.5, 0.999, 1e-3)
    assert (cfg.searcher_cfg.partial_channels, PcDarts.warmup(cfg)) == (4, 15)
    assert (cfg.space_cfg.channels, cfg.space_cfg.layers) == (16, 8)


def test_short_presets_freeze_the_architecture_for_the_papers_share():
    assert [proportional_warmup(n) for n in (50, 10, 4, 2, 1)] == [15, 3, 1, 1, 0]
    for name in ("small", "tiny"):
        cfg = preset(name)
        assert 0 < PcDarts.warmup(cfg) < cfg.train.epochs
        assert cfg.space_cfg.channels % (2 * cfg.searcher_cfg.partial_channels) == 0


def test_epochs_rescale_the_warmup_unless_it_was_set():
    assert PcDarts.warmup(tiny_config("pcdarts", "cnn", epochs="10")) == 3
    assert PcDarts.warmup(tiny_config("pcdarts", "cnn", epochs="1")) == 0  # one epoch: it trains alpha
    assert PcDarts.warmup(tiny_config("pcdarts", "cnn", epochs="10", warmup_epochs="5")) == 5


def test_a_warmup_as_long_as_the_search_is_refused():
    cfg = tiny_config("pcdarts", "cnn", warmup_epochs="2")
    space = SPACES.get("cnn")()
    with pytest.raises(UserError, match="warmup_epochs=2"):
        PcDarts(space, cfg, space.load_data(None, cfg, torch.device("cpu"), 0), torch.device("cpu"))
    with pytest.raises(UserError, match="partial_channels"):
        tiny_config("pcdarts", "cnn", partial_channels="0")


class CountingStream:
    """Wraps a batch stream and counts the batches each epoch hands out."""

    def __init__(self, stream) -> None:
        self.stream, self.fetched = stream, {}

    def __len__(self) -> int:
        return len(self.stream)

    @property
    def samples_per_batch(self) -> int:
        return self.stream.samples_per_batch

    def epoch(self, epoch: int):
        for batch in self.stream.epoch(epoch):
            self.fetched[epoch] = self.fetched.get(epoch, 0) + 1
            yield batch


def test_warmup_epochs_fetch_no_val_batches_and_leave_alpha_and_beta_unchanged(tmp_path, monkeypatch):
    streams, snapshots = [], []
    load_data = type(SPACES.get("cnn")()).load_data

    def counting_load_data(self, *args, **kwargs):
        data = load_data(self, *args, **kwargs)
        data.val = CountingStream(data.val)
        streams.append(data.val)
        return data

    def snapshot(self):  # at each epoch's start (after start_epoch) and end (before score)
        snapshots.append({n: p.detach().clone() for n, p in self.model.named_arch_parameters()})

    start_epoch, score = PcDarts.start_epoch, PcDarts.score
    monkeypatch.setattr(type(SPACES.get("cnn")()), "load_data", counting_load_data)
    monkeypatch.setattr(PcDarts, "start_epoch", lambda self, epoch: (start_epoch(self, epoch), snapshot(self)))
    monkeypatch.setattr(PcDarts, "score", lambda self, batches: (snapshot(self), score(self, batches))[1])
    cfg = tiny_config("pcdarts", "cnn", hessian_every="0")
    assert (PcDarts.warmup(cfg), cfg.train.epochs) == (1, 2)
    record = runner.run(cfg, tmp_path, progress=False, echo=lambda line: None)

    assert record.status == "completed"
    assert streams[0].fetched == {1: cfg.train.steps_per_epoch}  # none in the warm-up epoch 0
    start0, end0, start1, end1 = snapshots
    assert set(start0) == {"alpha_normal", "beta_normal", "alpha_reduce", "beta_reduce"}
    assert all(torch.equal(start0[n], end0[n]) for n in start0)  # frozen while warming up
    assert all(not torch.equal(start1[n], end1[n]) for n in start1)  # trained afterwards
    assert "arch_loss" not in record.epochs[0] and "arch_loss" in record.epochs[1]


def test_the_genotype_ranks_edges_by_op_weight_times_edge_weight():
    cfg = tiny_config("pcdarts", "cnn")  # 2 intermediate nodes: node 3 keeps 2 of its 3 edges (rows 2-4)
    seed_all(0)
    space = SPACES.get("cnn")()
    s = PcDarts(space, cfg, space.load_data(None, cfg, torch.device("cpu"), 0), torch.device("cpu"))
    ops = list(space.ops)
    alpha = torch.zeros(5, len(ops))
    alpha[2, ops.index("sep_conv_3x3")] = 3.0  # edge 0->3: op weight e^3 / (e^3 + 7) = 0.74
    alpha[3, ops.index("max_pool_3x3")] = 1.0  # edge 1->3: 0.28
    alpha[4, ops.index("skip_connect")] = 1.5  # edge 2->3: 0.39
    beta = torch.zeros(5)
    with torch.no_grad():
        s.model.alpha_normal.copy_(alpha)
        s.model.beta_normal.copy_(beta)
    node3 = {e for e in s.derive().cell("normal") if e.dst == 3}
    assert node3 == {Edge("sep_conv_3x3", 0, 3), Edge("skip_connect", 2, 3)}  # equal edge weights: by alpha
    # beta of edge 0->3 at -5: edge weights (e^-5, 1, 1) / (2 + e^-5) = (0.003, 0.498, 0.498), so the products
    # are 0.74 * 0.003 = 0.002, 0.28 * 0.498 = 0.14 and 0.39 * 0.498 = 0.19: edge 0->3 drops out.
    with torch.no_grad():
        s.model.beta_normal[2] = -5.0
    node3 = {e for e in s.derive().cell("normal") if e.dst == 3}
    assert node3 == {Edge("max_pool_3x3", 1, 3), Edge("skip_connect", 2, 3)}
