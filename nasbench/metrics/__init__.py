"""Measurements as pure functions and small meters: cost, collapse indicators, statistics."""
