"""What the `heuristics` loop rules (`frcorpus.text.repetition.find_loop`) reject among real answers, per
source and per rule: the human answers of vigogne OASST, the MT-Bench GPT-4 references, and the M-IFEval
French answers of 17 models, weak and strong. A rule for loops should take the weak models' answers and
leave the human and frontier ones alone.

    .venv/bin/python benchmarks/loop_rules_real_data.py [--show doubled_phrase]

`--show RULE` prints what that rule rejects in the sources that are not weak models (each a false
rejection to read).
"""

from __future__ import annotations

import argparse
import glob
import json
import os
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

from frcorpus.text.repetition import find_loop

SHARED = Path(os.environ.get("FRCORPUS_SHARED_DATA", Path(__file__).resolve().parent.parent.parent / "shared" / "data"))
WEAK = ("0.5B", "1.5B", "3B-", "aya", "deepseek", "Mistral", "Llama")


def answers(path: Path) -> Iterator[str]:
    """The assistant answers of a file: M-IFEval's `response`, OASST's conversations, MT-Bench's choices."""
    with path.open(encoding="utf-8") as f:
        for line in f:
            row = json.loads(line)
            if "response" in row:
                yield row["response"] or ""
            for turn in row.get("conversation") or row.get("messages") or []:
                if turn["role"].lower() == "assistant":
                    yield turn["content"]
            for choice in row.get("choices") or []:
                yield from choice["turns"]


def sources() -> dict[str, Path]:
    found = {
        "vigogne OASST (human)": SHARED / "instruct_fr/vigogne/oasst_20230412_fr_1k.jsonl",
        "MT-Bench GPT-4 references": SHARED / "instruct_fr/mt_bench_fr_reference/gpt-4.jsonl",
    }
    for path in sorted(glob.glob(str(SHARED / "instruct_fr/mifeval_fr_responses/*.jsonl"))):
        found["M-IFEval " + Path(path).stem.removeprefix("fr_input_response_data_")] = Path(path)
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--show", help="print what this rule rejects outside the weak models")
    args = parser.parse_args()
    for name, path in sources().items():
        texts = [a for a in answers(path) if a]
        loops = [(text, find_loop(text)) for text in texts]
        counts = Counter(loop.code for _, loop in loops if loop)
        print(f"{name:60s} {len(texts):5d} answers  " + ", ".join(f"{k} {v}" for k, v in sorted(counts.items())))
        if args.show and not any(w in name for w in WEAK):
            for _, loop in loops:
                if loop and loop.code == args.show:
                    print(f"    {loop.detail}")


if __name__ == "__main__":
    main()
