"""Derivation rules other than a space's own, for any supernet searcher (``--set derive=...``).

- ``threshold`` (FairDARTS, Chu et al., ECCV 2020; ``fairdarts/utils.py``, ``parse``): the space's rule
  picks each node's edges; an edge whose op weighs less than the threshold (0.85) is dropped, written as
  ``none`` where the space's cells may hold ``none`` (elsewhere it is kept).
- ``pt`` (DARTS-PT, Wang et al., "Rethinking Architecture Selection in Differentiable NAS", ICLR 2021;
  ruocwang/darts-pt, ``projection.py``): after the search, edge by edge in random order (one edge of each
  cell type per decision), the op whose removal (its weight set to 0, no renormalisation) lowers the
  validation accuracy most is kept and the edge fixed to it; then, where a space keeps k inputs per node,
  node by node the incoming edge whose removal lowers it least is dropped until k remain. The supernet is
  tuned between decisions (``pt_interval`` epochs, weights at lr ``pt_lr``, alpha as before). Decisions are
  scored on the architecture split with batch norm on batch statistics, as their code does.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from itertools import islice
from typing import Any

import torch

from nasbench.genotype import Edge, Genotype
from nasbench.searchers.base import cosine_lr, summarize_scores
from nasbench.spaces.base import Supernet
from nasbench.spaces.mixing import CellMix, Mixer

DERIVATIONS = ("space", "threshold", "pt")


def threshold_genotype(
    genotype: Genotype, strengths: dict[str, torch.Tensor], net: Supernet, threshold: float, none_allowed: bool
) -> Genotype:
    """``genotype`` with every edge whose op's strength is below ``threshold`` made ``none``."""
    if not none_allowed:
        return genotype
    cells = {}
    for cell, edges in genotype.cells:
        spec = net.cell_specs[cell]
        rows = {pair: r for r, pair in enumerate(spec.pairs)}
        kept = []
        for e in edges:
            weak = float(strengths[cell][rows[(e.src, e.dst)], spec.ops.index(e.op)]) < threshold
            kept.append(Edge("none", e.src, e.dst) if weak else e)
        cells[cell] = kept
    return Genotype.of(cells, dict(genotype.concat))


