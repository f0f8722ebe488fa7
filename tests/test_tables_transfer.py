"""The transfer column: ImageNet results beside CIFAR-10 ones, from the search record (`nasbench eval --record`)
or from an evaluation of the same genotype, with the preset marked; published rows as data."""

from __future__ import annotations

import io

import pandas as pd

from nasbench.published import PUBLISHED
from nasbench.report import build_report
from nasbench.results import RunRecord
from nasbench.spaces.cnn import PUBLISHED as CNN_GENOTYPES
from nasbench.spaces.cnn import CnnSpace
from nasbench.tables import render
from tests.test_tables import DARTS_V1, make_record, save


def imagenet(top1: float, top5: float, preset: str = "paper") -> dict:
    return {"top1_err": top1, "top5_err": top5, "params_m": 4.5, "eval_preset": preset, "eval_record": "x"}


def evaluation(genotype: str, top1: float, top5: float, preset: str) -> RunRecord:
    """An ImageNet evaluation record as `nasbench eval --genotype ... --dataset imagenet` writes it."""
    return RunRecord(
        searcher="eval",
        space="cnn",
        seed=0,
        preset=preset,
        config={"dataset": "imagenet", "eval": {}, "source": genotype, "search_record": None},
        provenance={},
        data="",
        status="completed",
        genotype=genotype,
        metrics={"top1_err": top1, "top5_err": top5, "top1_acc": 100 - top1},
        finished_at="2026-12-01T11:00:00+00:00",
    )


def rows_of(report, searcher):
    return [r for r in report.tables["cnn"] if r.searcher == searcher and r.source == "measured"]


def test_transfer_results_fill_the_column_from_records_and_matching_evaluations(tmp_path):
    # darts1: two seeds, both with ImageNet results attached to their search records (errors 26/8 and 28/10)
    for seed, (top1, top5) in enumerate(((26.0, 8.0), (28.0, 10.0))):
        save(make_record("darts1", seed, metrics={"transfer": {"imagenet": imagenet(top1, top5)}}), tmp_path)
    # darts2: three seeds; only the genotype of seed 0 was evaluated on ImageNet, by --genotype, at the tiny preset
    other = CnnSpace().format_genotype(CNN_GENOTYPES["PC_DARTS"])
    for seed in range(3):
        record = make_record("darts2", seed)
        if seed == 0:
            record.genotype = other
        save(record, tmp_path)
    evaluation(other, 30.0, 11.0, "tiny").save(tmp_path / "cnn" / "eval-imagenet-custom" / "record.json")
    report = build_report([tmp_path])
    (darts1,) = rows_of(report, "darts1")
    (darts2,) = rows_of(report, "darts2")
    score = darts1.transfer["imagenet"]
    assert (score.values["top1_err"].mean, score.values["top5_err"].mean, score.n) == (27.0, 9.0, 2)
    assert darts2.transfer["imagenet"].presets == ("tiny",) and darts2.transfer["imagenet"].n == 1
    table = render(report, "md", ["method", "source", "transfer"])
    assert "ImageNet top-1 / top-5 err (%)" in table
    cells = [line.split("|") for line in table.splitlines() if line.startswith("| ") and "---" not in line]
    transfer = {f"{c[1].strip()} {c[2].strip()}": c[3].strip() for c in cells[1:]}
    assert transfer["DARTS (first order) measured"] == "27.00 ± 1.41 / 9.00 ± 1.41"
    assert transfer["DARTS (second order) measured"] == "30.00 / 11.00 (tiny eval; 1 of 3 seeds)"
    published = next(v for k, v in transfer.items() if k.startswith("DARTS (second order) ["))
    assert published == "26.70 / 8.70"
    frame = pd.read_csv(io.StringIO(render(report, "csv")))
    darts2_line = frame[(frame.searcher == "darts2") & (frame.source == "measured")].iloc[0]
    assert darts2_line["imagenet_top1_err_mean"] == 30.0 and darts2_line["imagenet_eval_preset"] == "tiny"
    assert darts2_line["imagenet_evaluated"] == 1


def test_an_attached_result_wins_over_an_evaluation_of_the_same_genotype(tmp_path):
    save(make_record("darts1", 0, metrics={"transfer": {"imagenet": imagenet(25.0, 7.0)}}), tmp_path)
    evaluation(DARTS_V1, 40.0, 20.0, "small").save(tmp_path / "cnn" / "eval-imagenet-x" / "record.json")
    (row,) = rows_of(build_report([tmp_path]), "darts1")
    assert row.transfer["imagenet"].values["top1_err"].mean == 25.0


def test_published_transfer_rows_are_the_papers_numbers():
    by_label = {(row.space, row.label): row for row in PUBLISHED}
    assert by_label[("cnn", "DARTS (second order)")].transfer["imagenet"]["top1_err"] == 26.7
    assert by_label[("cnn", "PC-DARTS")].transfer["imagenet"]["mult_adds_m"] == 586.0
    wt2 = by_label[("rnn", "DARTS (second order)")].transfer["wikitext2"]
    assert (wt2["val_ppl"], wt2["test_ppl"]) == (71.2, 69.6)
    assert by_label[("rnn", "ENAS cell, trained in DARTS' setup")].transfer["wikitext2"]["test_ppl"] == 70.4


def test_no_transfer_column_without_transfer_results(tmp_path):
    save(make_record("darts1", 0), tmp_path)
    report = build_report([tmp_path], published=[])
    assert "ImageNet" not in render(report, "md")


def test_load_runs_has_a_column_per_transfer_result(tmp_path):
    import nasbench

    save(make_record("darts1", 0, metrics={"transfer": {"imagenet": imagenet(26.0, 8.0, "tiny")}}), tmp_path)
    save(make_record("darts1", 1), tmp_path)
    runs = nasbench.load_runs(tmp_path).sort_values("seed")
    assert list(runs["transfer.imagenet.top1_err"].fillna(-1)) == [26.0, -1]
    assert runs["transfer.imagenet.eval_preset"].iloc[0] == "tiny"
