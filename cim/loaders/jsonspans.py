"""Cutting the big numeric arrays out of a CityJSON text before it is parsed.

``vertices`` and every geometry's ``boundaries`` are nested arrays of integers that make up
most of a city file. Parsed by a JSON library they become millions of Python ints and lists
that the loader only turns back into arrays. Here they are located in the raw bytes (key
pattern, then the matching bracket found from bracket depths), checked to hold nothing but
digits, commas, brackets and white space, and replaced by a negative integer placeholder;
the much smaller rest is parsed as usual and the arrays are read with numpy's C text parser.
A caller that finds a placeholder where it does not expect one falls back to a full parse.
"""

from __future__ import annotations

import re
import warnings

import numpy as np
from numpy.typing import NDArray

_KEYS = re.compile(rb'"(boundaries|vertices)"\s*:\s*\[')
_NUMERIC = b"0123456789,[] \t\r\n"
_BLANK_BRACKETS = bytes.maketrans(b"[]", b"  ")


def cut_arrays(raw: bytes) -> tuple[bytes, list[bytes], list[bytes]]:
    """The text with numeric ``boundaries`` / ``vertices`` arrays replaced by placeholders.

    Returns
    -------
    reduced : the JSON text; array ``k`` now reads ``-(k + 1)``
    spans : the cut arrays' bytes, in order
    keys : the key each array was cut from (``b"boundaries"`` or ``b"vertices"``)
    """
    matches = list(_KEYS.finditer(raw))
    if not matches:
        return raw, [], []
    b = np.frombuffer(raw, dtype=np.uint8)
    brackets = np.flatnonzero((b == ord("[")) | (b == ord("]")))
    level = np.cumsum(np.where(b[brackets] == ord("["), 1, -1))
    closes = b[brackets] == ord("]")
    close_pos = brackets[closes]
    close_key = level[closes] * (len(raw) + 1) + close_pos
    order = np.argsort(close_key, kind="stable")
    close_key, close_pos = close_key[order], close_pos[order]
    starts = np.array([m.end() - 1 for m in matches], dtype=np.int64)
    start_level = level[np.searchsorted(brackets, starts)]
    found = np.searchsorted(close_key, (start_level - 1) * (len(raw) + 1) + starts)
    found = np.minimum(found, len(close_key) - 1)
    ends = close_pos[found]
    ok = (close_key[found] // (len(raw) + 1) == start_level - 1) & (ends > starts)
    pieces: list[bytes] = []
    spans: list[bytes] = []
    keys: list[bytes] = []
    cursor = 0
    for match, start, end, good in zip(
        matches, starts.tolist(), ends.tolist(), ok.tolist(), strict=True
    ):
        if not good or start < cursor:
            continue
        span = raw[start : end + 1]
        if span.translate(None, _NUMERIC):  # anything but an array of integers: leave it
            continue
        pieces.append(raw[cursor:start])
        pieces.append(b"%d" % (-1 - len(spans)))
        spans.append(span)
        keys.append(match.group(1))
        cursor = end + 1
    pieces.append(raw[cursor:])
    return b"".join(pieces), spans, keys


def parse_ints(text: bytes) -> NDArray[np.int64]:
    """The integers of a text of nested integer arrays, in order, through numpy's C text
    parser with the brackets blanked. Parsing stops at anything else, so callers check the
    count against what they expect."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "could not be read to its end": the caller checks
        try:
            values: NDArray[np.int64] = np.fromstring(  # text mode (binary mode is deprecated)
                text.translate(_BLANK_BRACKETS), dtype=np.int64, sep=","
            )
        except ValueError:
            return np.zeros(0, dtype=np.int64)
    return values


def read_int_array(span: bytes, width: int) -> NDArray[np.int64] | None:
    """A ``[[a, b, c], ...]`` span as an ``(n, width)`` array, or ``None`` if it is not one."""
    inner = span.count(b"[") - 1
    values = parse_ints(span)
    if inner < 0 or len(values) != inner * width or span.count(b",") != len(values) - 1:
        return None
    return values.reshape(-1, width)
