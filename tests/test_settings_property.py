"""Random ``--set`` values of every key (hypothesis): never a traceback; either a tiny run that completes (or
fails with the non-finite-loss message, which an absurd learning rate earns) or a ``UserError`` naming the key."""

import dataclasses
import math
import typing

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import nasbench
from nasbench.config import TrainConfig
from nasbench.errors import UserError
from nasbench.registry import SEARCHERS, SPACES

SPACE_NAMES = ("nb201", "rnn", "cnn")
JUNK = st.sampled_from(["", "x", "1e", "--", "none", "0x10", "1,2", "nan", "inf", "-inf", "true"])


def keys_of(searcher: str, space: str) -> list[tuple[str, typing.Any]]:
    """Every settable key of the pair as ``section.name``, with its type."""
    sections = {
        "train": TrainConfig,
        "space": SPACES.get(space).config_cls,
        "searcher": SEARCHERS.get(searcher).config_cls,
    }
    out = []
    for section, cls in sections.items():
        hints = typing.get_type_hints(cls)
        out += [(f"{section}.{f.name}", hints[f.name]) for f in dataclasses.fields(cls)]
    return out


def texts_for(kind: typing.Any) -> st.SearchStrategy[str]:
    """Values as a user would type them: of the key's type (small counts keep an accepted run tiny), and junk."""
    base = typing.get_args(kind)
    if type(None) in base:
        (kind,) = [a for a in base if a is not type(None)]
    if kind is bool:
        typed = st.sampled_from(["true", "false", "1", "0", "yes", "maybe"])
    elif kind is int:
        typed = st.integers(-3, 6).map(str)
    elif kind is float:
        typed = st.one_of(
            st.floats(-2.0, 12.0).map(repr),
            st.sampled_from(["0", "-0.0", "1e-12", "1e30", "nan", "inf", "-inf"]),
        )
    else:
        typed = st.text(st.characters(codec="ascii", categories=["L", "N", "P"]), max_size=12)
    return st.one_of(typed, JUNK)


@st.composite
def settings_cases(draw):
    searcher = draw(st.sampled_from(sorted(SEARCHERS.names())))
    space = draw(st.sampled_from(SPACE_NAMES))
    key, kind = draw(st.sampled_from(keys_of(searcher, space)))
    return searcher, space, key, draw(texts_for(kind))


def check_case(searcher: str, space: str, key: str, text: str, out) -> None:
    try:
        record = nasbench.search(searcher, space, preset="tiny", settings={key: text}, out=out)
    except UserError as exc:
        name = key.split(".")[-1]
        assert name in str(exc), f"--set {key}={text!r}: the error does not name the key: {exc}"
        return
    if record.status == "failed":
        assert "became non-finite" in (record.error or ""), f"--set {key}={text!r}: {record.error}"
    else:
        assert record.status == "completed"
        metric = record.metrics.get("val_loss")
        assert metric is None or isinstance(metric, float) and (math.isfinite(metric) or math.isnan(metric))


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(case=settings_cases())
def test_any_value_of_any_key_is_a_run_or_a_clear_error(case, tmp_path):
    check_case(*case, tmp_path)


@pytest.mark.slow
@settings(
    max_examples=400, derandomize=False, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(case=settings_cases())
def test_many_values_of_every_key(case, tmp_path):
    check_case(*case, tmp_path)
