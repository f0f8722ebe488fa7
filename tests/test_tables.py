"""`nasbench table`: records -> rows of what was actually run -> markdown / LaTeX / CSV, and bad input."""

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
from nasbench.metrics.stats import bootstrap_difference_ci
from nasbench.published import PUBLISHED
from nasbench.report import build_report
from nasbench.results import RunRecord
from nasbench.spaces.cnn import PUBLISHED as CNN_GENOTYPES
from nasbench.spaces.cnn import CnnSpace
from nasbench.tables import comparison, fmt_number, render, short_device, tex_escape

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
    device_name: str | None = None,
    hours: float = 0.12,
    metrics: dict[str, Any] | None = None,
    train: dict[str, Any] | None = None,
    finished: str = "2026-12-01T10:00:00+00:00",
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
        config={"data": None, "train": {"epochs": epochs, **(train or {})}, "space_config": {}, "searcher_config": {}},
        provenance={
            "device": device,
            "device_name": device_name or ("CPU AMD EPYC (1 threads)" if device == "cpu" else "NVIDIA H200"),
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
        finished_at=finished,
    )


def save(record: RunRecord, folder: Path, name: str | None = None) -> Path:
    path = folder / record.space / (name or f"{record.searcher}-{record.preset}-seed{record.seed}") / "record.json"
    record.save(path)
    return path


def measured(report, searcher: str | None = None):
    return [r for r in report.tables["cnn"] if r.source == "measured" and (searcher is None or r.searcher == searcher)]


@pytest.fixture
def runs(tmp_path: Path) -> Path:
    """darts1 on 3 seeds evaluated (errors 3, 4, 8 %), darts2 on 2 seeds not evaluated, one failed run."""
    for seed, test_acc in enumerate((97.0, 96.0, 92.0)):
        metrics = {"test_acc": test_acc, "eval_params_m": 2.0 + seed, "eval_preset": "paper"}
        save(make_record("darts1", seed, metrics=metrics, eigs=(0.1, 0.2, 0.3 + seed)), tmp_path)
    for seed in (0, 1):
        save(make_record("darts2", seed, val_accs=(10.0, 50.0 + 10 * seed)), tmp_path)
    save(make_record("pcdarts", 0, status="failed"), tmp_path)
    return tmp_path


def test_rows_summarise_each_group_over_seeds(runs):
    report = build_report([runs])
    (darts1,) = measured(report, "darts1")
    # test errors 3, 4, 8 %: mean 5, sample variance ((-2)^2 + (-1)^2 + 3^2) / 2 = 7
    assert darts1.test_score.mean == pytest.approx(5.0) and darts1.test_score.std == pytest.approx(math.sqrt(7))
    assert darts1.seeds == darts1.test_score.n == 3 and darts1.test_score.ci_low <= 5.0 <= darts1.test_score.ci_high
    assert darts1.val_score.mean == pytest.approx(60.0)  # the search's own score stays in its own column
    assert darts1.params_m == pytest.approx(3.0) and darts1.cost_days.mean == pytest.approx(0.12 / 24)
    assert darts1.cost_unit == "CPU" and darts1.peak_mem_mib == 302.0
    assert darts1.final_eig.mean == pytest.approx((0.3 + 1.3 + 2.3) / 3)
    assert darts1.skip_count.mean == 3.0  # DARTS_V1's normal cell, counted from the genotype text
    (darts2,) = measured(report, "darts2")
    assert darts2.test_score is None and darts2.val_score.mean == pytest.approx(100 - 55.0)
    assert darts2.final_eig is None and darts2.params_m is None
    assert not measured(report, "pcdarts") and any(r.searcher == "pcdarts" for r in report.tables["cnn"])
    assert "1 run(s) left out, not completed: 1 failed" in report.footnotes()


