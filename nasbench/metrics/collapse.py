"""Collapse indicators, per search epoch, as pure functions over tensors, genotypes and sequences.

- the dominant eigenvalue of the Hessian of the validation loss w.r.t. the architecture parameters
  (RobustDARTS: Zela et al., "Understanding and Robustifying DARTS", ICLR 2020, sec. 4), by
  Hessian-vector products (double backward) and Lanczos;
- the number of skip connections in the derived genotype's primary cell (the CNN's normal cell) and the
  share of parameter-free operations (the DARTS collapse towards skip connections);
- the mean softmax entropy of the architecture weights per cell type;
- the DARTS-ES early-stopping rule (RobustDARTS sec. 4.3) over a sequence of eigenvalues, as its code
  applies it.

Only the ``Supernet`` contract (``loss`` inside ``frozen_state``, ``arch_parameters``), the searcher's
architecture weights and the facts a space declares (``skip_ops``, ``param_free_ops``, ``primary_cell``)
are used, so every space gets the same definitions.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import torch

from nasbench.genotype import Genotype
from nasbench.spaces.base import Batch, Supernet


class TopEigen(NamedTuple):
    value: float
    products: int  # matrix-vector products used
    vector: torch.Tensor  # the top Ritz vector, unit norm, float64 [dim]: where a later measurement can start


def lanczos_max_eigenvalue(
    matvec: Callable[[torch.Tensor], torch.Tensor],
    dim: int,
    *,
    iters: int,
    tol: float,
    generator: torch.Generator,
    dtype: torch.dtype = torch.float32,
    device: torch.device | None = None,
    start: torch.Tensor | None = None,
) -> TopEigen:
    """The largest eigenvalue of the symmetric operator ``matvec`` on R^dim by Lanczos (with full
    reorthogonalisation), the number of products used and the top Ritz vector. Starts from ``start`` (e.g. the
    previous measurement's vector) or, without one, from a random vector of ``generator``. Stops after ``iters``
    products, when the top Ritz pair's residual ||A x - theta x|| (= beta * |last entry of T's top
    eigenvector|, no extra product) is below ``tol`` relative to theta, or when the Krylov space is exhausted.
    (A test on the change of theta stops on a value that stagnates before it converges: 13.7 % low on one of
    RobustDARTS' Hessians.)"""
    if start is None or start.numel() != dim or not float(start.norm()) > 0:
        start = torch.randn(dim, generator=generator, dtype=torch.float64)
    q = start.detach().reshape(-1).to(dtype=torch.float64, device=device)
    basis = [q / q.norm()]  # orthonormal Lanczos vectors, each [dim]
    diag: list[float] = []
    off: list[float] = []
    if min(iters, dim) < 1:
        raise ValueError(f"Lanczos needs iters >= 1 and dim >= 1, got {iters} and {dim}")
    steps = min(iters, dim)
    for i in range(1, steps + 1):
        w = matvec(basis[-1].to(dtype)).double()  # [dim]
        diag.append(float(basis[-1] @ w))
        q_all = torch.stack(basis)  # [i, dim]
        w = w - q_all.T @ (q_all @ w)
        w = w - q_all.T @ (q_all @ w)  # twice is enough (Kahan): keeps the basis orthogonal in floats
        t = torch.diag(torch.tensor(diag, dtype=torch.float64))
        if off:
            band = torch.tensor(off, dtype=torch.float64)
            t = t + torch.diag(band, 1) + torch.diag(band, -1)
        values, vectors = torch.linalg.eigh(t)
        estimate, beta = float(values[-1]), float(w.norm())
        residual = beta * abs(float(vectors[-1, -1]))
        done = residual <= tol * max(abs(estimate), 1e-12) or beta <= 1e-10 * max(abs(estimate), 1.0)
        if done or i == steps:
            break
        off.append(beta)
        basis.append(w / beta)
    return TopEigen(estimate, i, q_all.T @ vectors[:, -1].to(q_all.device))


def hessian_eigenvalue(
    loss_fn: Callable[[], torch.Tensor],
    params: Sequence[torch.Tensor],
    *,
    iters: int = 10,
    tol: float = 1e-3,
    seed: int = 0,
    start: torch.Tensor | None = None,
) -> TopEigen:
    """Dominant (largest) eigenvalue of the Hessian of ``loss_fn()`` w.r.t. ``params`` (``lanczos_max_eigenvalue``,
    from ``start`` or a random vector of ``seed``).

    The gradient is built once with ``create_graph=True``; each Hessian-vector product H v is then the
    gradient of (grad . v), so the operator is the same one for every product."""
    loss = loss_fn()
    # a parameter the loss does not use (e.g. the normal cell's alpha in a one-cell network) has zero rows
    grads = torch.autograd.grad(loss, params, create_graph=True, allow_unused=True, materialize_grads=True)
    flat_grad = torch.cat([g.reshape(-1) for g in grads])  # [n_arch]
    if not flat_grad.requires_grad:  # the loss is linear in params: the Hessian is zero
        return TopEigen(0.0, 0, torch.zeros(flat_grad.numel(), dtype=torch.float64))

    def hvp(v: torch.Tensor) -> torch.Tensor:
        parts = torch.autograd.grad(
            flat_grad, params, grad_outputs=v, retain_graph=True, allow_unused=True, materialize_grads=True
        )
        return torch.cat([p.reshape(-1) for p in parts]).detach()

    gen = torch.Generator().manual_seed(seed)
    return lanczos_max_eigenvalue(
        hvp,
        flat_grad.numel(),
        iters=iters,
        tol=tol,
        generator=gen,
        dtype=flat_grad.dtype,
        device=flat_grad.device,
        start=start,
    )


def supernet_hessian_eigenvalue(
    model: Supernet,
    batches: Iterable[Batch],
    *,
    iters: int = 10,
    tol: float = 1e-3,
    seed: int = 0,
    start: torch.Tensor | None = None,
) -> tuple[dict[str, float], torch.Tensor]:
    """``hessian_eigenvalue`` of the mean loss of ``batches`` w.r.t. the supernet's architecture parameters.

    The measurement leaves the search untouched: carried state (``frozen_state``), buffers (BN running
    statistics) and the global RNG are restored afterwards. Returns ``hessian_eig``, ``hessian_hvps`` and
    ``hessian_seconds``, and the top Ritz vector (on the CPU), where the next measurement may ``start``."""
    clock = time.perf_counter()
    batches = list(batches)
    buffers = {name: b.detach().clone() for name, b in model.named_buffers()}
    device = next(model.parameters()).device
    arch = model.arch_parameters()
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []), model.differentiating(arch):

        def loss_fn() -> torch.Tensor:
            with model.frozen_state():
                return sum((model.loss(b) for b in batches), torch.zeros((), device=device)) / len(batches)

        top = hessian_eigenvalue(loss_fn, arch, iters=iters, tol=tol, seed=seed, start=start)
    with torch.no_grad():
        for name, b in model.named_buffers():
            b.copy_(buffers[name])
    stats = {"hessian_eig": top.value, "hessian_hvps": top.products, "hessian_seconds": time.perf_counter() - clock}
    return stats, top.vector.cpu()


