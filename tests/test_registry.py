import pytest

from nasbench.errors import UserError
from nasbench.registry import SEARCHERS, SPACES, Registry
from nasbench.searchers.darts import DartsSearcher
from nasbench.spaces.cnn import CnnSpace


def test_builtins_come_from_entry_points():
    assert "darts1" in SEARCHERS.names()
    assert "cnn" in SPACES.names()
    assert SEARCHERS.get("darts1") is DartsSearcher
    assert SPACES.get("cnn") is CnnSpace


def test_unknown_name_lists_the_known_ones():
    with pytest.raises(UserError, match="unknown searcher 'nope'.*darts1"):
        SEARCHERS.get("nope")


def test_register_adds_a_name_and_refuses_duplicates():
    reg = Registry("widget", "nasbench.no_such_group")
    reg.register("a")(int)
    assert reg.get("a") is int
    assert reg.names() == ["a"]
    with pytest.raises(ValueError, match="already registered"):
        reg.register("a")(float)


def test_an_entry_point_name_cannot_be_registered_again():
    with pytest.raises(ValueError, match="already registered"):
        SEARCHERS.register("darts1")(object)
