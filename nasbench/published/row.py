"""The published row: one method's reported result, with its source."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class PublishedRow:
    space: str  # nasbench space name
    searcher: str  # nasbench searcher that implements the method ("" when the suite has none)
    label: str
    paper: str  # paper and table
    hardware: str
    cost_convention: str
    search_gpu_days: float | None
    params_m: float | None = None
    score: float | None = None  # in the table's unit: test error % (cnn), test perplexity (rnn)
    score_std: float | None = None
    true_test_acc: float | None = None  # nb201: CIFAR-10 test accuracy % from the benchmark's table
    true_test_acc_std: float | None = None
    true_test_acc_cifar100: float | None = None
    true_test_acc_cifar100_std: float | None = None
    true_test_acc_imagenet16_120: float | None = None
    true_test_acc_imagenet16_120_std: float | None = None
    # results of the cell transferred to other data sets: data set -> record key -> value (in the table's unit:
    # ImageNet "top1_err" / "top5_err" %, "params_m", "mult_adds_m"; WikiText-2 "test_ppl", "val_ppl", "params_m")
    transfer: dict[str, dict[str, float]] = field(default_factory=dict)
    settings: dict[str, Any] = field(default_factory=dict)  # the space or searcher settings it was run with
    checked: str = ""  # how the numbers were checked here
