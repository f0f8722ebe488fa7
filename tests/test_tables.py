"""`nasbench table`: records -> grouped rows -> markdown / LaTeX / CSV, and the bad-input paths."""

from __future__ import annotations

import io
import json
import math
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from nasbench.cli import main
from nasbench.errors import UserError
from nasbench.genotype import edge_index
from nasbench.published import PUBLISHED
from nasbench.report import build_report
from nasbench.results import RunRecord
from nasbench.spaces.cnn import PUBLISHED as CNN_GENOTYPES
from nasbench.spaces.cnn import CnnSpace
from nasbench.tables import render, tex_escape

CNN_PUBLISHED = sum(row.space == "cnn" for row in PUBLISHED)
DARTS_V1 = CnnSpace().format_genotype(CNN_GENOTYPES["DARTS_V1"])  # 3 skip connections in its normal cell


def arch_weights(epoch: int, epochs: int, n_edges: int, ops: tuple[str, ...], drift: float) -> list[list[float]]:
    """Softmax-like rows that move from uniform towards skip_connect by ``drift`` at the last epoch."""
    skip = ops.index("skip_connect")
    share = 1 / len(ops) + drift * epoch / max(epochs, 1)
    rest = (1 - share) / (len(ops) - 1)
    return [[share if o == skip else rest for o in range(len(ops))] for _ in range(n_edges)]


def make_record(
    searcher: str = "darts1",
    seed: int = 0,
    *,
    status: str = "completed",
    preset: str = "small",
    val_accs: tuple[float, ...] = (20.0, 30.0, 40.0),
    eigs: tuple[float, ...] | None = None,
    drift: float = 0.5,
    device: str = "cpu",
    hours: float = 0.12,
    metrics: dict[str, Any] | None = None,
) -> RunRecord:
    """A hand-made CNN search record (14-edge cells, 8 ops), as the runner writes one."""
    ops, n_edges, epochs = CnnSpace.ops, len(edge_index(2, 4)), len(val_accs)
    rows = []
    for i, acc in enumerate(val_accs, start=1):
        weights = arch_weights(i, epochs, n_edges, ops, drift)
        row: dict[str, Any] = {"epoch": i, "val_acc": acc, "val_loss": 2.0 - i / 10, "seconds": 1.0}
        row.update(peak_mem_mib=300.0 + seed, genotype=DARTS_V1, arch_weights={"normal": weights, "reduce": weights})
        if eigs is not None:
            row["hessian_eig"] = eigs[i - 1]
        rows.append(row)
    return RunRecord(
        searcher=searcher,
        space="cnn",
        seed=seed,
        preset=preset,
        config={},
        provenance={
            "device": device,
            "device_name": "CPU test" if device == "cpu" else "NVIDIA test",
            "device_count": 1,
        },
        data="hand-made",
        status=status,
        epochs=rows,
        genotype=DARTS_V1 if status == "completed" else None,
        metrics={
            "search_device_hours": hours,
            "peak_mem_mib": 300.0 + seed,
            "val_acc": val_accs[-1],
            **(metrics or {}),
        },
    )


def save(record: RunRecord, folder: Path) -> Path:
    path = folder / record.space / f"{record.searcher}-{record.preset}-seed{record.seed}" / "record.json"
    record.save(path)
    return path


@pytest.fixture
def runs(tmp_path: Path) -> Path:
    """darts1 on 3 seeds with test results (errors 3, 4, 8 %), darts2 on 2 seeds without, one failed run."""
    for seed, test_acc in enumerate((97.0, 96.0, 92.0)):
        save(
            make_record(
                "darts1", seed, metrics={"test_acc": test_acc, "params_m": 2.0 + seed}, eigs=(0.1, 0.2, 0.3 + seed)
            ),
            tmp_path,
        )
    for seed in (0, 1):
        save(make_record("darts2", seed, val_accs=(10.0, 50.0 + 10 * seed)), tmp_path)
    save(make_record("pcdarts", 0, status="failed"), tmp_path)
    return tmp_path


