"""Reading a search as if it had stopped earlier (`nasbench table --at-epoch N`, `runner.stopped_after`)."""

from __future__ import annotations

from pathlib import Path

import pytest

from nasbench.cli import main
from nasbench.errors import UserError
from nasbench.report import build_report
from nasbench.results import RunRecord
from nasbench.runner import stopped_after


def cell(*ops: str) -> str:
    """An NB201 genotype from its six ops in edge order (node 1 from 0; node 2 from 0, 1; node 3 from 0, 1, 2)."""
    sources = (0, 0, 1, 0, 1, 2)
    parts = [f"{op}~{src}" for op, src in zip(ops, sources, strict=True)]
    return f"|{parts[0]}|+|{parts[1]}|{parts[2]}|+|{parts[3]}|{parts[4]}|{parts[5]}|"


CONV = cell(*["nor_conv_3x3"] * 6)
TWO_SKIPS = cell("skip_connect", "nor_conv_3x3", "skip_connect", "nor_conv_3x3", "nor_conv_1x1", "nor_conv_3x3")
ALL_SKIPS = cell(*["skip_connect"] * 6)


def nb201_record(seed: int = 0, early_stop_epoch: int | None = None) -> RunRecord:
    """Four hand-made epochs: validation best at epoch 1 among the first two and at epoch 3 overall; the
    eigenvalue measured after epochs 1 and 3; the cell drifts to skips; an evaluation result on top."""
    val = (40.0, 30.0, 60.0, 50.0)
    truth = (91.0, 92.0, 93.0, 54.3)
    genotypes = (CONV, TWO_SKIPS, CONV, ALL_SKIPS)
    epochs = []
    for i in range(4):
        row = {"epoch": i + 1, "val_acc": val[i], "val_loss": 1.0, "seconds": 360.0 * (i + 1)}
        row.update(peak_mem_mib=100.0 * (i + 1), genotype=genotypes[i], true_test_acc=truth[i])
        if i in (0, 2):
            row.update(hessian_eig=0.1 * (i + 1), hessian_seconds=36.0)
        epochs.append(row)
    if early_stop_epoch is not None:
        epochs = epochs[:3]
    metrics = {"peak_mem_method": "cpu peak RSS", "test_acc": 97.0, "eval_preset": "paper"}
    if early_stop_epoch is not None:
        metrics.update(early_stopped=True, early_stop_epoch=early_stop_epoch, returned_epoch=early_stop_epoch)
    return RunRecord(
        searcher="darts1",
        space="nb201",
        seed=seed,
        preset="cpu",
        config={"data": None, "train": {"epochs": 4}, "space_config": {}, "searcher_config": {}},
        provenance={"device": "cpu", "device_name": "CPU (1 threads)", "device_count": 1},
        data="hand-made",
        status="completed",
        epochs=epochs,
        genotype=genotypes[len(epochs) - 1] if early_stop_epoch is None else genotypes[early_stop_epoch - 1],
        metrics=metrics,
        finished_at="2026-12-04T10:00:00+00:00",
    )


def test_a_search_read_as_stopped_after_epoch_2_has_what_that_run_would_have_recorded():
    record = nb201_record()
    early = stopped_after(record, 2, "acc")
    assert [e["epoch"] for e in early.epochs] == [1, 2] and early.genotype == TWO_SKIPS
    m = early.metrics
    assert m["true_test_acc"] == 92.0 and m["returned_epoch"] == 2 and m["stopped_after_epoch"] == 2
    assert m["best_val_epoch"] == 1 and m["best_val_true_test_acc"] == 91.0  # among the first two epochs only
    assert m["search_device_hours"] == pytest.approx((360.0 + 720.0) / 3600.0)
    assert m["hessian_device_hours"] == pytest.approx(36.0 / 3600.0) and m["peak_mem_mib"] == 200.0
    assert "test_acc" not in m and "eval_preset" not in m  # the evaluation was of the final cell
    assert len(record.epochs) == 4 and record.metrics["test_acc"] == 97.0  # the record itself is untouched


def test_a_run_that_ended_by_then_reads_as_it_ended_and_epoch_0_is_refused():
    stopped = nb201_record(early_stop_epoch=2)
    assert stopped_after(stopped, 3, "acc") is stopped and stopped_after(stopped, 10, "acc") is stopped
    with pytest.raises(UserError, match="epoch 1 at the earliest"):
        stopped_after(nb201_record(), 0, "acc")


def test_the_table_at_an_epoch_scores_the_cells_derived_then_and_says_so(tmp_path: Path):
    for seed in (0, 1):
        nb201_record(seed).save(tmp_path / f"s{seed}" / "record.json")
    full = build_report([tmp_path])
    at_2 = build_report([tmp_path], at_epoch=2)
    [row_full] = [r for r in full.tables["nb201"] if r.source == "measured"]
    [row_2] = [r for r in at_2.tables["nb201"] if r.source == "measured"]
    assert row_full.truth["true_test_acc"].mean == 54.3 and row_2.truth["true_test_acc"].mean == 92.0
    assert row_full.skip_count.mean == 6 and row_2.skip_count.mean == 2  # counted on the cell of epoch 2
    assert row_full.final_eig.mean == pytest.approx(0.3) and row_2.final_eig.mean == pytest.approx(0.1)
    assert row_2.best_val_truth.mean == 91.0 and row_2.test_score is None
    assert any("--at-epoch 2" in line and "0 run(s) had ended" in line for line in at_2.footnotes())
    assert not any("--at-epoch" in line for line in full.footnotes())


def test_cli_table_at_epoch(tmp_path: Path, capsys):
    nb201_record().save(tmp_path / "runs" / "a" / "record.json")
    assert main(["table", str(tmp_path / "runs"), "--at-epoch", "3", "--columns", "method,source,true_acc"]) == 0
    out = capsys.readouterr().out
    [measured] = [line for line in out.splitlines() if "| measured" in line]
    assert measured.split("|")[-2].strip() == "93.00"  # epoch 3's cell, not the final 54.30 %
    assert "--at-epoch 3: every search read as if it had stopped after epoch 3" in out
    assert main(["table", str(tmp_path / "runs"), "--at-epoch", "0"]) == 2
    assert "epoch 1 at the earliest" in capsys.readouterr().err


def test_a_record_whose_epochs_lack_what_the_reading_needs_is_named_and_the_rest_tabulated(tmp_path: Path):
    nb201_record(0).save(tmp_path / "good" / "record.json")
    broken = nb201_record(1)
    del broken.epochs[1]["seconds"]
    broken.save(tmp_path / "broken" / "record.json")
    report = build_report([tmp_path], at_epoch=3)
    [row] = [r for r in report.tables["nb201"] if r.source == "measured"]
    assert row.seeds == 1 and row.truth["true_test_acc"].mean == 93.0
    assert any("broken" in p and "epoch 2 lacks seconds" in p for p in report.problems)
    (tmp_path / "good" / "record.json").unlink()
    with pytest.raises(UserError, match="no completed run can be read so .*epoch 2 lacks seconds"):
        build_report([tmp_path], at_epoch=3)
