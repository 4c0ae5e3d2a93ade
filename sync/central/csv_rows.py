"""Reading the city's CSV files row by row with line numbers, so every problem names its line.

Shared by the beneficiary list (sync.central.beneficiaries) and the plans and catalog files
(sync.central.programme); each checks its own columns and cells.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator, Sequence


def read_header(reader, expected: Sequence[str]) -> tuple[list[str] | None, str]:
    """The header's names (stripped), or None and what is wrong with line 1."""
    try:
        header = next(reader)
    except StopIteration:
        return None, "the file is empty; expected a header: " + ",".join(expected)
    except (csv.Error, UnicodeDecodeError) as exc:
        return None, f"unreadable header: {exc}"
    return [h.strip() for h in header], ""


def data_rows(reader, width: int) -> Iterator[tuple[int, list[str] | None, str]]:
    """(line, stripped cells, "") per data row, or (line, None, problem) for a row that cannot be
    read or has another number of fields than the header's `width`. Blank rows are skipped."""
    while True:
        try:
            raw = next(reader)
        except StopIteration:
            return
        except (csv.Error, UnicodeDecodeError) as exc:
            yield reader.line_num, None, f"unreadable row: {exc}"
            continue
        if not raw or all(not c.strip() for c in raw):
            continue
        if len(raw) != width:
            yield reader.line_num, None, f"has {len(raw)} fields, the header has {width}"
            continue
        yield reader.line_num, [c.strip() for c in raw], ""
