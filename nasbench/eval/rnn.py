"""PTB evaluation of a DARTS recurrent genotype (Liu et al. 2019, sec. A.2; reference code's train.py):
the 850-unit language model trained with SGD that switches to averaged SGD (ASGD) when the validation
loss stops improving (Merity et al. 2018, AWD-LSTM's non-monotone trigger); the result is the test
perplexity of the best model on the validation split. The same protocol with the README's WikiText-2
settings evaluates a PTB cell's transfer to WikiText-2."""

from __future__ import annotations

import copy
import math
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from itertools import islice
from pathlib import Path
from typing import Any, ClassVar

import torch

from nasbench.bounds import AT_LEAST_ONE, FRACTION, NON_NEGATIVE, POSITIVE, Bounds
from nasbench.data import builtin_path
from nasbench.data.ptb import (
    PTB_LAYOUT,
    WIKITEXT2_LAYOUT,
    Jitter,
    TextStream,
    batchify,
    check_tar_window,
    load_corpus,
)
from nasbench.data.streams import capped_steps
from nasbench.errors import UserError
from nasbench.eval.trainer import EvalTask, train_steps
from nasbench.genotype import Genotype
from nasbench.metrics.flops import params_m
from nasbench.spaces.rnn_network import EVAL_UNITS, Regime, RnnNetwork


@dataclass(frozen=True)
class RnnEvalConfig:
    """Training from scratch; defaults are DARTS' PTB evaluation (sec. A.2 and the reference train.py)."""

    units: int = EVAL_UNITS  # A.2: embedding and hidden size 850 (~23M parameters with the full vocabulary)
    epochs: int = 8000  # reference code: 8000 epochs ("until convergence", A.2)
    batch_size: int = 64  # A.2: batch size 64
    bptt: int = 35  # reference code: BPTT length 35
    eval_batch_size: int = 10  # reference code: validation at batch size 10
    test_batch_size: int = 1  # reference code: test at batch size 1
    w_lr: float = 20.0  # A.2: SGD, learning rate 20, then ASGD
    w_weight_decay: float = 8e-7  # A.2: weight decay 8e-7
    grad_clip: float = 0.25  # reference code: gradient norm clipped at 0.25
    nonmono: int = 5  # reference code: switch to ASGD when the validation loss is worse than 5 epochs ago
    dropout: float = 0.75  # reference code: output, hidden, input, embedding dropouts
    dropouth: float = 0.25
    dropoutx: float = 0.75
    dropouti: float = 0.2
    dropoute: float = 0.1  # reference code: word dropout 0.1 in the evaluation (0 in the search)
    tar_beta: float = 1e-3  # reference code: temporal activation regularisation 1e-3
    window_jitter: float = 5.0  # reference train.py: window lengths normal around bptt with std 5, walking
    # the whole text each epoch (0: the search's lengths, bptt or bptt / 2, a fixed number of windows)
    max_seq_len_delta: int = 20  # reference train.py: a jittered window is at most bptt + 20 long
    steps_per_epoch: int = 0  # 0: one pass over train.txt per epoch; N > 0: at most N windows
    eval_batches: int = 0  # 0: the whole validation split per epoch; N > 0: its first N windows
    test_batches: int = 0  # 0: the whole test split; N > 0: its first N windows

    bounds: ClassVar[dict[str, Bounds]] = {
        **dict.fromkeys(
            ("units", "epochs", "batch_size", "eval_batch_size", "test_batch_size", "nonmono"), AT_LEAST_ONE
        ),
        "bptt": Bounds(2.0),
        **dict.fromkeys(("w_lr", "grad_clip"), POSITIVE),
        **dict.fromkeys(
            ("w_weight_decay", "tar_beta", "steps_per_epoch", "eval_batches", "test_batches"), NON_NEGATIVE
        ),
        **dict.fromkeys(("window_jitter", "max_seq_len_delta"), NON_NEGATIVE),
        **dict.fromkeys(("dropout", "dropouth", "dropoutx", "dropouti", "dropoute"), FRACTION),
    }

    # what an evaluation record written before a setting existed ran with (read so when it is resumed)
    legacy_settings: ClassVar[dict[str, Any]] = {"window_jitter": 0.0}

    def check(self) -> None:
        check_tar_window(self.bptt, self.tar_beta)

    def jitter(self) -> Jitter | None:
        return Jitter(self.window_jitter, self.max_seq_len_delta) if self.window_jitter > 0 else None