def test_runs_that_ran_different_settings_are_rows_apart_named_by_what_differs(tmp_path):
    for seed in (0, 1):
        save(make_record("darts1", seed, val_accs=(20.0, 30.0)), tmp_path)  # 2 epochs
        save(make_record("darts1", seed, val_accs=(20.0, 30.0, 40.0)), tmp_path, name=f"three-{seed}")  # 3 epochs
    save(make_record("darts1", 0, train={"early_stop": True}, val_accs=(20.0, 30.0, 40.0)), tmp_path, name="es")
    # a newer run holds the setting at its default; the older ones above, made before it existed, lack it
    save(make_record("darts1", 2, train={"early_stop": False}, val_accs=(20.0, 30.0, 40.0)), tmp_path, name="new")
    report = build_report([tmp_path])
    rows = {r.settings: r for r in measured(report)}
    assert set(rows) == {"early_stop=False, epochs=2", "early_stop=False, epochs=3", "early_stop=True, epochs=3"}
    assert [rows[k].seeds for k in sorted(rows)] == [2, 3, 1]
    pooled = build_report([tmp_path], group_by=["space", "searcher", "preset", "device", "evaluation"])
    (row,) = measured(pooled)
    assert row.seeds == 6 and any("pooled on purpose" in line for line in pooled.footnotes())


def test_a_seed_counts_once_the_newest_completed_record(tmp_path):
    save(make_record("darts1", 0, val_accs=(20.0, 30.0), finished="2026-12-01T10:00:00+00:00"), tmp_path)
    save(make_record("darts1", 0, val_accs=(20.0, 40.0), finished="2026-12-02T10:00:00+00:00"), tmp_path, "copy")
    save(make_record("darts1", 1, val_accs=(20.0, 50.0)), tmp_path)
    report = build_report([tmp_path])
    (row,) = measured(report)
    assert row.seeds == 2 and row.val_score.mean == pytest.approx(100 - 45.0)  # the newer copy of seed 0 (40 %)
    assert any("1 record(s) repeated a seed" in line for line in report.footnotes())


def test_evaluated_and_unevaluated_runs_and_two_devices_never_share_a_row(tmp_path):
    save(make_record("darts1", 0, metrics={"test_acc": 97.0, "eval_preset": "small"}), tmp_path)
    save(make_record("darts1", 1), tmp_path)
    save(make_record("darts1", 2, device_name="CPU Intel(R) Xeon(R) (2 threads)"), tmp_path)
    save(make_record("darts1", 3, device="cuda:0", hours=48.0), tmp_path)
    rows = measured(build_report([tmp_path]))
    assert sorted(r.seeds for r in rows) == [1, 1, 1, 1]
    assert all(" / " not in r.device for r in rows)
    evaluated = next(r for r in rows if r.test_score is not None)
    assert evaluated.eval_preset == "small"
    gpu = next(r for r in rows if r.cost_unit == "GPU")
    assert gpu.cost_days.mean == pytest.approx(2.0)


def test_markdown_puts_validation_and_test_scores_in_their_own_columns(runs):
    text = render(build_report([runs]), "md")
    header = next(line for line in text.splitlines() if line.startswith("| method"))
    assert "test error (%)" in header and "search val error (%)" in header
    darts1 = next(
        line for line in text.splitlines() if line.startswith("| DARTS (first order) ") and "measured" in line
    )
    cells = [c.strip() for c in darts1.strip("|").split("|")]
    names = [c.strip() for c in header.strip("|").split("|")]
    row = dict(zip(names, cells))
    assert row["test error (%)"] == "5.00 ± 2.65" and row["search val error (%)"] == "60.00 ± 0.00"
    assert row["seeds"] == "3" and row["search cost (days)"] == "0.005 CPU" and row["peak mem (MiB)"] == "302"
    darts2 = dict(zip(names, [c.strip() for c in next(
        line for line in text.splitlines() if line.startswith("| DARTS (second order) ") and "measured" in line
    ).strip("|").split("|")]))  # fmt: skip
    assert darts2["test error (%)"] == "-" and darts2["search val error (%)"] == "45.00 ± 7.07"
    assert "Liu et al., ICLR 2019, Table 1" in text


def test_an_evaluation_at_another_preset_is_marked_and_one_seed_has_no_interval(tmp_path):
    save(make_record("darts1", 0, metrics={"test_acc": 90.0, "eval_preset": "small"}), tmp_path)
    report = build_report([tmp_path])
    assert "10.00 (small eval)" in render(report, "md")
    frame = pd.read_csv(io.StringIO(render(report, "csv")))
    line = frame[frame.source == "measured"].iloc[0]
    assert math.isnan(line.test_ci_low) and "evaluated at the small preset" in line.metric