def alpha_entropy(weights: dict[str, torch.Tensor]) -> dict[str, float]:
    """Mean over edges of the entropy (nats) of each edge's op distribution; weights [n_edges, n_ops]."""
    out = {}
    for cell, w in weights.items():
        p = w.detach().double().clamp_min(0)
        out[cell] = float(-(p * torch.log(p.clamp_min(1e-300))).sum(dim=-1).mean())
    return out


def mean_max_weight(weights: dict[str, torch.Tensor]) -> dict[str, float]:
    """How decided the architecture is: per cell type, the mean over edges of the largest op weight
    (1 / n_ops for a uniform mixture, 1 for a one-hot one); weights [n_edges, n_ops]."""
    return {cell: float(w.detach().double().max(dim=-1).values.mean()) for cell, w in weights.items()}


def skip_count(genotype: Genotype, skip_ops: Sequence[str], cell: str) -> int:
    """Skip connections in one cell of the genotype (a space's ``primary_cell``: the CNN's normal cell)."""
    return sum(e.op in skip_ops for e in genotype.cell(cell))


def param_free_share(genotype: Genotype, param_free: Sequence[str]) -> float:
    """The share of parameter-free operations over all edges of all cells."""
    edges = [e for _, cell in genotype.cells for e in cell]
    return sum(e.op in param_free for e in edges) / max(len(edges), 1)


def centred_average(values: Sequence[float], index: int, window: int) -> float:
    """Mean of the ``window`` values centred on ``index`` (fewer where the sequence begins)."""
    half = window // 2
    part = values[max(0, index - half) : index + half + 1]
    return sum(part) / len(part)


@dataclass(frozen=True)
class EarlyStopRule:
    """DARTS-ES as RobustDARTS' code applies it (Zela et al., ICLR 2020, sec. 4.3; automl/RobustDARTS
    ``src/utils.py``, ``EVLocalAvg``), with its defaults."""

    window: int = 5  # local averages over 5 eigenvalue measurements, centred on one of them
    delta: int = 4  # the newest average is compared with the one 4 measurements earlier
    factor: float = 1.3  # stop when it has grown by more than 1.3x
    start_epoch: int = 10  # never return a genotype from before epoch 10 (counted from 0, as its code does)


