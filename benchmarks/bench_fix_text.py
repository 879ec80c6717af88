"""`fix_text` against ftfy on real French turns: speed, and that the quick test which decides when ftfy
runs misses no mojibake.

On the turns of ../shared/data (vigogne's OASST, seed and Doremiti files, and the M-IFEval answers of
six models: French, 1 KB on average), in one process:
  speed     the stage's `fix` per turn, the stage as it was (any of the letters Ã Â â Å ï Ð Ñ, or a C1
            control, sent a turn to ftfy; its whitespace patterns ran on every turn), and `ftfy.fix_text`
            with its defaults;
            the best of --repeats runs each, interleaved; ratios against ftfy.fix_text and against the
            former stage (goal: 3x faster than the former stage). Both stages' outputs must be equal.
  recall    every turn with a non-ASCII character made into mojibake as a reader gets it (its UTF-8
            read as cp1252, or as latin-1 where cp1252 has no character), once and twice over: the
            share the quick test sends to ftfy (goal 1.0), and the share the stage gives back exactly.

    python benchmarks/bench_fix_text.py [--repeats 5]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import time
from pathlib import Path

FORMER_HINT = re.compile("[\x80-\x9f\u00c3\u00c2\u00e2\u00c5\u00ef\u00d0\u00d1]")


def load_turns(data: Path) -> list[str]:
    turns = []
    for path in sorted((data / "instruct_fr" / "vigogne").glob("*.jsonl")):
        for line in path.read_text(encoding="utf-8").splitlines():
            row = json.loads(line)
            for m in row.get("messages") or row.get("conversations") or []:
                text = m.get("content") or m.get("value")
                if isinstance(text, str) and text:
                    turns.append(text)
            turns += [row[k] for k in ("instruction", "input", "output") if isinstance(row.get(k), str) and row[k]]
    for path in sorted((data / "instruct_fr" / "mifeval_fr_responses").glob("*.jsonl"))[:6]:
        for line in path.read_text(encoding="utf-8").splitlines():
            turns += [v for v in json.loads(line).values() if isinstance(v, str) and len(v) > 20]
    return turns


def former_whitespace(text: str) -> str:
    from frcorpus.stages.fix_text import BLANK_LINES, SPACE_RUN, TRAILING_SPACE

    return BLANK_LINES.sub("\n\n", SPACE_RUN.sub(" ", TRAILING_SPACE.sub("", text)))


def mojibake(text: str) -> str:
    """UTF-8 bytes read as cp1252, byte by byte where cp1252 has no character (then as latin-1)."""
    out = []
    for byte in text.encode("utf-8"):
        try:
            out.append(bytes([byte]).decode("cp1252"))
        except UnicodeDecodeError:
            out.append(bytes([byte]).decode("latin-1"))
    return "".join(out)


def main() -> None:
    default = Path(os.environ.get("FRCORPUS_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=default)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()

    import ftfy

    import frcorpus.stages.fix_text as module
    from frcorpus.stages.fix_text import FixText

    turns = load_turns(args.data)
    print(f"{len(turns):,} turns, {sum(map(len, turns)) / len(turns):,.0f} characters on average")
    stage = FixText(FixText.Config(type="fix_text"), "fix_text")
    stage.setup()
    former = FixText(FixText.Config(type="fix_text"), "former")
    hint = module.MOJIBAKE_HINT
    module.MOJIBAKE_HINT = FORMER_HINT  # the steps read the module's test when they run: swapped per call
    former.setup()
    module.MOJIBAKE_HINT = hint
    # and its whitespace step, the three patterns run on every turn
    former.steps = [(name, former_whitespace if name == "whitespace" else step) for name, step in former.steps]

    def run_former() -> list[str]:
        module.MOJIBAKE_HINT = FORMER_HINT
        try:
            return [former.fix(t)[0] for t in turns]
        finally:
            module.MOJIBAKE_HINT = hint

    methods = {
        "fix_text stage": lambda: [stage.fix(t)[0] for t in turns],
        "former stage": run_former,
        "ftfy.fix_text": lambda: [ftfy.fix_text(t) for t in turns],
    }
    best = dict.fromkeys(methods, float("inf"))
    outputs = {}
    for repeat in range(args.repeats):
        for name in methods if repeat % 2 == 0 else reversed(list(methods)):
            start = time.perf_counter()
            outputs[name] = methods[name]()
            best[name] = min(best[name], time.perf_counter() - start)
    print(f"sent to ftfy: {sum(bool(hint.search(t)) for t in turns):,} turns (former test: "
          f"{sum(bool(FORMER_HINT.search(t)) for t in turns):,})")  # fmt: skip
    same = sum(a == b for a, b in zip(outputs["fix_text stage"], outputs["former stage"], strict=True))
    print(f"outputs equal to the former stage's: {same:,} of {len(turns):,}")
    for name, seconds in best.items():
        print(f"{name:>15}: {seconds:.3f} s ({len(turns) / seconds:,.0f} turns/s)")
    print(f"ratio ftfy.fix_text / fix_text stage: {best['ftfy.fix_text'] / best['fix_text stage']:.1f}")
    print(f"ratio former stage / fix_text stage: {best['former stage'] / best['fix_text stage']:.1f} (goal >= 3)")

    accented = [t for t in turns if not t.isascii()]
    for label, broken in (
        ("once", [mojibake(t) for t in accented]),
        ("twice", [mojibake(mojibake(t)) for t in accented]),
    ):
        found = sum(bool(hint.search(b)) for b in broken)
        # the stage's other steps (whitespace, Unicode form) may change the original too: compare with them
        restored = sum(stage.fix(b)[0] == stage.fix(t)[0] for b, t in zip(broken, accented, strict=True))
        print(
            f"mojibake {label}: {len(broken):,} turns, sent to ftfy {found / len(broken):.4f} (goal 1), "
            f"restored exactly {restored / len(broken):.4f}"
        )


if __name__ == "__main__":
    main()
