"""Run configuration: frozen dataclasses, presets, and typed ``--set key=value`` overrides.

A run's configuration has three sections, each a frozen dataclass whose defaults are the paper's:

- ``train``: the search protocol every searcher shares (budget, batch, optimisers, data split);
- ``space``: the search space's dimensions (the space's own ``config_cls``);
- ``searcher``: the searcher's own settings (its ``config_cls``).

A preset is a set of overrides per section. The space gives each preset's ``train`` and ``space``
values (the optimiser settings of the DARTS CNN and RNN searches differ), and a searcher may add its
own for a space (PC-DARTS searches CIFAR-10 at batch 256). ``--set`` comes last.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass, field
from typing import Any, ClassVar

from nasbench.bounds import (
    AT_LEAST_ONE,
    FRACTION,
    NON_NEGATIVE,
    OPEN_UNIT,
    POSITIVE,
    SEED,
    Bounds,
    check_bounds,
    check_order,
)
from nasbench.errors import UserError

SECTIONS = ("train", "space", "searcher")
AUTOCAST_DTYPES = {"off": None, "bf16": "bfloat16"}  # TrainConfig.autocast -> the torch dtype's name


@dataclass(frozen=True)
class TrainConfig:
    """The search protocol; defaults are the DARTS CNN search (Liu et al. 2019, sec. 3.1.1 and A.1.1)."""

    epochs: int = 50  # A.1.1: 50 epochs
    batch_size: int = 64  # A.1.1: batch size 64
    train_portion: float = 0.5  # sec. 3.1.1: half of the training set trains w, the other half alpha
    w_lr: float = 0.025  # A.1.1: SGD, initial lr 0.025, cosine-annealed to 0.001
    w_lr_min: float = 0.001
    w_momentum: float = 0.9  # A.1.1: momentum 0.9
    w_nesterov: bool = False  # DARTS' code: plain momentum; NAS-Bench-201's code: Nesterov (its paper preset)
    w_weight_decay: float = 3e-4  # A.1.1: weight decay 3e-4
    grad_clip: float = 5.0  # reference code: clip the weight gradient norm at 5
    arch_lr: float = 3e-4  # A.1.1: Adam, lr 3e-4, betas (0.5, 0.999), weight decay 1e-3
    arch_beta1: float = 0.5
    arch_beta2: float = 0.999
    arch_weight_decay: float = 1e-3
    # DARTS (alg. 1) updates alpha, then the weights, every step; GDAS' and NAS-Bench-201's code the weights first
    weight_step_first: bool = False
    steps_per_epoch: int = 0  # 0: one pass over the weight split per epoch; N > 0: at most N steps
    eval_batches: int = 0  # 0: score the whole architecture split each epoch; N > 0: its first N batches
    # Speed only (image spaces): batches in channels-last (NHWC) memory format, for which oneDNN and cuDNN
    # have faster convolution and pooling kernels (results/benchmarks/README.md has the measured effect).
    channels_last: bool = True
    # Memory only: recompute each supernet cell's activations in the backward pass instead of keeping them
    # (image spaces; results/benchmarks/README.md has what it saves and costs).
    checkpoint_cells: bool = False
    # Memory for time (the `cnn` space): the separable and dilated convolutions keep their input instead of
    # their depthwise outputs, which a weight pass recomputes (0.78x the peak memory of a darts1 step at the
    # paper shape, its time within the noise; results/benchmarks/README.md). Values and gradients are the same.
    recompute_depthwise: bool = True
    # "bf16": the search's passes under torch.autocast with bfloat16 (meant for GPUs); darts2's finite
    # difference and the eigenvalue stay float32. "off": float32 throughout.
    autocast: str = "off"
    # Collapse metrics (RobustDARTS: Zela et al., ICLR 2020). sec. 4.1 tracks the dominant eigenvalue of the
    # validation-loss Hessian w.r.t. alpha over the search; here by Lanczos on fixed batches.
    hessian_every: int = 1  # measure after epochs 1, 1 + k, 1 + 2k, ... and the last (RobustDARTS); 0: never
    hessian_batches: int = 1  # fixed (first, unaugmented) architecture-split batches the Hessian is taken on
    # At most this many Hessian-vector products (Lanczos steps) per measurement: a safety stop, the tolerance
    # sets the cost. 20, since the first measurement of a cnn search (a random start) was 13 % low at 10,
    # 0.6 % at 15 and exact at 20 (results/benchmarks/README.md); warm-started ones stop at 5-8 on their own.
    hessian_iters: int = 20
    hessian_tol: float = 1e-2  # stop earlier once the top Ritz pair's residual is below this, relative to it
    # Start each measurement's Lanczos from the previous one's top Ritz vector instead of a random vector. With
    # it, 1e-2 stays within 0.14 % of the exact eigenvalue on RobustDARTS' logged Hessians in 4.6-6.5 products,
    # where a random start at 1e-3 took 7.4-8.8 and missed by up to 4 % at the cap (docs/methods.md).
    hessian_warm_start: bool = True
    # DARTS-ES (sec. 4.3, as RobustDARTS' EVLocalAvg applies it; metrics.collapse.EarlyStopRule): stop when
    # the eigenvalue's centred local average over `early_stop_window` measurements exceeds `early_stop_factor`
    # times the one `early_stop_delta` measurements earlier, and return the genotype of that earlier average's
    # centre epoch, never one from before `early_stop_start_epoch` (counted from 0). RobustDARTS measures the
    # eigenvalue every 2 epochs for it (hessian_every=2).
    early_stop: bool = False
    early_stop_window: int = 5
    early_stop_delta: int = 4
    early_stop_factor: float = 1.3
    early_stop_start_epoch: int = 10

    # what a record written before a setting existed ran with (nasbench.report reads missing settings so)
    legacy_settings: ClassVar[dict[str, Any]] = {"hessian_warm_start": False}
    bounds: ClassVar[dict[str, Bounds]] = {
        **dict.fromkeys(("epochs", "batch_size", "hessian_batches", "hessian_iters"), AT_LEAST_ONE),
        **dict.fromkeys(("early_stop_window", "early_stop_delta"), AT_LEAST_ONE),
        **dict.fromkeys(("w_lr", "grad_clip", "hessian_tol"), POSITIVE),
        **dict.fromkeys(("w_lr_min", "w_weight_decay", "arch_lr", "arch_weight_decay"), NON_NEGATIVE),
        **dict.fromkeys(("steps_per_epoch", "eval_batches", "hessian_every", "early_stop_start_epoch"), NON_NEGATIVE),
        **dict.fromkeys(("w_momentum", "arch_beta1", "arch_beta2"), FRACTION),
        "train_portion": OPEN_UNIT,
        "early_stop_factor": Bounds(1.0, low_open=True),
    }

    def check(self) -> None:
        check_order(self, "w_lr_min", "w_lr", "the schedule anneals down to it")
        if self.early_stop and self.hessian_every < 1:
            raise UserError("early_stop=true needs the eigenvalue: set hessian_every to 1 or more (RobustDARTS: 2)")
        if self.w_nesterov and self.w_momentum == 0:
            raise UserError("w_nesterov=true needs momentum: set w_momentum above 0 (NAS-Bench-201: 0.9)")
        if self.autocast not in AUTOCAST_DTYPES:
            raise UserError(f"autocast={self.autocast!r}: use one of {', '.join(sorted(AUTOCAST_DTYPES))}")


@dataclass(frozen=True)
class RunConfig:
    searcher: str
    space: str
    preset: str
    seed: int
    device: str
    data: str | None  # None: the built-in slice
    train: TrainConfig
    space_cfg: Any
    searcher_cfg: Any
    extra: dict[str, Any] = field(default_factory=dict)

    def section(self, name: str) -> Any:
        return {"train": self.train, "space": self.space_cfg, "searcher": self.searcher_cfg}[name]

    def to_dict(self) -> dict[str, Any]:
        return {
            "searcher": self.searcher,
            "space": self.space,
            "preset": self.preset,
            "seed": self.seed,
            "device": self.device,
            "data": self.data,
            "train": dataclasses.asdict(self.train),
            "space_config": dataclasses.asdict(self.space_cfg),
            "searcher_config": dataclasses.asdict(self.searcher_cfg),
        }


def _field_types(cls: type) -> dict[str, Any]:
    """The settable fields of a config dataclass and their types (class variables such as ``bounds`` are not)."""
    hints = typing.get_type_hints(cls)
    return {f.name: hints[f.name] for f in dataclasses.fields(cls)}


def check_sections(sections: dict[str, Any]) -> None:
    """Every section's declared ranges (``bounds``, all named in one error), then each section's own
    ``check()`` of its choices and combinations."""
    check_bounds(sections)
    for cfg in sections.values():
        check = getattr(cfg, "check", None)
        if check is not None:
            check()


def parse_value(text: str, kind: Any, key: str) -> Any:
    """Convert ``text`` to ``kind`` (int, float, bool, str, tuple[float, ...], or X | None)."""
    args = typing.get_args(kind)
    if typing.get_origin(kind) in (typing.Union, types.UnionType) and type(None) in args:
        if text.lower() in ("none", "null", ""):
            return None
        (inner,) = [a for a in args if a is not type(None)]
        return parse_value(text, inner, key)
    try:
        if kind is bool:
            lowered = text.lower()
            if lowered in ("1", "true", "yes", "on"):
                return True
            if lowered in ("0", "false", "no", "off"):
                return False
            raise ValueError
        if kind is int:
            return int(text)
        if kind is float:
            return float(text)
        if kind is str:
            return text
        if typing.get_origin(kind) is tuple:
            (inner, _) = typing.get_args(kind)
            return tuple(parse_value(part, inner, key) for part in text.split(","))
    except ValueError:
        name = getattr(kind, "__name__", str(kind))
        raise UserError(f"--set {key}={text}: {text!r} is not a valid {name}") from None
    raise UserError(f"--set {key}: values of type {kind} cannot be set from the command line")


def coerce_value(value: Any, kind: Any, key: str) -> Any:
    """A setting given as text (``--set``) is parsed; one given as a Python value (the API) is checked against
    ``kind`` (an int is taken for a float; a list for a tuple)."""
    if isinstance(value, str):
        return parse_value(value, kind, key)
    args = typing.get_args(kind)
    if typing.get_origin(kind) in (typing.Union, types.UnionType) and type(None) in args:
        if value is None:
            return None
        (kind,) = [a for a in args if a is not type(None)]
    if typing.get_origin(kind) is tuple and isinstance(value, (list, tuple)):
        (inner, _) = typing.get_args(kind)
        return tuple(coerce_value(v, inner, key) for v in value)
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if isinstance(kind, type) and isinstance(value, kind) and not (kind is int and isinstance(value, bool)):
        return value
    name = getattr(kind, "__name__", str(kind))
    raise UserError(f"setting {key}={value!r}: a {type(value).__name__} where a {name} is expected")


def apply_overrides(sections: dict[str, Any], pairs: dict[str, Any]) -> dict[str, Any]:
    """Apply ``key=value`` overrides (``key`` or ``section.key``; text from ``--set`` or typed values from the
    API) to the section dataclasses."""
    changes: dict[str, dict[str, Any]] = {name: {} for name in sections}
    for key, text in pairs.items():
        section, _, name = key.rpartition(".")
        owners = [section] if section else [s for s, cfg in sections.items() if name in _field_types(type(cfg))]
        if section and section not in sections:
            raise UserError(f"--set {key}: unknown section {section!r}; sections are {', '.join(sections)}")
        if not owners or name not in _field_types(type(sections[owners[0]])):
            allowed = sorted(
                f"{s}.{f}" if len([o for o in sections if f in _field_types(type(sections[o]))]) > 1 else f
                for s, cfg in sections.items()
                for f in _field_types(type(cfg))
            )
            raise UserError(f"--set {key}: unknown key {name!r}; allowed keys: {', '.join(allowed)}")
        if len(owners) > 1:
            raise UserError(
                f"--set {key}: {name!r} exists in several sections; write one of "
                + ", ".join(f"{o}.{name}" for o in owners)
            )
        owner = owners[0]
        changes[owner][name] = coerce_value(text, _field_types(type(sections[owner]))[name], key)
    resolved = {s: dataclasses.replace(cfg, **changes[s]) for s, cfg in sections.items()}
    check_sections(resolved)
    return resolved


def parse_set_flags(items: list[str]) -> dict[str, str]:
    pairs = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise UserError(f"--set {item!r}: expected key=value, e.g. --set epochs=3 or --set space.channels=8")
        pairs[key.strip()] = value.strip()
    return pairs


def resolve_config(
    searcher_cls: Any,
    space: Any,
    *,
    searcher: str,
    preset: str,
    seed: int,
    device: str,
    data: str | None,
    train_flags: dict[str, Any],
    set_pairs: dict[str, Any],
) -> RunConfig:
    """Paper defaults <- the space's preset <- the searcher's preset for that space <- flags <- ``--set``."""
    if preset not in space.presets:
        raise UserError(f"unknown preset {preset!r} for space {space.name!r}; presets: {', '.join(space.presets)}")
    if not SEED.holds(seed):
        raise UserError(f"--seed {seed}: use a whole number {SEED}")
    base = space.presets[preset]
    extra = searcher_cls.preset_overrides(space, preset)
    sections = {
        "train": TrainConfig(**{**base.get("train", {}), **extra.get("train", {}), **train_flags}),
        "space": space.config_cls(**{**base.get("space", {}), **extra.get("space", {})}),
        "searcher": searcher_cls.config_cls(**extra.get("searcher", {})),
    }
    resolved = apply_overrides(sections, set_pairs)
    cfg = RunConfig(
        searcher=searcher,
        space=space.name,
        preset=preset,
        seed=seed,
        device=device,
        data=data,
        train=resolved["train"],
        space_cfg=resolved["space"],
        searcher_cfg=resolved["searcher"],
    )
    searcher_cls.check_config(cfg)
    return cfg


def config_differences(stored: RunConfig, asked: RunConfig) -> list[str]:
    """``section.key=stored (asked: value)`` for every setting in which two configurations differ."""
    a, b = stored.to_dict(), asked.to_dict()
    out = []
    for section in ("train", "space_config", "searcher_config"):
        for key in sorted(set(a[section]) & set(b[section])):
            if a[section][key] != b[section][key]:
                out.append(f"{section.removesuffix('_config')}.{key}={a[section][key]!r} (asked: {b[section][key]!r})")
    return out


def config_from_dict(raw: dict[str, Any], searcher_cls: Any, space: Any) -> RunConfig:
    """Rebuild the RunConfig a record stored (for ``--resume``)."""

    def build(cls: type, values: dict[str, Any]) -> Any:
        hints = _field_types(cls)
        # a setting the record lacks was added after the run: it ran with the setting's old behaviour
        values = {**getattr(cls, "legacy_settings", {}), **values}
        return cls(**{k: tuple(v) if isinstance(v, list) and k in hints else v for k, v in values.items()})

    return RunConfig(
        searcher=raw["searcher"],
        space=raw["space"],
        preset=raw["preset"],
        seed=raw["seed"],
        device=raw["device"],
        data=raw["data"],
        train=build(TrainConfig, raw["train"]),
        space_cfg=build(space.config_cls, raw["space_config"]),
        searcher_cfg=build(searcher_cls.config_cls, raw["searcher_config"]),
    )