def darts_es(epochs: Sequence[int], eigenvalues: Sequence[float], rule: EarlyStopRule) -> int | None:
    """After the newest measurement: the epoch whose genotype DARTS-ES returns, or None to go on.

    ``eigenvalues[i]`` was measured after epoch ``epochs[i]`` (counted from 0). The newest local average
    is the one centred on measurement ``n - 1 - window // 2`` (the newest whose window is complete); it is
    compared with the average centred ``delta`` measurements earlier. The search stops when the newest
    exceeds ``factor`` times the earlier one, and returns the genotype of the earlier average's centre
    epoch, provided that epoch is at least ``start_epoch``."""
    newest = len(eigenvalues) - 1 - rule.window // 2
    earlier = newest - rule.delta
    if earlier < 0 or epochs[earlier] < rule.start_epoch:
        return None
    now = centred_average(eigenvalues, newest, rule.window)
    before = centred_average(eigenvalues, earlier, rule.window)
    return epochs[earlier] if now > rule.factor * before else None


def hessian_measured(epoch: int, epochs: int, every: int) -> bool:
    """Whether the eigenvalue is measured after ``epoch`` (from 0): every ``every``-th epoch from the first,
    and always after the last, as RobustDARTS schedules it (``every`` 0: never)."""
    return every > 0 and (epoch % every == 0 or epoch == epochs - 1)


@dataclass(frozen=True)
class CollapseSettings:
    epochs: int  # of the run (the last one is always measured)
    hessian_every: int  # epochs between eigenvalue measurements; 0: never
    hessian_batches: int
    hessian_iters: int
    hessian_tol: float
    hessian_warm_start: bool  # start Lanczos from the previous measurement's top Ritz vector
    # RobustDARTS differentiates the architecture loss with Adam's L2 term, so its Hessian is that of the
    # validation loss plus weight_decay * I, which adds weight_decay to every eigenvalue; the suite's too.
    arch_weight_decay: float = 0.0


@dataclass
class WarmStart:
    """The last measurement's top Ritz vector (None before the first), carried between epochs and checkpoints."""

    vector: torch.Tensor | None = None


def epoch_collapse_stats(
    model: Supernet | None,
    weights: dict[str, torch.Tensor] | None,
    genotype: Genotype,
    previous_genotype: str | None,
    genotype_text: str,
    batches: Iterable[Batch],
    epoch: int,
    settings: CollapseSettings,
    space: Any,
    warm: WarmStart,
) -> dict[str, Any]:
    """The per-epoch collapse record of ``genotype`` and the searcher's architecture ``weights`` (None
    without a supernet); the eigenvalue where ``hessian_measured``, which leaves its vector in ``warm``."""
    stats: dict[str, Any] = {
        "skip_count": skip_count(genotype, space.skip_ops, space.primary_cell),
        "param_free_share": param_free_share(genotype, space.param_free_ops),
        "genotype_changed": None if previous_genotype is None else genotype_text != previous_genotype,
    }
    if model is None or weights is None:
        return stats
    stats["alpha_entropy"] = alpha_entropy(weights)
    stats["max_weight_mean"] = mean_max_weight(weights)
    if hessian_measured(epoch, settings.epochs, settings.hessian_every):
        measured, warm.vector = supernet_hessian_eigenvalue(
            model,
            batches,
            iters=settings.hessian_iters,
            tol=settings.hessian_tol,
            start=warm.vector if settings.hessian_warm_start else None,
        )
        measured["hessian_eig"] += settings.arch_weight_decay
        stats.update(measured)
    return stats


def early_stop_decision(epochs: Sequence[dict[str, Any]], rule: EarlyStopRule) -> tuple[int, str] | None:
    """DARTS-ES over a run record's epochs (1-based ``epoch``; those with ``hessian_eig`` count): the index
    into ``epochs`` of the epoch whose genotype to return, and why; None to go on."""
    measured = [(i, e["epoch"] - 1, e["hessian_eig"]) for i, e in enumerate(epochs) if "hessian_eig" in e]
    eigs = [eig for _, _, eig in measured]
    keep = darts_es([epoch for _, epoch, _ in measured], eigs, rule)
    if keep is None:
        return None
    index = next(i for i, epoch, _ in measured if epoch == keep)
    newest = len(measured) - 1 - rule.window // 2
    now = centred_average(eigs, newest, rule.window)
    before = centred_average(eigs, newest - rule.delta, rule.window)
    reason = (
        f"DARTS-ES: the local average of the Hessian eigenvalue ({rule.window} measurements) centred on epoch "
        f"{measured[newest][1] + 1} is {now:.4g}, more than {rule.factor:g} x the {before:.4g} centred on epoch "
        f"{keep + 1}; returning the genotype of epoch {keep + 1}"
    )
    return index, reason
