"""Shared input validation: every error names the field, what was expected and what was received.

MNE's style (``_validate_type``, ``_check_option``): a check raises at the start of a function, with a message of
the form ``"<where>: field '<field>': expected <expected>, got <got>"``, so that a researcher sees which file and
which field is wrong. Imports nothing from neurodecode.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, NoReturn

import numpy as np

__all__ = ["check_float", "check_option", "fail", "normalize_index"]


def fail(field: str, expected: str, got: Any, where: str | None = None, exc: type[Exception] = ValueError) -> NoReturn:
    """Raise ``exc("<where>: field '<field>': expected <expected>, got <got>")``."""
    prefix = f"{where}: " if where else ""
    raise exc(f"{prefix}field '{field}': expected {expected}, got {got}")


def check_float(name: str, value: Any, positive: bool = False, where: str | None = None) -> float:
    """A finite float (``> 0`` with ``positive``); booleans and non-numbers are refused."""
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        fail(name, "a number", repr(value), where, exc=TypeError)
    value = float(value)
    if not math.isfinite(value) or (positive and value <= 0):
        fail(name, "a finite number > 0" if positive else "a finite number", value, where)
    return value


def check_option(name: str, value: Any, allowed: Sequence[Any], where: str | None = None) -> Any:
    """``value`` if it is one of ``allowed``, else a ValueError listing them."""
    if value not in allowed:
        fail(name, f"one of {list(allowed)}", repr(value), where)
    return value


def normalize_index(key: Any, n: int, field: str = "index") -> np.ndarray:
    """Turn an int, slice, boolean mask or integer array into integer positions (in the order given)."""
    if isinstance(key, (int, np.integer)) and not isinstance(key, bool):
        k = int(key)
        if not -n <= k < n:
            raise IndexError(f"{field} {k} out of range for {n} epochs")
        return np.array([k % n])
    if isinstance(key, slice):
        return np.arange(n)[key]
    arr = np.asarray(key)
    if arr.dtype == bool:
        if arr.shape != (n,):
            fail(field, f"a boolean mask of shape ({n},)", f"shape {arr.shape}")
        return np.flatnonzero(arr)
    if arr.ndim != 1 or not (np.issubdtype(arr.dtype, np.integer) or arr.size == 0):
        fail(field, "an int, a slice, a boolean mask or a 1-D integer array", f"{arr.dtype} of shape {arr.shape}",
             exc=TypeError)
    arr = arr.astype(np.intp)
    if arr.size and (arr.min() < -n or arr.max() >= n):
        raise IndexError(f"{field} out of range for {n} epochs: min {arr.min()}, max {arr.max()}")
    return arr % n if arr.size else arr