@dataclass
class Projection:
    """What DARTS-PT has decided so far: per cell, edge row -> kept op column, and the rows removed."""

    decided: dict[str, dict[int, int]] = field(default_factory=dict)
    removed: dict[str, set[int]] = field(default_factory=dict)

    def apply(self, mix: CellMix, cell: str, n_ops: int) -> CellMix:
        """``mix`` with decided edges one-hot on their op and removed edges computing nothing."""
        decided, removed = self.decided.get(cell, {}), self.removed.get(cell, set())
        if not decided and not removed or mix.weights is None:
            return mix
        weights = mix.weights.clone()
        active = [tuple(a) for a in mix.active] if mix.active is not None else [tuple(range(n_ops))] * len(weights)
        for row, col in decided.items():
            weights[row] = torch.nn.functional.one_hot(torch.tensor(col), n_ops).to(weights)
            active[row] = (col,)
        for row in removed:
            weights[row] = 0.0
            active[row] = ()
        return replace(mix, weights=weights, active=active)

    def strengths(self, strengths: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """The strengths a genotype is derived from: decided rows one-hot, removed rows zero."""
        out = {}
        for cell, s in strengths.items():
            s = s.clone()
            for row, col in self.decided.get(cell, {}).items():
                s[row] = 0.0
                s[row, col] = 1.0
            for row in self.removed.get(cell, set()):
                s[row] = 0.0
            out[cell] = s
        return out

    def state_dict(self) -> dict[str, Any]:
        return {"decided": self.decided, "removed": {c: sorted(r) for c, r in self.removed.items()}}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.decided = {c: {int(r): int(k) for r, k in d.items()} for c, d in state["decided"].items()}
        self.removed = {c: set(r) for c, r in state["removed"].items()}


class ProjectedMixer(Mixer):
    """``base``'s mix under a ``Projection`` (DARTS-PT's tuning), or its deterministic mix under the projection
    and one probe (``probe``: (cell, row, column) to zero one op, or (cell, row, None) to drop an edge)."""

    def __init__(self, base: Mixer, projection: Projection, probe: tuple[str, int, int | None] | None = None) -> None:
        self.base, self.projection, self.probe = base, projection, probe

    def cell_parameters(self, cell: str, spec: Any, alpha: torch.Tensor) -> dict[str, torch.Tensor]:
        return self.base.cell_parameters(cell, spec, alpha)

    def __call__(self, net: Supernet, cell: str) -> CellMix:
        n_ops = len(net.cell_specs[cell].ops)
        if self.probe is None:
            return self.projection.apply(self.base(net, cell), cell, n_ops)
        mix = self.projection.apply(self.base.expected(net, cell), cell, n_ops)
        probe_cell, row, col = self.probe
        if probe_cell != cell or mix.weights is None:
            return mix
        weights = mix.weights.clone()
        active = list(mix.active) if mix.active is not None else [tuple(range(n_ops))] * len(weights)
        if col is None:
            weights[row], active[row] = 0.0, ()
        else:
            weights[row, col] = 0.0
        return replace(mix, weights=weights, active=active)

    def strengths(self, net: Supernet) -> dict[str, torch.Tensor]:
        return self.projection.strengths(self.base.strengths(net))

    def expected(self, net: Supernet, cell: str) -> CellMix:
        return self.projection.apply(self.base.expected(net, cell), cell, len(net.cell_specs[cell].ops))


def decision_rounds(net: Supernet, inputs_per_node: int | None) -> int:
    """Decisions DARTS-PT makes: one per edge of the largest cell, then one per node with more candidate
    inputs than the space keeps (each such decision drops edges until ``inputs_per_node`` remain)."""
    edges = max(spec.n_edges for spec in net.cell_specs.values())
    if inputs_per_node is None:
        return edges
    specs = net.cell_specs.values()
    nodes = max(sum(spec.destinations.count(d) > inputs_per_node for d in set(spec.destinations)) for spec in specs)
    return edges + nodes


def decide(
    net: Supernet,
    base: Mixer,
    projection: Projection,
    score: Callable[[], float],
    space: Any,
    generator: torch.Generator,
) -> list[str]:
    """One DARTS-PT decision in every cell type; ``score()`` is the supernet's validation score (higher is
    better) under ``net.mixer``; ``space`` says which ops its rule may keep (``derive_excludes``) and how many
    inputs a node keeps (``inputs_per_node``). Returns what was decided, in words."""
    inputs_per_node = space.inputs_per_node
    done = []
    for cell, spec in net.cell_specs.items():
        decided = projection.decided.setdefault(cell, {})
        removed = projection.removed.setdefault(cell, set())
        open_rows = [r for r in range(spec.n_edges) if r not in decided and r not in removed]
        if open_rows:  # op selection: keep the op whose removal hurts most
            row = open_rows[int(torch.randint(len(open_rows), (1,), generator=generator))]
            candidates = [c for c, op in enumerate(spec.ops) if op not in space.derive_excludes]
            scores = {c: probed(net, base, projection, (cell, row, c), score) for c in candidates}
            decided[row] = min(scores, key=lambda c: (scores[c], c))
            done.append(f"{cell} edge {spec.pairs[row]}: {spec.ops[decided[row]]}")
            continue
        if inputs_per_node is None:
            continue
        crowded = sorted(d for d in set(spec.destinations) if kept_inputs(spec, removed, d) > inputs_per_node)
        if not crowded:
            continue
        node = crowded[int(torch.randint(len(crowded), (1,), generator=generator))]
        while kept_inputs(spec, removed, node) > inputs_per_node:  # topology: drop the least useful edge
            rows = [r for r, (_, d) in enumerate(spec.pairs) if d == node and r not in removed]
            scores = {r: probed(net, base, projection, (cell, r, None), score) for r in rows}
            worst = max(scores, key=lambda r: (scores[r], -r))
            removed.add(worst)
            done.append(f"{cell} edge {spec.pairs[worst]} removed")
    return done


def kept_inputs(spec: Any, removed: Iterable[int], node: int) -> int:
    gone = set(removed)
    return sum(1 for r, (_, d) in enumerate(spec.pairs) if d == node and r not in gone)


def probed(
    net: Supernet, base: Mixer, projection: Projection, probe: tuple[str, int, int | None], score: Callable[[], float]
) -> float:
    with net.mixed_by(ProjectedMixer(base, projection, probe)):
        return score()


PT_STREAM = 104_729  # keeps DARTS-PT's edge order apart from the other random streams of a run


class PtSchedule:
    """DARTS-PT's phase after a searcher's own epochs: ``pt_interval`` x (decisions - 1) + 1 epochs, a decision
    at the start of every ``pt_interval``-th one (the last at the last epoch), the weights tuned at ``pt_lr``
    with an optimiser made afresh (their code re-creates it), alpha trained on as before."""

    def __init__(self, searcher: Any, seed: int) -> None:
        self.searcher = searcher
        model = searcher.model
        assert isinstance(model.mixer, ProjectedMixer)
        self.base, self.projection = model.mixer.base, model.mixer.projection
        self.interval = searcher.cfg.searcher_cfg.pt_interval
        self.rounds = decision_rounds(model, searcher.space.inputs_per_node)
        self.epochs = self.interval * (self.rounds - 1) + 1
        self.generator = torch.Generator().manual_seed(seed * 1_000_003 + PT_STREAM)
        self.decisions: list[str] = []  # what the current epoch decided

    def start_epoch(self, pt_epoch: int) -> None:
        s, c = self.searcher, self.searcher.cfg.searcher_cfg
        if pt_epoch == 0:
            s.w_opt = s.weight_optimizer(c.pt_lr)
        lr = c.pt_lr if c.pt_lr_min is None else cosine_lr(pt_epoch, self.epochs, c.pt_lr, c.pt_lr_min)
        for group in s.w_opt.param_groups:
            group["lr"] = lr
        self.decisions = []
        if pt_epoch % self.interval == 0:
            self.decisions = decide(s.model, self.base, self.projection, self.score, s.space, self.generator)

    def score(self) -> float:
        """The supernet's score on the architecture split with batch norm on batch statistics (their
        ``infer(..., _eval=False)``), leaving running statistics, carried state and random state as they were."""
        s = self.searcher
        model = s.model
        buffers = {name: b.detach().clone() for name, b in model.named_buffers()}
        totals: dict[str, float] = {}
        cuda = [s.device] if s.device.type == "cuda" else []
        with torch.random.fork_rng(devices=cuda), model.frozen_state(), torch.no_grad():
            model.train()
            for batch in islice(s.data.score.epoch(0), s.cfg.train.eval_batches or None):
                for key, value in model.evaluate(batch).items():
                    totals[key] = totals.get(key, 0.0) + float(value)
        with torch.no_grad():
            for name, b in model.named_buffers():
                b.copy_(buffers[name])
        scores = summarize_scores(totals)
        return scores["val_acc"] if "val_acc" in scores else -scores["val_loss"]

    def state_dict(self) -> dict[str, Any]:
        return {**self.projection.state_dict(), "generator": self.generator.get_state()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.projection.load_state_dict(state)
        self.generator.set_state(state["generator"])
