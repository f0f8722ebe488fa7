"""Shared pieces of the benchmark suite: the machine's matmul ceiling, step measurement, the summary.

Run with ``pytest benchmarks/ --benchmark-only``. Each benchmark stores in ``extra_info`` the step's
peak memory, its multiply-adds (torch's FLOP counter on the forward; a backward is counted as twice its
forward, because torch's counter over-counts the backward of grouped convolutions), the achieved
GFLOP/s and that as a fraction of a dense float32 matmul timed in the same session. At the end a
summary is printed and saved under ``results/benchmarks/`` (as ``<device>-partial.json`` when some
benchmarks were deselected, only some files or tests were named, or some failed, so that a partial session
never replaces a full one).
"""

from __future__ import annotations

import json
import platform
import statistics
import time
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest
import torch

from nasbench.metrics.cost import PhaseMeter, current_rss_kib
from nasbench.provenance import device_name, git_commit

RESULTS = Path(__file__).resolve().parent.parent / "results" / "benchmarks"
SUMMARY: dict[str, dict[str, Any]] = {}  # benchmark id -> its extra_info and median seconds


@pytest.fixture(scope="session")
def device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


@pytest.fixture(scope="session")
def matmul_gflops(device: torch.device) -> float:
    """Dense float32 matmul throughput of this machine, measured now (GFLOP/s, median of 5)."""
    n = 4096 if device.type == "cuda" else 2048
    a, b = torch.randn(n, n, device=device), torch.randn(n, n, device=device)
    a @ b
    times = []
    for _ in range(5):
        sync(device)
        start = time.perf_counter()
        a @ b
        sync(device)
        times.append(time.perf_counter() - start)
    gflops = 2 * n**3 / statistics.median(times) / 1e9
    SUMMARY["matmul"] = {"gflops": gflops, "n": n}
    return gflops


def measure(
    benchmark: Any,
    key: str,
    fn: Callable[[], Any],
    device: torch.device,
    matmul_gflops: float,
    macs: float,
    rounds: int,
    **info: Any,
) -> None:
    """Time ``fn`` (one warm-up round, then ``rounds``), measure one call's peak memory, and record both."""
    fn()  # warm-up outside the timer: allocator, kernels, lazy state
    with PhaseMeter(device) as meter:
        fn()
    rss = current_rss_kib()

    def timed() -> None:
        fn()
        sync(device)

    benchmark.pedantic(timed, rounds=rounds, iterations=1, warmup_rounds=0)
    median_s = benchmark.stats.stats.median
    achieved = 2 * macs / median_s / 1e9
    extra = {
        "peak_mem_mib": meter.peak_mem_mib,
        "peak_mem_method": meter.method,
        "process_rss_mib": (rss or 0) / 1024,
        "macs": macs,
        "gflops": achieved,
        "matmul_fraction": achieved / matmul_gflops,
        **info,
    }
    benchmark.extra_info.update(extra)
    SUMMARY[key] = {"median_s": median_s, **extra}


def _ratio(a: str, b: str, field: str) -> float | None:
    if a in SUMMARY and b in SUMMARY:
        return SUMMARY[a][field] / SUMMARY[b][field]
    return None