def test_latex_fits_a_paper(runs):
    text = render(build_report([runs]), "tex", ["method", "seeds", "test", "cost", "device"])
    assert text.index(r"\toprule") < text.index(r"\midrule") < text.index(r"\bottomrule")
    assert r"\label{tab:cnn}" in text and r"\begin{tabular}{lrrrl}" in text and r"5.00 $\pm$ 2.65" in text
    assert r"DARTS (first order)\textsuperscript{" in text and "EPYC CPU, 1 thr." in text
    assert tex_escape("skip_connect & 5% #1") == r"skip\_connect \& 5\% \#1"
    body = text[text.index(r"\midrule") : text.index(r"\bottomrule")]
    assert body.count(r"\\") == CNN_PUBLISHED + 2  # published rows, darts1, darts2


def test_numbers_are_formatted_sensibly():
    assert fmt_number(5.54e-05, "days") == "<0.0001" and fmt_number(0.012345, "days") == "0.0123"
    assert (
        fmt_number(3.2, "days") == "3.20"
        and fmt_number(1e300, "ppl") == "1e+300"
        and fmt_number(57.64, "ppl") == "57.6"
    )
    assert short_device("NVIDIA H200") == "H200" and short_device("CPU AMD EPYC (2 threads)") == "EPYC CPU, 2 thr."


def test_csv_says_what_each_score_is(runs):
    frame = pd.read_csv(io.StringIO(render(build_report([runs]), "csv")))
    darts1 = frame[(frame.searcher == "darts1") & (frame.source == "measured")].iloc[0]
    assert darts1.test_mean == pytest.approx(5.0) and darts1.seeds == 3 and darts1.test_ci_low <= 5.0
    assert "test error (%)" in darts1.metric and darts1.val_mean == pytest.approx(40.0 + 20.0)
    darts2 = frame[(frame.searcher == "darts2") & (frame.source == "measured")].iloc[0]
    assert darts2.metric == "search val error (%)" and math.isnan(darts2.test_mean)
    assert set(frame.source) == {"measured", "published"} and len(frame) == CNN_PUBLISHED + 2


def test_columns_can_be_chosen_and_a_wrong_one_is_named(runs, capsys):
    text = render(build_report([runs]), "md", ["method", "seeds"])
    assert next(line for line in text.splitlines() if line.startswith("| method")).count("|") == 3
    assert main(["table", str(runs), "--columns", "method,bogus"]) == 2
    assert "--columns bogus" in capsys.readouterr().err


def test_pairwise_differences_come_with_bootstrap_intervals():
    low, high = bootstrap_difference_ci([94.0, 94.2, 93.8], [90.0, 91.0, 89.0])
    assert 3.0 < low < 4.0 < high < 5.0 and bootstrap_difference_ci([1.0], [1.0]) == (0.0, 0.0)

    class FakeRow:
        def __init__(self, label, values, device=""):
            from nasbench.report import summarize

            self.label, self.settings, self.source, self.device = label, "", "measured", device
            self.truth = {"true_test_acc": summarize(values)}
            self.records = [RunRecord("s", "nb201", i, "cpu", {}, {}, "", metrics={"true_test_acc": v})
                            for i, v in enumerate(values)]  # fmt: skip

    rows = [FakeRow("a", [94.0, 94.2, 93.8]), FakeRow("b", [90.0, 91.0, 89.0]), FakeRow("c", [50.0, 60.0])]
    pairs = comparison(rows)
    assert [(a, b) for a, b, *_ in pairs] == [("a", "b")]  # c has two seeds: no interval
    assert pairs[0][2] == pytest.approx(4.0)
    # one method on two machines is two rows: the pair names each by its device
    amd, intel = "CPU AMD EPYC (1 threads)", "CPU Intel(R) Xeon(R) Processor (1 threads)"
    machines = [FakeRow("a", [94.0, 94.2, 93.8], amd), FakeRow("a", [90.0, 91.0, 89.0], intel), rows[1]]
    names = {(a, b) for a, b, *_ in comparison(machines)}
    assert ("a [EPYC CPU, 1 thr.]", "a [Xeon(R) CPU, 1 thr.]") in names and ("a [EPYC CPU, 1 thr.]", "b") in names
    published = FakeRow("b", [90.0], "1 GPU")
    published.source = "published"  # the paper's row of the same method does not make the measured one ambiguous
    measured = [FakeRow("a", [94.0, 94.2, 93.8], intel), FakeRow("b", [90.0, 91.0, 89.0], intel), published]
    assert {(a, b) for a, b, *_ in comparison(measured)} == {("a", "b")}


