"""What each dedup view does with real conversation trees: the vigogne OASST files.

`oasst_20230412_fr_1k.jsonl` holds 1,183 branches of 263 root prompts (an OASST tree cut into
conversations: shared prefixes, near-identical branches); `oasst_20230412_fr_top1.jsonl` holds 256
of the same conversations in another format. Runs `exact_dedup` and `minhash_dedup` with each view
over the 1k file alone, then over both files, and prints how many records each keeps.

    python benchmarks/report_dedup_real_data.py [--data ../shared/data]
"""

from __future__ import annotations

import argparse
import logging
import os
import tempfile
from pathlib import Path

import yaml

CONFIGS = [
    {"type": "exact_dedup", "view": "prompt"},
    {"type": "exact_dedup", "view": "prompt", "ignore": ["whitespace", "case", "punctuation"]},
    {"type": "exact_dedup", "view": "response"},
    {"type": "exact_dedup", "view": "conversation"},
    {"type": "minhash_dedup", "view": "prompt"},
    {"type": "minhash_dedup", "view": "response"},
    {"type": "minhash_dedup", "view": "conversation"},
]


def run(stage: dict, files: list[Path], out: Path) -> dict:
    from frcorpus.config import load_pipeline
    from frcorpus.engine.plan import build_plan
    from frcorpus.engine.run import run_plan

    cfg = {
        "name": "oasst",
        "version": "1.0.0",
        "sources": [{"name": f.stem, "path": str(f)} for f in files],
        "stages": [stage],
        "executor": {"type": "local", "tasks": 1, "workers": 1},
        "output": {"dir": str(out)},
    }
    out.mkdir(parents=True)
    (out / "pipeline.yaml").write_text(yaml.safe_dump(cfg))
    return run_plan(build_plan(load_pipeline(out / "pipeline.yaml"))).stats


def describe(stage: dict) -> str:
    extra = f" ignore={'+'.join(stage['ignore'])}" if "ignore" in stage else ""
    return f"{stage['type']} view={stage['view']}{extra}"


def main() -> None:
    default = Path(os.environ.get("FRCORPUS_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=default)
    args = parser.parse_args()
    logging.disable(logging.WARNING)
    folder = args.data / "instruct_fr" / "vigogne"
    one_k, top1 = folder / "oasst_20230412_fr_1k.jsonl", folder / "oasst_20230412_fr_top1.jsonl"
    with tempfile.TemporaryDirectory() as tmp:
        for label, files in (("1k file (1,183 branches)", [one_k]), ("1k + top1 files (1,439)", [one_k, top1])):
            print(label)
            for k, stage in enumerate(CONFIGS):
                stats = run(stage, files, Path(tmp) / f"{len(files)}-{k}")
                s = stats["stages"][stage["type"]]
                counters = s.get("counters", {})
                clusters = (
                    f"  clusters {counters['clusters']}, largest {counters['largest_cluster']}"
                    if "clusters" in counters
                    else ""
                )
                print(f"  {describe(stage):55s} kept {s['kept']:5d} of {s['in']:5d}{clusters}")


if __name__ == "__main__":
    main()
