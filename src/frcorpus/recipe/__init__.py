"""The Luth recipe (`frcorpus recipe`): fine-tune a model on a dataset version with TRL, merge it with its
base with MergeKit, evaluate base, SFT and merged models on French benchmarks with lm-evaluation-harness.

One recipe YAML (`pipelines/recipes/*.yaml`) holds the dataset reference, the base model, and each
tool's own configuration verbatim: `sft:` is a TRL `SFTConfig`, `merge:` a MergeKit YAML, `eval:` the
benchmarks. `config.py` checks all of it before any work; `sft.py`, `merge.py` and `evaluate.py` run
one step each; `luth.py` runs the three in order and resumes between them.
"""
