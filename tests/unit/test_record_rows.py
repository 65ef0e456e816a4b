"""envlock.io.installed reads RECORD rows as the csv module does, with a fast path for the
unquoted RECORDs every installer writes (the no-op reads ~21,700 rows of a torch venv)."""

from __future__ import annotations

import csv

from hypothesis import given
from hypothesis import strategies as st

from envlock.io.installed import _rows


def _as_csv(record: bytes) -> list[list[str]]:
    text = record.decode("utf-8", errors="replace")
    return [row for row in csv.reader(text.splitlines()) if row and row[0]]


_CHARS = st.sampled_from(list('ab/.,= _-\\\t\x00é"\r\n\x0c\u2028') + ["\udcff"])
_LINES = st.lists(st.text(_CHARS, max_size=12), max_size=8)


@given(_LINES, st.sampled_from(["\n", "\r\n"]))
def test_any_record_reads_as_csv_reads_it(lines: list[str], end: str) -> None:
    record = end.join(lines).encode("utf-8", errors="surrogateescape")
    assert list(_rows(record)) == _as_csv(record)


def test_a_real_record_with_quoted_and_unquoted_rows() -> None:
    record = (
        b"torch/__init__.py,sha256=abc,123\n"
        b'"odd,name.py",sha256=def,4\n'
        b"torch-2.14.0.dist-info/RECORD,,\n"
        b",sha256=empty-path,1\n"
        b"\n"
    )
    assert list(_rows(record)) == _as_csv(record)
    assert list(_rows(record.replace(b'"odd,name.py"', b"plain.py"))) == [
        ["torch/__init__.py", "sha256=abc", "123"],
        ["plain.py", "sha256=def", "4"],
        ["torch-2.14.0.dist-info/RECORD", "", ""],
    ]
