"""`frcorpus diff` on a generated pair of versions.

Writes two version directories of N records each (default 200,000; user and assistant turns of 5-40 and
20-120 random words, ~360 bytes per record in Parquet): B drops 1% of A's records (half of them into
B's rejects/ with a reason), changes one turn of another 1% and adds 1% new records. Then times
`diff_versions(A, B)` (best of --repeats) and checks its counts against what was planted.

    python benchmarks/bench_diff.py [--records 200000] [--repeats 3] [--dir /tmp/bench_diff]
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from frcorpus.record import data_schema, rejects_schema
from frcorpus.version.diff import diff_versions

WORDS = [f"mot{i}" for i in range(5000)]


def conversation(rng: random.Random) -> list[dict[str, str]]:
    def text(k: int) -> str:
        return " ".join(rng.choices(WORDS, k=k))

    return [
        {"role": "user", "content": text(rng.randint(5, 40))},
        {"role": "assistant", "content": text(rng.randint(20, 120))},
    ]


def source(i: int) -> dict:
    return {"name": "s", "uri": "u", "revision": None, "license": None, "language": None, "location": f"f:{i}"}


def write_version(folder: Path, kept: list[tuple[str, list]], rejected: list[tuple[str, list, str]], read: int):
    (folder / "data").mkdir(parents=True)
    (folder / "rejects").mkdir()
    ids = [i for i, _ in kept]
    table = pa.table(
        {"id": ids, "messages": [m for _, m in kept], "source": [source(n) for n in range(len(kept))]},
        schema=data_schema([]),
    )
    pq.write_table(table, folder / "data" / "00000.parquet", row_group_size=10_000)
    rej = pa.table(
        {
            "id": [i for i, _, _ in rejected],
            "messages": [m for _, m, _ in rejected],
            "source": [source(n) for n in range(len(rejected))],
            "stage": ["length"] * len(rejected),
            "reason": [r for _, _, r in rejected],
            "detail": [""] * len(rejected),
            "raw": [None] * len(rejected),
        },
        schema=rejects_schema([]),
    )
    pq.write_table(rej, folder / "rejects" / "p0-00000.parquet")
    counts = {"in": read, "kept": len(kept), "rejected": {"length.too_long": len(rejected)} if rejected else {}}
    stats = {
        "sources": {"s": {"read": read, "kept": len(kept), "rejected": len(rejected), "formats": {}}},
        "stages": {"read": {"in": read, "kept": read, "rejected": {}, "seconds": 0}, "length": counts},
        "totals": {"read": read, "kept": len(kept), "rejected": len(rejected)},
    }
    (folder / "stats.json").write_text(json.dumps(stats))
    (folder / "manifest.json").write_text(json.dumps({"name": "bench", "version": folder.name}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=200_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--dir", type=Path, default=Path("/tmp/bench_diff"))
    args = parser.parse_args()
    rng = random.Random(0)
    n = args.records
    started = time.perf_counter()
    a = [(f"s:{i}", conversation(rng)) for i in range(n)]
    one = n // 100
    dropped, changed = set(range(0, n, 100)), set(range(1, n, 100))
    b, b_rejects = [], []
    for i, (rid, messages) in enumerate(a):
        if i in dropped:
            if i % 200 == 0:
                b_rejects.append((rid, messages, "length.too_long"))
            continue
        if i in changed:
            messages = [messages[0], {"role": "assistant", "content": messages[1]["content"] + " modifié"}]
        b.append((rid, messages))
    b += [(f"s:new{i}", conversation(rng)) for i in range(one)]
    shutil.rmtree(args.dir, ignore_errors=True)
    write_version(args.dir / "A", a, [], n)
    write_version(args.dir / "B", b, b_rejects, n - one + len(b_rejects) + one)
    size = sum(p.stat().st_size for p in args.dir.rglob("*.parquet")) / 1e6
    print(f"generated {n:,} + {len(b):,} records ({size:.0f} MB of Parquet) in {time.perf_counter() - started:.1f} s")
    times = []
    for _ in range(args.repeats):
        t = time.perf_counter()
        result = diff_versions(args.dir / "A", args.dir / "B")
        times.append(time.perf_counter() - t)
    rec = result["records"]
    expected = {"added": one, "removed": len(dropped), "changed": len(changed)}
    got = {k: rec[k]["count"] for k in expected}
    assert got == expected, (got, expected)
    assert rec["kept_to_rejected"]["count"] == len(b_rejects)
    print(f"diff: best {min(times):.2f} s, all {', '.join(f'{t:.2f}' for t in times)} s; counts {got} as planted")


if __name__ == "__main__":
    main()