def test_rows_summarise_each_group_over_seeds(runs):
    report = build_report([runs])
    rows = {(r.searcher, r.source): r for r in report.tables["cnn"]}
    darts1 = rows[("darts1", "measured")]
    # test errors 3, 4, 8 %: mean 5, sample variance ((-2)^2 + (-1)^2 + 3^2) / 2 = 7
    assert darts1.score.mean == pytest.approx(5.0) and darts1.score.std == pytest.approx(math.sqrt(7))
    assert darts1.score.n == 3 and darts1.score_from == "test"
    assert darts1.score.ci_low <= 5.0 <= darts1.score.ci_high
    assert darts1.params_m == pytest.approx(3.0) and darts1.cost_days == pytest.approx(0.12 / 24)
    assert darts1.cost_unit == "CPU" and darts1.peak_mem_mib == 302.0
    assert darts1.final_eig == pytest.approx((0.3 + 1.3 + 2.3) / 3)
    assert darts1.skip_count == 3.0  # DARTS_V1's normal cell, counted from the genotype text
    darts2 = rows[("darts2", "measured")]
    assert darts2.score_from == "search val" and darts2.score.mean == pytest.approx(100 - 55.0)
    assert darts2.final_eig is None and darts2.params_m is None
    assert ("pcdarts", "measured") not in rows and ("pcdarts", "published") in rows
    assert report.left_out == {"failed": 1}


def test_markdown_marks_published_rows_and_footnotes(runs):
    text = render(build_report([runs]), "md")
    lines = text.splitlines()
    darts1 = next(line for line in lines if line.startswith("| darts1"))
    assert "5.00 ± 2.65" in darts1 and "| 3 " in darts1 and "0.005 CPU" in darts1 and "302" in darts1
    darts2 = next(line for line in lines if line.startswith("| darts2"))
    assert "45.00 ± 7.07 (val)" in darts2 and "| -" in darts2  # no params, no eigenvalue
    published = next(line for line in lines if line.startswith("| DARTS (second order)"))
    assert "published" in published and "2.76 ± 0.09" in published and "4 GPU" in published
    assert "Liu et al., ICLR 2019, Table 1" in text and "1 run(s) left out, not completed: 1 failed" in text
    assert "val: no evaluation was run" in text


def test_latex_uses_booktabs_and_escapes(runs):
    text = render(build_report([runs]), "tex")
    assert text.index(r"\toprule") < text.index(r"\midrule") < text.index(r"\bottomrule")
    assert r"test error (\%)" in text and r"5.00 $\pm$ 2.65" in text and "published" in text
    assert r"\begin{tabular}{lllrrrrrrrl}" in text  # 3 text columns, 7 numbers, the device
    assert tex_escape("skip_connect & 5% #1") == r"skip\_connect \& 5\% \#1"
    body = text[text.index(r"\midrule") : text.index(r"\bottomrule")]
    assert body.count(r"\\") == CNN_PUBLISHED + 2  # published rows, darts1, darts2


def test_csv_has_numbers_and_sources(runs):
    frame = pd.read_csv(io.StringIO(render(build_report([runs]), "csv")))
    darts1 = frame[(frame.searcher == "darts1") & (frame.source == "measured")].iloc[0]
    assert darts1.score_mean == pytest.approx(5.0) and darts1.seeds == 3 and darts1.score_from == "test"
    assert darts1.score_ci95_low <= 5.0 <= darts1.score_ci95_high
    assert set(frame.source) == {"measured", "published"} and len(frame) == CNN_PUBLISHED + 2
    assert frame[frame.source == "published"].reference.str.contains(r"20\d\d, Table").all()


def test_gpu_and_cpu_runs_form_separate_rows(tmp_path):
    save(make_record("darts1", 0), tmp_path)
    save(make_record("darts1", 1, device="cuda:0", hours=48.0), tmp_path)
    rows = [r for r in build_report([tmp_path]).tables["cnn"] if r.source == "measured"]
    assert sorted((r.cost_unit, r.cost_days) for r in rows) == [("CPU", pytest.approx(0.005)), ("GPU", 2.0)]


def test_a_bad_file_is_named_and_the_rest_still_tabulated(runs, tmp_path):
    corrupt = runs / "cnn" / "broken" / "record.json"
    corrupt.parent.mkdir(parents=True)
    corrupt.write_text("{not json")
    future = save(make_record("darts1", 7), runs / "future")
    future.write_text(json.dumps({**json.loads(future.read_text()), "schema": 99}))
    empty = tmp_path / "empty"
    empty.mkdir()
    report = build_report([runs, empty])
    notes = "\n".join(report.footnotes())
    assert "broken/record.json is not valid JSON" in notes
    assert "schema version 99" in notes
    assert f"{empty}: no record.json" in notes
    assert any(r.searcher == "darts1" and r.source == "measured" for r in report.tables["cnn"])