def test_a_bad_file_is_named_and_the_rest_still_tabulated(runs, tmp_path):
    corrupt = runs / "cnn" / "broken" / "record.json"
    corrupt.parent.mkdir(parents=True)
    corrupt.write_text("{not json")
    future = save(make_record("darts1", 7), runs / "future")
    future.write_text(json.dumps({**json.loads(future.read_text()), "schema": 99}))
    odd = make_record("darts1", 5)
    odd.epochs[1]["val_acc"] = "high"
    odd_path = save(odd, runs / "odd")
    empty = tmp_path / "empty"
    empty.mkdir()
    report = build_report([runs, empty])
    notes = "\n".join(report.footnotes())
    assert "broken/record.json is not valid JSON" in notes and "schema version 99" in notes
    assert f"{empty}: no record.json" in notes and f"{odd_path}: epochs ['2'] hold values that are not numbers" in notes
    assert measured(report, "darts1")[0].seeds == 3


@pytest.mark.parametrize(
    "setup,message",
    [
        (lambda p: p.mkdir(), "no record.json anywhere under this folder"),
        (lambda p: p.write_text("[]"), "is not a nasbench run record"),
        (
            lambda p: save(make_record(status="interrupted"), p),
            "no completed search run among the 1 record.*interrupted",
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


def test_cli_table_writes_each_format_and_keeps_status_lines_off_stdout(runs, tmp_path, capsys):
    for fmt in ("md", "tex", "csv"):
        out = tmp_path / f"table.{fmt}"
        assert main(["table", str(runs), "--format", fmt, "--out", str(out)]) == 0
        assert "darts1" in out.read_text() or "DARTS" in out.read_text()
    capsys.readouterr()
    assert main(["table", str(runs), "--format", "csv"]) == 0
    printed = capsys.readouterr()
    frame = pd.read_csv(io.StringIO(printed.out))  # stdout holds the table alone
    assert len(frame) == CNN_PUBLISHED + 2 and "left out" in printed.err


@pytest.mark.parametrize(
    "option, target, message",
    [
        ("--out", "folder", "is a folder; name the file"),
        ("--out", "file/table.md", "cannot write"),
        ("--plots", "file", "is a file; name a folder"),
        ("--plots", "file/plots", "cannot write"),
    ],
)
def test_table_outputs_of_the_wrong_kind_are_named_before_anything_is_written(
    runs, tmp_path, capsys, option, target, message
):
    (tmp_path / "folder").mkdir()
    (tmp_path / "file").write_text("not a folder")
    assert main(["table", str(runs), option, str(tmp_path / target)]) == 2
    err = capsys.readouterr().err
    assert message in err and str(tmp_path / target).split("/file")[0] in err and "Traceback" not in err
    assert (tmp_path / "file").read_text() == "not a folder"


def test_published_rows_sit_beside_their_method_and_name_their_source(runs):
    rows = build_report([runs]).tables["cnn"]
    published = [r for r in rows if r.source == "published"]
    assert len(published) == CNN_PUBLISHED >= 4
    assert all(r.note and r.device and (r.test_score or r.truth) is not None for r in published)
    order = [(r.searcher, r.source) for r in rows]
    assert order[order.index(("darts1", "published")) + 1] == ("darts1", "measured")
    notes = build_report([runs]).notes
    assert all("checked:" in note for note in notes)


def test_a_non_finite_score_is_left_out_and_footnoted(tmp_path):
    save(make_record("darts1", 0, val_accs=(20.0, 30.0)), tmp_path)
    save(make_record("darts1", 1, val_accs=(20.0, math.nan)), tmp_path)
    report = build_report([tmp_path])
    (row,) = measured(report)
    assert row.val_score is not None and row.val_score.n == 1 and row.val_score.mean == pytest.approx(70.0)
    assert row.non_finite == 1 and any("not finite" in line and "cnn darts1 (1)" in line for line in report.footnotes())
