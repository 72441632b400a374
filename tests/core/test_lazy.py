"""A lazily imported module: nothing is imported until an attribute is asked for."""

from __future__ import annotations

import pytest

from pipeline.core.lazy import LazyModule


def test_the_module_is_imported_at_the_first_attribute_not_before():
    absent = LazyModule("no_such_module_here")  # naming it imports nothing, so nothing fails yet
    with pytest.raises(ModuleNotFoundError, match="no_such_module_here"):
        _ = absent.anything
    json = LazyModule("json")
    assert repr(json) == "<lazy module 'json'>"
    assert json.dumps([1]) == "[1]" and repr(json) == "<lazy module 'json', imported>"