@dataclass(frozen=True)
class WikiText2EvalConfig(RnnEvalConfig):
    """DARTS' WikiText-2 evaluation: its README's command (emsize = nhid = nhidlast = 700, dropouth 0.15,
    weight decay 5e-7), every other setting as on PTB."""

    units: int = 700
    dropouth: float = 0.15
    w_weight_decay: float = 5e-7


def switch_to_asgd(earlier: Sequence[float], current: float, nonmono: int) -> bool:
    """AWD-LSTM's non-monotone trigger as DARTS' train.py applies it: the current validation loss is worse than
    the best of the earlier epochs before the last ``nonmono`` of them, once more than ``nonmono`` epochs came
    before (the earlier list holds the previous epochs only)."""
    return len(earlier) > nonmono and current > min(earlier[:-nonmono])


class RnnEvalTask(EvalTask):
    space = "rnn"
    dataset = "ptb"
    label = "PTB"
    metric = "test_ppl"
    config_cls = RnnEvalConfig
    layout = PTB_LAYOUT
    builtin: str | None = "ptb-mini"  # the built-in slice used without --data
    presets = {
        "paper": {},
        # A 2-core CPU budget on the built-in slice: 128 units, 3 epochs of 32 windows, validation on 20.
        "small": {"units": 128, "epochs": 3, "eval_batches": 20, "test_batch_size": 10},
        # Seconds, for tests.
        "tiny": {
            "units": 8,
            "epochs": 2,
            "batch_size": 4,
            "bptt": 5,
            "eval_batch_size": 4,
            "test_batch_size": 4,
            "steps_per_epoch": 2,
            "eval_batches": 2,
            "test_batches": 2,
            "nonmono": 1,
        },
    }

    def __init__(
        self, genotype: Genotype, cfg: RnnEvalConfig, device: torch.device, seed: int, path: str | None, download: bool
    ) -> None:
        name = self.layout.name
        if download:
            raise UserError(f"--download is not available for {name}: download its text files and pass --data DIR")
        if not path and self.builtin is None:
            raise UserError(f"{name} has no built-in slice: pass --data DIR; {self.layout.hint}")
        root = Path(path) if path else builtin_path(str(self.builtin))
        corpus = load_corpus(root, self.layout)
        b = cfg.batch_size
        train = batchify(corpus.train, b).to(device)
        self.train = TextStream(train, cfg.bptt, seed, 0, "train", variable=True, jitter=cfg.jitter())
        valid = batchify(corpus.valid, cfg.eval_batch_size).to(device)
        self.valid = TextStream(valid, cfg.bptt, seed, 1, "val")
        self.test_stream = TextStream(batchify(corpus.test, cfg.test_batch_size).to(device), cfg.bptt, seed, 2, "test")
        what = f"{name} built-in slice" if not path else f"{name} from {root}"
        self.description = (
            f"{what}: {len(corpus.train)} training tokens train the network, {len(corpus.valid)} validation tokens "
            f"pick the best epoch, {len(corpus.test)} test tokens test it; vocabulary {len(corpus.words)}"
        )
        regime = Regime(cfg.dropout, cfg.dropouth, cfg.dropoutx, cfg.dropouti, cfg.dropoute, 0.0, cfg.tar_beta)
        self.net = RnnNetwork(genotype, len(corpus.words), cfg.units, regime).to(device)
        self.cfg = cfg
        self.opt: torch.optim.Optimizer = self._sgd()
        self.val_losses: list[float] = []
        self.best: dict[str, torch.Tensor] | None = None  # weights of the best validation epoch

    def _sgd(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.net.parameters(), lr=self.cfg.w_lr, weight_decay=self.cfg.w_weight_decay)

    def _asgd(self) -> torch.optim.Optimizer:
        # reference code: ASGD with t0 = 0 and lambd = 0, i.e. a plain running average from the switch on
        return torch.optim.ASGD(
            self.net.parameters(), lr=self.cfg.w_lr, t0=0, lambd=0.0, weight_decay=self.cfg.w_weight_decay
        )

    @property
    def averaging(self) -> bool:
        return isinstance(self.opt, torch.optim.ASGD)

    @contextmanager
    def averaged_weights(self) -> Iterator[None]:
        """Under ASGD, validation and the kept best model use the averaged weights (reference code)."""
        if not self.averaging:
            yield
            return
        saved = [p.detach().clone() for p in self.net.parameters()]
        with torch.no_grad():
            for p in self.net.parameters():
                if "ax" in self.opt.state[p]:
                    p.copy_(self.opt.state[p]["ax"])
        try:
            yield
        finally:
            with torch.no_grad():
                for p, value in zip(self.net.parameters(), saved):
                    p.copy_(value)

    def size(self) -> dict[str, float]:
        return {"params_m": params_m(self.net)}

    def train_epoch(self, epoch: int, progress: bool) -> dict[str, Any]:
        cfg, net = self.cfg, self.net
        net.train()
        n = capped_steps(self.train.steps(epoch), cfg.steps_per_epoch)
        desc = f"eval epoch {epoch + 1}/{cfg.epochs}"
        train_loss = train_steps(net, self.opt, self.train.epoch(epoch), n, cfg.grad_clip, desc, progress)
        with self.averaged_weights():
            val_loss = self._mean_loss(self.valid, cfg.eval_batches)
            if self.best is None or val_loss <= min(self.val_losses):
                self.best = copy.deepcopy(net.state_dict())
        stats: dict[str, Any] = {"train_loss": train_loss, "val_loss": val_loss}
        stats.update(val_ppl=math.exp(min(val_loss, 700)), optimizer="asgd" if self.averaging else "sgd")
        if not self.averaging and switch_to_asgd(self.val_losses, val_loss, cfg.nonmono):
            self.opt = self._asgd()
            stats["switched_to_asgd"] = True
        self.val_losses.append(val_loss)
        return stats

    @torch.no_grad()
    def _mean_loss(self, stream: TextStream, cap: int) -> float:
        self.net.eval()
        loss_sum, count = 0.0, 0.0
        for batch in islice(stream.epoch(0), cap or None):
            scores = self.net.evaluate(batch)
            loss_sum, count = loss_sum + float(scores["loss_sum"]), count + float(scores["count"])
        self.net.train()
        return loss_sum / max(count, 1.0)

    def test(self) -> dict[str, float]:
        if self.best is not None:
            self.net.load_state_dict(self.best)
        loss = self._mean_loss(self.test_stream, self.cfg.test_batches)
        return {"test_loss": loss, "test_ppl": math.exp(min(loss, 700))}

    def state_dict(self) -> dict[str, Any]:
        return {
            "model": self.net.state_dict(),
            "asgd": self.averaging,
            "optimizer": self.opt.state_dict(),
            "val_losses": list(self.val_losses),
            "best": self.best,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.net.load_state_dict(state["model"])
        self.opt = self._asgd() if state["asgd"] else self._sgd()
        self.opt.load_state_dict(state["optimizer"])
        self.val_losses, self.best = list(state["val_losses"]), state["best"]


class WikiText2EvalTask(RnnEvalTask):
    """The PTB protocol on WikiText-2 (Merity et al. 2017): the cell transferred from a PTB search."""

    dataset = "wikitext2"
    label = "WikiText-2"
    config_cls = WikiText2EvalConfig
    layout = WIKITEXT2_LAYOUT
    builtin = None
    table_keys = ("test_ppl",)
    table_header = "WikiText-2 test ppl"
    score_kind = "ppl"
