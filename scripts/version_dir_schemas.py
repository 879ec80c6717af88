"""Write the JSON Schemas of stats.json and manifest.json into docs/version-dir.md, from the pydantic
models that read and write them (`Stats` and `Manifest` in frcorpus.version.layout): each schema goes
between its BEGIN and END markers in the page, the rest of the page is left as it is.

    .venv/bin/python scripts/version_dir_schemas.py           # rewrite the schemas in the page
    .venv/bin/python scripts/version_dir_schemas.py --check   # exit 1 when the page is stale

tests/test_docs.py runs the check.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from frcorpus.version.layout import Manifest, Stats

PAGE = Path(__file__).resolve().parents[1] / "docs" / "version-dir.md"
COMMAND = "python scripts/version_dir_schemas.py"
MODELS = {"stats.json": Stats, "manifest.json": Manifest}


def with_schemas(page: str) -> str:
    """The page with each file's schema block replaced by its model's current JSON Schema."""
    for name, model in MODELS.items():
        begin, end = f"<!-- BEGIN {name} schema -->", f"<!-- END {name} schema -->"
        if page.count(begin) != 1 or page.count(end) != 1:
            raise SystemExit(f"{PAGE}: needs one {begin!r} and one {end!r}")
        schema = json.dumps(model.model_json_schema(by_alias=True), indent=2, ensure_ascii=False)
        block = f"{begin}\n\n```json\n{schema}\n```\n\n{end}"
        start, stop = page.index(begin), page.index(end) + len(end)
        page = page[:start] + block + page[stop:]
    return page


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.partition("\n")[0])
    parser.add_argument("--check", action="store_true", help="exit 1 when the page is stale, write nothing")
    args = parser.parse_args(argv)
    page = PAGE.read_text(encoding="utf-8")
    current = with_schemas(page)
    if args.check:
        if current != page:
            print(f"{PAGE.name}'s JSON Schemas are stale: regenerate them with `{COMMAND}` and commit the page")
            return 1
        return 0
    if current != page:
        PAGE.write_text(current, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