def summary() -> dict[str, Any]:
    steps = {k: v for k, v in SUMMARY.items() if k.startswith("step/") and "-rnn-" not in k}  # image steps
    fastest = min((v["median_s"] / v["samples"] for v in steps.values() if v.get("samples")), default=None)
    data = SUMMARY.get("data/cifar10")
    return {
        "darts2_over_darts1_step_time_paper": _ratio("step/darts2-cnn-paper", "step/darts1-cnn-paper", "median_s"),
        "darts2_over_darts1_step_time_small": _ratio("step/darts2-cnn-small", "step/darts1-cnn-small", "median_s"),
        "darts2_forward_hvp_over_darts1_step_time_paper": _ratio(
            "step/darts2-forward-cnn-paper", "step/darts1-cnn-paper", "median_s"
        ),
        "darts2_shared_over_darts1_step_time_paper": _ratio(
            "step/darts2-shared-cnn-paper", "step/darts1-cnn-paper", "median_s"
        ),
        "channels_last_over_nchw_step_time_paper": _ratio(
            "step/darts1-cnn-paper", "step/darts1-cnn-paper-nchw", "median_s"
        ),
        "channels_last_over_nchw_peak_mem_paper": _ratio(
            "step/darts1-cnn-paper", "step/darts1-cnn-paper-nchw", "peak_mem_mib"
        ),
        "recomputed_over_kept_depthwise_darts1_step_time_paper": _ratio(
            "step/darts1-cnn-paper", "step/darts1-kept-depthwise-cnn-paper", "median_s"
        ),
        "recomputed_over_kept_depthwise_darts1_peak_mem_paper": _ratio(
            "step/darts1-cnn-paper", "step/darts1-kept-depthwise-cnn-paper", "peak_mem_mib"
        ),
        "checkpointed_over_plain_darts1_step_time_paper": _ratio(
            "step/darts1-checkpointed-cnn-paper", "step/darts1-cnn-paper", "median_s"
        ),
        "checkpointed_over_plain_darts1_peak_mem_paper": _ratio(
            "step/darts1-checkpointed-cnn-paper", "step/darts1-cnn-paper", "peak_mem_mib"
        ),
        **{
            f"bf16_over_float32_{s}_{field}_paper": _ratio(f"step/{s}-cnn-paper-bf16", f"step/{s}-cnn-paper", key)
            for s in ("darts1", "darts2", "pcdarts")
            for field, key in (("step_time", "median_s"), ("peak_mem", "peak_mem_mib"))
        },
        "pcdarts_over_darts1_peak_mem_paper_b64": _ratio(
            "step/pcdarts-cnn-paper", "step/darts1-cnn-paper", "peak_mem_mib"
        ),
        "hessian_over_darts1_step_time_small": _ratio("hessian/cnn-small", "step/darts1-cnn-small", "median_s"),
        "gdas_over_darts1_step_time_small": _ratio("step/gdas-cnn-small", "step/darts1-cnn-small", "median_s"),
        "gdas_over_darts1_peak_mem_small": _ratio("step/gdas-cnn-small", "step/darts1-cnn-small", "peak_mem_mib"),
        "pcdarts_over_darts1_peak_mem_small": _ratio("step/pcdarts-cnn-small", "step/darts1-cnn-small", "peak_mem_mib"),
        "data_over_fastest_step_samples_per_s": (data["samples_per_s"] * fastest if data and fastest else None),
        "sweep_overhead_per_cell_s": SUMMARY.get("sweep/darts1-nb201-tiny-x8", {}).get("overhead_per_cell_s"),
        "sweep_two_over_one_worker_wall": SUMMARY.get("sweep/darts1-nb201-tiny-x8", {}).get("two_over_one_worker_wall"),
        "matmul_fraction": {k: round(v["matmul_fraction"], 4) for k, v in SUMMARY.items() if "matmul_fraction" in v},
    }


DESELECTED: list[Any] = []  # benchmarks left out by -k / -m (or files named): the summary is saved as partial


def pytest_deselected(items: list[Any]) -> None:
    DESELECTED.extend(items)


def pytest_sessionfinish(session: pytest.Session) -> None:
    if len(SUMMARY) <= 1:
        return
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    name = device_name(device)
    out = {
        "machine": {"device": name, "platform": platform.platform(), "torch": torch.__version__},
        "commit": git_commit(),
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "summary": summary(),
        "benchmarks": SUMMARY,
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    slug = "".join(c if c.isalnum() else "-" for c in (name if device.type == "cuda" else "cpu")).strip("-").lower()
    chosen = any("::" in arg or arg.endswith(".py") for arg in session.config.args)  # files or tests named
    path = RESULTS / f"{slug}{'-partial' if DESELECTED or chosen or session.testsfailed else ''}.json"
    path.write_text(json.dumps(out, indent=1) + "\n")
    print(f"\nbenchmark summary ({path}):\n" + json.dumps(out["summary"], indent=1))