@pytest.mark.parametrize(
    "setup,message",
    [
        (lambda p: p.mkdir(), "no record.json anywhere under this folder"),
        (lambda p: p.write_text("[]"), "is not a nasbench run record"),
        (
            lambda p: save(make_record(status="interrupted"), p),
            "no completed search run among the 1 record.*1 interrupted",
        ),
        (lambda p: None, "no such file or folder"),
        (lambda p: save(make_record(status="finished"), p), "unknown status 'finished'"),
        (lambda p: save(make_record(searcher="eval"), p), "no completed search run.*1 evaluation record"),
    ],
)
def test_nothing_to_tabulate_is_a_user_error(tmp_path, setup, message):
    target = tmp_path / "input"
    setup(target)
    with pytest.raises(UserError, match=message):
        build_report([target])


def test_cli_table_writes_each_format(runs, tmp_path, capsys):
    for fmt in ("md", "tex", "csv"):
        out = tmp_path / f"table.{fmt}"
        assert main(["table", str(runs), "--format", fmt, "--out", str(out)]) == 0
        assert "darts1" in out.read_text()
    assert main(["table", str(runs / "cnn" / "darts2-small-seed0" / "record.json")]) == 0
    assert "| darts2" in capsys.readouterr().out


def test_cli_table_error_exits_2(tmp_path, capsys):
    assert main(["table", str(tmp_path / "missing")]) == 2
    assert "error:" in capsys.readouterr().err


def test_published_rows_sit_beside_their_method_and_name_their_source(runs):
    rows = build_report([runs]).tables["cnn"]
    published = [r for r in rows if r.source == "published"]
    assert len(published) == CNN_PUBLISHED >= 4
    assert all(r.note and r.device and r.score is not None and r.cost_unit == "GPU" for r in published)
    order = [(r.searcher, r.source) for r in rows]
    # a method's published row comes right before its measured rows
    assert order[order.index(("darts1", "published")) + 1] == ("darts1", "measured")
    assert order[order.index(("darts2", "published")) + 1] == ("darts2", "measured")


def test_malformed_record_is_named_and_evaluation_records_are_not_rows(runs):
    odd = make_record("darts1", 5)
    odd.metrics["search_device_hours"] = "two hours"
    odd_path = save(odd, runs / "odd")
    save(make_record("eval", 0, metrics={"test_acc": 97.0, "params_m": 3.1}), runs)
    report = build_report([runs])
    notes = "\n".join(report.footnotes())
    assert f"{odd_path}: metrics ['search_device_hours'] must be numbers" in notes
    assert "1 evaluation record(s) not listed on their own" in notes
    assert "eval" not in {r.searcher for r in report.tables["cnn"]}
    darts1 = next(r for r in report.tables["cnn"] if r.searcher == "darts1" and r.source == "measured")
    assert darts1.score.n == 3  # seed 5 was left out


def test_params_attached_by_an_evaluation_are_read(tmp_path):
    save(make_record("darts1", 0, metrics={"test_acc": 97.0, "eval_params_m": 3.4}), tmp_path)
    (row,) = [r for r in build_report([tmp_path]).tables["cnn"] if r.source == "measured"]
    assert row.params_m == 3.4 and row.score.mean == pytest.approx(3.0) and row.score_from == "test"


def test_a_non_finite_score_is_left_out_and_footnoted(tmp_path):
    save(make_record("darts1", 0, val_accs=(20.0, 30.0)), tmp_path)
    save(make_record("darts1", 1, val_accs=(20.0, math.nan)), tmp_path)
    report = build_report([tmp_path])
    (row,) = [r for r in report.tables["cnn"] if r.source == "measured"]
    assert row.score is not None and row.score.n == 1 and row.score.mean == pytest.approx(70.0)
    assert row.non_finite == 1
    assert any("not finite" in line and "cnn darts1 (1)" in line for line in report.footnotes())
