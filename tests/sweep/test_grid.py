"""The grid of a sweep: seeds, grid values, cells and their folders, as pure functions."""

import pytest

from nasbench.errors import UserError
from nasbench.sweep.grid import MAX_SLUG, Cell, expand, parse_grid, parse_names, parse_seeds, settings_slug


def test_seeds_as_ranges_and_lists():
    assert parse_seeds("0-4") == [0, 1, 2, 3, 4]
    assert parse_seeds("0,2,7") == [0, 2, 7]
    assert parse_seeds("0-2,9") == [0, 1, 2, 9]
    for bad in ("4-0", "a", "1,1", "0-2,2", ""):
        with pytest.raises(UserError, match="--seeds"):
            parse_seeds(bad)


def test_grid_items_and_names():
    assert parse_grid(["arch_lr=3e-4,3e-3", "w_lr=0.1"]) == [("arch_lr", ["3e-4", "3e-3"]), ("w_lr", ["0.1"])]
    for bad in (["arch_lr"], ["=1,2"], ["a="], ["a=1", "a=2"]):
        with pytest.raises(UserError, match="--grid"):
            parse_grid(bad)
    assert parse_names("darts1, darts2", "searchers") == ["darts1", "darts2"]
    with pytest.raises(UserError, match="twice"):
        parse_names("a,a", "searchers")


def test_expand_crosses_everything_with_seeds_outermost():
    cells = expand(["a", "b"], ["s"], [0, 1], "cpu", None, {"x": "1"}, [("y", ["2", "3"])])
    assert len(cells) == 2 * 1 * 2 * 2
    assert [c.seed for c in cells] == [0, 0, 0, 0, 1, 1, 1, 1]  # every method on seed 0 first
    assert [(c.searcher, dict(c.settings)) for c in cells[:4]] == [
        ("a", {"x": "1", "y": "2"}),
        ("a", {"x": "1", "y": "3"}),
        ("b", {"x": "1", "y": "2"}),
        ("b", {"x": "1", "y": "3"}),
    ]
    with pytest.raises(UserError, match="both with --set and with --grid"):
        expand(["a"], ["s"], [0], "cpu", None, {"y": "1"}, [("y", ["2"])])


def test_a_cells_folder_is_a_function_of_the_cell_alone():
    cell = Cell("darts1", "nb201", "cpu", 3, None, (("early_stop", "true"),))
    assert cell.folder == "nb201/darts1-cpu-early_stop=true-seed3"
    assert Cell("darts1", "nb201", "cpu", 3, 10).folder == "nb201/darts1-cpu-e10-seed3"
    assert Cell.from_dict(cell.to_dict()) == cell and Cell.from_dict(cell.to_dict()).folder == cell.folder
    assert Cell("d", "s", "p", 0, None, (("a", "1"), ("b", "2"))).folder.endswith("-a=1,b=2-seed0")


def test_long_or_unsafe_settings_become_a_stable_hash():
    long = (("k" * MAX_SLUG, "1"),)
    unsafe = (("data", "/some/path"),)
    assert settings_slug(long).startswith("h") and len(settings_slug(long)) == 11
    assert settings_slug(unsafe) == settings_slug(unsafe) and "/" not in settings_slug(unsafe)
    assert settings_slug(unsafe) != settings_slug((("data", "/other/path"),))
