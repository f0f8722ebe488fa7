"""`nasbench compare`: two sets of records that differ in a setting, matched method by method, with the
difference of each method's mean, the rank correlation, and clear errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from nasbench.cli import main
from nasbench.compare import compare, to_markdown
from nasbench.errors import UserError
from nasbench.metrics.stats import bootstrap_difference_ci
from tests.test_tables import make_record, save

LONG, SHORT = (20.0, 30.0, 40.0), (20.0, 40.0)  # val_accs: a 3-epoch and a 2-epoch search


def write_set(folder: Path, truths: dict[str, list[float]], epochs: tuple[float, ...], **train) -> Path:
    """One search record per method and seed, each returning a cell of the given true accuracy."""
    for searcher, values in truths.items():
        for seed, truth in enumerate(values):
            record = make_record(searcher, seed, val_accs=epochs, metrics={"true_test_acc": truth}, train=train)
            save(record, folder, f"{searcher}-{seed}" + "".join(f"-{k}-{v}" for k, v in train.items()))
    return folder


@pytest.fixture
def sets(tmp_path: Path) -> tuple[Path, Path]:
    """The long budget ranks darts1 > darts2 > random; the short one the reverse, by far more than the seeds."""
    high, middle, low = [90.0, 91.0, 92.0], [80.0, 81.0, 82.0], [70.0, 71.0, 72.0]
    a = write_set(tmp_path / "a", {"darts1": high, "darts2": middle, "random": low}, LONG)
    b = write_set(tmp_path / "b", {"darts1": low, "darts2": [80.0, 80.0, 80.0], "random": high}, SHORT)
    return a, b


def test_methods_are_matched_across_the_changed_setting(sets):
    (effect,) = compare(*sets)
    assert effect.changed == [("train.epochs", "3", "2")]
    by_name = {m.name: m for m in effect.methods}
    darts1 = by_name["DARTS (first order)"]
    assert darts1.a == (90.0, 91.0, 92.0) and darts1.b == (70.0, 71.0, 72.0)
    assert darts1.difference == pytest.approx(-20.0)
    assert darts1.interval == pytest.approx(bootstrap_difference_ci([70.0, 71.0, 72.0], [90.0, 91.0, 92.0]))
    assert darts1.interval[1] < 0
    # ranks by mean, 1 the best: reversed by the short budget, so the correlation is -1 in every resample
    assert dict(zip([m.name for m in effect.methods], effect.ranks("a"))) == {
        "DARTS (first order)": 1.0, "DARTS (second order)": 2.0, "Random search": 3.0,
    }  # fmt: skip
    assert effect.ranks("b") == [3.0, 2.0, 1.0]
    assert effect.rho == pytest.approx(-1.0) and effect.rho_interval == (-1.0, -1.0)
    assert not effect.only_a and not effect.only_b


def test_a_setting_that_varies_within_both_sets_keeps_its_methods_apart(tmp_path):
    """DARTS with and without early stopping in both sets: two methods, each matched with itself; a method
    of one set alone is named, not matched."""
    a = write_set(tmp_path / "a", {"darts1": [90.0, 91.0, 92.0], "pcdarts": [93.0]}, LONG)
    write_set(tmp_path / "a", {"darts1": [50.0, 51.0, 52.0]}, LONG, early_stop=True)
    b = write_set(tmp_path / "b", {"darts1": [80.0, 81.0, 82.0], "random": [88.0]}, SHORT)
    write_set(tmp_path / "b", {"darts1": [60.0, 61.0, 62.0]}, SHORT, early_stop=True)
    (effect,) = compare(a, b)
    assert effect.changed == [("train.epochs", "3", "2")]
    by_name = {m.name: m for m in effect.methods}
    assert by_name["DARTS (first order) (early_stop=True)"].difference == pytest.approx(10.0)
    assert by_name["DARTS (first order) (early_stop=False)"].difference == pytest.approx(-10.0)
    assert effect.only_a == ["PC-DARTS"] and effect.only_b == ["Random search"]
    assert effect.rho is None  # two methods rank nothing


def test_runs_on_two_machines_are_two_methods_unless_the_device_is_left_out_of_the_grouping(tmp_path):
    a = tmp_path / "a"
    for seed, truth in enumerate((90.0, 91.0)):
        save(make_record("darts1", seed, val_accs=LONG, metrics={"true_test_acc": truth}), a)
    other = make_record("darts1", 2, val_accs=LONG, metrics={"true_test_acc": 80.0}, device_name="CPU Intel Xeon")
    save(other, a, "darts1-xeon")
    b = write_set(tmp_path / "b", {"darts1": [70.0, 72.0]}, SHORT)
    (split,) = compare(a, b)
    assert [len(m.a) for m in split.methods] == [2] and len(split.only_a) == 1 and "Xeon" in split.only_a[0]
    (pooled,) = compare(a, b, group_by=("space", "searcher", "preset", "settings"))
    assert pooled.methods[0].a == (90.0, 91.0, 80.0) and pooled.methods[0].difference == pytest.approx(71.0 - 87.0)


def test_the_markdown_names_what_changed_and_marks_intervals_that_exclude_zero(sets):
    text = to_markdown(compare(*sets), "long", "short")
    assert "A: `long`; B: `short`" in text and "Changed: epochs 3 (A) -> 2 (B)." in text
    (darts1,) = [line for line in text.splitlines() if line.startswith("| DARTS (first order)")]
    cells = [c.strip() for c in darts1.strip("|").split("|")]
    assert cells[1:4] == ["3 / 3", "91.00 ± 1.00", "71.00 ± 1.00"] and cells[4].startswith("-20.00 [")
    assert cells[4].endswith("*") and cells[5:] == ["1", "3"]
    assert "Spearman correlation of the 3 methods' means, A against B: -1.00" in text


def test_fewer_than_three_seeds_a_side_get_no_interval(tmp_path):
    a = write_set(tmp_path / "a", {"darts1": [90.0, 92.0], "darts2": [80.0], "random": [70.0]}, LONG)
    b = write_set(tmp_path / "b", {"darts1": [70.0, 71.0, 72.0], "darts2": [80.0], "random": [90.0]}, SHORT)
    (effect,) = compare(a, b)
    assert all(m.interval is None for m in effect.methods)
    assert effect.rho == pytest.approx(-1.0)  # means still rank the methods
    (darts1,) = [line for line in to_markdown([effect], "a", "b").splitlines() if "first order" in line]
    assert "| -20.00 " in darts1 and "[" not in darts1


def test_methods_are_listed_best_first_in_a(tmp_path):
    a = write_set(tmp_path / "a", {"darts1": [90.0], "random": [95.0], "darts2": [92.0]}, LONG)
    b = write_set(tmp_path / "b", {"darts1": [90.0], "random": [80.0], "darts2": [85.0]}, SHORT)
    (effect,) = compare(a, b)
    assert [m.name for m in effect.methods] == ["Random search", "DARTS (second order)", "DARTS (first order)"]
    assert effect.ranks("a") == [1.0, 2.0, 3.0] and effect.ranks("b") == [3.0, 2.0, 1.0]


def test_a_perplexity_ranks_the_lowest_first(tmp_path):
    for folder, epochs in (("a", LONG), ("b", SHORT)):
        for searcher, ppl in (("darts1", 90.0), ("random", 70.0), ("darts2", 80.0)):
            save(make_record(searcher, 0, val_accs=epochs, metrics={"test_ppl": ppl}), tmp_path / folder)
    (effect,) = compare(tmp_path / "a", tmp_path / "b", metric="test_ppl")
    assert [m.name for m in effect.methods] == ["Random search", "DARTS (second order)", "DARTS (first order)"]
    assert effect.ranks("b") == [1.0, 2.0, 3.0] and effect.rho == pytest.approx(1.0)


def test_means_all_tied_on_one_side_rank_nothing(tmp_path):
    a = write_set(tmp_path / "a", {"darts1": [10.0], "darts2": [10.0], "random": [10.0]}, LONG)
    b = write_set(tmp_path / "b", {"darts1": [70.0], "darts2": [80.0], "random": [90.0]}, SHORT)
    text = to_markdown(compare(a, b), "a", "b")
    assert "all tied on one side: there is no ranking to correlate" in text and "Spearman" not in text


def test_the_command_writes_the_comparison_and_refuses_bad_input(sets, tmp_path, capsys):
    a, b = sets
    out = tmp_path / "cmp" / "effect.md"
    assert main(["compare", str(a), str(b), "--out", str(out)]) == 0
    assert "Changed: epochs 3 (A) -> 2 (B)." in out.read_text()
    assert main(["compare", str(a), str(b), "--metric", "no_such_result"]) == 2
    assert "no method has 'no_such_result' in both sets: pass --metric" in capsys.readouterr().err
    assert main(["compare", str(a), str(b), "--group-by", "space,seed"]) == 2
    assert "--group-by seed: choose from" in capsys.readouterr().err
    assert main(["compare", str(a), str(tmp_path / "nowhere")]) == 2
    assert "no such file or folder" in capsys.readouterr().err


def test_a_set_without_completed_searches_is_named(sets, tmp_path):
    a, _ = sets
    save(make_record("darts1", 0, status="failed"), tmp_path / "failed")
    with pytest.raises(UserError, match=r"failed: no completed search run among its 1 record\(s\)"):
        compare(a, tmp_path / "failed")


def test_the_figure_puts_each_method_at_its_means_and_at_its_ranks(sets, tmp_path):
    import matplotlib.pyplot as plt

    from nasbench.compare_figure import draw_comparison, draw_ranks

    (effect,) = compare(*sets)
    fig, (scores, ranks) = plt.subplots(1, 2)
    draw_comparison(scores, effect)
    draw_ranks(ranks, effect)
    points = scores.lines[0].get_xydata()  # the markers of the error bars: (mean A, mean B) per method
    assert points.tolist() == [[91.0, 71.0], [81.0, 80.0], [71.0, 91.0]]
    assert ranks.collections[0].get_offsets().tolist() == [[1.0, 3.0], [2.0, 2.0], [3.0, 1.0]]
    numbers = [t.get_text() for t in scores.texts]
    names = [t.get_text() for t in ranks.texts]
    assert numbers == ["1", "2", "3"]  # a number per method where the scores crowd ...
    assert names == [f"{n} {m.name}" for n, m in zip(numbers, effect.methods)]  # ... named beside its ranks
    plt.close(fig)
    a, b = sets
    assert main(["compare", str(a), str(b), "--plots", str(tmp_path / "plots")]) == 0
    assert (tmp_path / "plots" / "cnn_compare.png").stat().st_size > 10_000
    (tmp_path / "file").write_text("")
    assert main(["compare", str(a), str(b), "--plots", str(tmp_path / "file")]) == 2
