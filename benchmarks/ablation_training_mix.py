"""What each arm of a `recipe compare` run on the CPU ablation's data trained on: which M-IFEval model
wrote each answer, and whether it follows its prompt's instructions (frcorpus's ifeval_fr checkers),
plus vigogne's share. Answers changed by normalize/fix_text are not found again in the model files
("?"). The figures of docs/recipe.md's CPU ablation come from:

    .venv/bin/python benchmarks/ablation_training_mix.py out/recipes/cpu-ablation raw curated
"""

import collections
import glob
import json
import os
import sys
from pathlib import Path

import pyarrow.parquet as pq

from frcorpus.recipe.ifeval import load_ifeval_items, score_response

root = Path(os.environ.get("FRCORPUS_SHARED_DATA", "../shared/data"))
compare_dir = sys.argv[1]
WEAK = ("0.5B", "1.5B", "3B", "deepseek", "aya", "Mistral")  # the models M-IFEval scores below 0.6 (strict)
items = {i.prompt.strip(): i for i in load_ifeval_items(root, "fr")}
writer = {}
for f in glob.glob(str(root / "instruct_fr/mifeval_fr_responses/*.jsonl")):
    model = Path(f).stem.replace("fr_input_response_data_", "")
    for line in open(f, encoding="utf-8"):
        row = json.loads(line)
        writer[(row["prompt"].strip(), (row["response"] or "").strip())] = model
for arm in sys.argv[2:]:
    rows = pq.read_table(glob.glob(f"{compare_dir}/arms/{arm}/train/data/*.parquet")[0]).to_pylist()
    models, passed, n_m, vig = collections.Counter(), 0, 0, 0
    for r in rows:
        msgs = r["messages"]
        user = next(m["content"] for m in msgs if m["role"] == "user").strip()
        answer = next(m["content"] for m in msgs if m["role"] == "assistant").strip()
        if r["id"].startswith("vigogne"):
            vig += 1
            continue
        n_m += 1
        models[writer.get((user, answer), "?")] += 1
        item = items.get(user)
        if item is not None and all(score_response(item, answer).strict):
            passed += 1
    weak = sum(
        c for m, c in models.items() if any(k in m for k in ("0.5B", "1.5B", "deepseek", "aya", "3B", "Mistral"))
    )
    print(
        f"{arm}: {len(rows)} records, vigogne {vig}, M-IFEval answers {n_m}: strict pass {passed}/{n_m} "
        f"= {passed / max(n_m, 1):.2f}; from weak models (0.5B-3B Qwen, deepseek-7b, aya-8b, Mistral-7b) {weak}"
    )
    print("   ", ", ".join(f"{m.split('__')[-1][:22]} {c}" for m, c in models.most_common()))
