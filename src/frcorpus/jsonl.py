"""JSON Lines files of side data (benchmarks, instruction files, labels), read one object a line.

Records are read by `frcorpus.sources`, which rejects a bad line with its reason and goes on; side data
is read whole by the stage, task or command that needs it, and a bad line there stops it with an error
that names the file and line. This is that reader, shared so that every such file is read, and
complained about, the same way.
"""

from __future__ import annotations

import gzip
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson


def jsonl_objects(path: Path, error: type[Exception] = ValueError) -> Iterator[tuple[str, dict[str, Any]]]:
    """(`file:line`, object) for each non-blank line of a JSONL file (gzipped when its name ends in .gz);
    `error` (the caller's exception class) naming the line of one that is not a JSON object."""
    opener = gzip.open if path.name.endswith(".gz") else open
    with opener(path, "rb") as f:
        for line_no, line in enumerate(f, 1):
            if not line.strip():
                continue
            where = f"{path}:{line_no}"
            try:
                row = orjson.loads(line)
            except orjson.JSONDecodeError as e:
                raise error(f"{where}: not valid JSON ({e})") from None
            if not isinstance(row, dict):
                raise error(f"{where}: expected a JSON object, got {type(row).__name__}")
            yield where, row
