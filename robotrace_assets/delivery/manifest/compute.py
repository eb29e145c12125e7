"""Typed names for the Arrow compute kernels the manifest uses.

pyarrow generates most ``pyarrow.compute`` functions when it is imported, so a type checker
cannot see them. These call the same kernels by name through ``pc.call_function``, exactly as
the generated functions do (no options given means the kernel's own defaults).
"""

from __future__ import annotations

from typing import Any, TypeAlias

import pyarrow as pa
import pyarrow.compute as pc

Values: TypeAlias = pa.Array | pa.ChunkedArray
Datum: TypeAlias = Values | pa.Scalar | str | int


def _call(name: str, *args: Datum, options: Any = None) -> Any:
    return pc.call_function(name, list(args), options)


def all_true(mask: Values) -> bool:
    """Every non-null value is true (nulls skipped; all-null or empty counts as false)."""
    return bool(_call("all", mask).as_py())


def any_true(mask: Values) -> bool:
    return bool(_call("any", mask).as_py())


def total(values: Values) -> int:
    """The sum of an integer column; 0 when it is empty or all null."""
    return int(_call("sum", values).as_py() or 0)


def equal(left: Datum, right: Datum) -> Values:
    return _call("equal", left, right)


def less(left: Datum, right: Datum) -> Values:
    return _call("less", left, right)


def greater(left: Datum, right: Datum) -> Values:
    return _call("greater", left, right)


def and_(left: Datum, right: Datum) -> Values:
    return _call("and", left, right)


def invert(mask: Values) -> Values:
    return _call("invert", mask)


def is_null(values: Values) -> Values:
    return _call("is_null", values)


def is_in(values: Values, value_set: pa.Array) -> Values:
    return _call("is_in", values, options=pc.SetLookupOptions(value_set=value_set))


def if_else(condition: Values, when_true: Datum, when_false: Datum) -> Values:
    return _call("if_else", condition, when_true, when_false)


def coalesce(*values: Datum) -> Values:
    return _call("coalesce", *values)


def indices_nonzero(mask: pa.Array) -> pa.Array:
    return _call("indices_nonzero", mask)


def sort_indices(values: Values) -> pa.Array:
    return _call("sort_indices", values)


def unique(values: Values) -> pa.Array:
    return _call("unique", values)


def binary_length(strings: Values) -> Values:
    return _call("binary_length", strings)


def ascii_lower(strings: Values) -> Values:
    return _call("ascii_lower", strings)


def match_substring_regex(strings: Values, pattern: str) -> Values:
    return _call("match_substring_regex", strings, options=pc.MatchSubstringOptions(pattern))


def replace_substring(strings: Values, pattern: str, replacement: str) -> Values:
    options = pc.ReplaceSubstringOptions(pattern, replacement)
    return _call("replace_substring", strings, options=options)


def binary_join(lists: Values, separator: str) -> Values:
    """Each list of strings joined into one string."""
    return _call("binary_join", lists, separator)


def binary_join_element_wise(*parts: Datum) -> Values:
    """Row-wise concatenation; the last part is the separator (null in, null out)."""
    return _call("binary_join_element_wise", *parts)


def list_flatten(lists: Values) -> Values:
    return _call("list_flatten", lists)


def list_value_length(lists: Values) -> Values:
    return _call("list_value_length", lists)
