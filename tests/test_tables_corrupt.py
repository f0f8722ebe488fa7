"""`table` over records corrupted at random places (hypothesis): the good records are always tabulated, in
every format, and a record that cannot be used is named in a footnote."""

import json
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nasbench.figures import save_plots
from nasbench.report import build_report
from nasbench.tables import FORMATS, render
from tests.test_tables import make_record, save

ODD_VALUES = st.sampled_from([None, "", "high", "NaN", "Infinity", -1, 0, 1e308, True, [], {}, [1, "a"], {"x": 1}])


def paths_of(value, prefix=()):
    """Every place in a JSON tree: (keys and indices leading to it)."""
    yield prefix
    if isinstance(value, dict):
        for key, item in value.items():
            yield from paths_of(item, (*prefix, key))
    elif isinstance(value, list):
        for i, item in enumerate(value[:3]):  # the first items of long lists (epochs, rows of weights)
            yield from paths_of(item, (*prefix, i))


def corrupted(raw: dict, path: tuple, value, delete: bool) -> dict:
    if not path:
        return value if isinstance(value, dict) else {"broken": value}
    node = raw
    for step in path[:-1]:
        node = node[step]
    if delete and isinstance(node, dict):
        del node[path[-1]]
    else:
        node[path[-1]] = value
    return raw


@st.composite
def corruptions(draw):
    raw = json.loads(make_record("darts2", 0, eigs=(0.1, 0.2, 0.3)).to_json())
    path = draw(st.sampled_from(list(paths_of(raw))))
    return corrupted(raw, path, draw(ODD_VALUES), draw(st.booleans()))


def tabulate_beside_good_runs(bad: dict, root: Path):
    """Three good darts1 runs (seeds 1-3) and the corrupted darts2 record (seed 0) in one folder."""
    for seed in (1, 2, 3):
        save(make_record("darts1", seed, eigs=(0.1, 0.2, 0.3)), root)
    bad_path = root / "cnn" / "corrupted" / "record.json"
    bad_path.parent.mkdir(parents=True)
    bad_path.write_text(json.dumps(bad))
    return build_report([root]), bad_path


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(bad=corruptions())
def test_a_record_corrupted_anywhere_never_stops_the_table(bad, tmp_path_factory):
    report, bad_path = tabulate_beside_good_runs(bad, tmp_path_factory.mktemp("runs"))
    good = [r for r in report.tables["cnn"] if r.source == "measured" and r.searcher == "darts1"]
    assert [r.seeds for r in good] == [3]
    tabulated = len(report.records) == 4  # under whatever name and space the corruption gave it
    notes = "\n".join(report.footnotes())
    assert tabulated or str(bad_path) in notes or "1 run(s) left out, not completed" in notes  # counted by status
    for fmt in FORMATS:
        assert "DARTS (first order)" in render(report, fmt, None) or fmt == "csv"


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(bad=corruptions())
def test_a_corrupted_record_that_is_tabulated_is_also_drawn(bad, tmp_path_factory):
    """Drawing costs seconds, so fewer examples, and only the corrupted run's own figures (seed 0)."""
    report, _ = tabulate_beside_good_runs(bad, tmp_path_factory.mktemp("runs"))
    assert save_plots(report, tmp_path_factory.mktemp("plots"), seed=0)
