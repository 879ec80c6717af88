from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml

from frcorpus.recipe.config import DatasetRef, load_recipe
from frcorpus.recipe.dataset import DatasetError, load_conversations, resolve_dataset
from frcorpus.recipe.sft import CHATML_TRAINING, SFTError, run_sft, training_template

from ..conftest import chat, run_pipeline, write_jsonl, write_pipeline

QUESTIONS = [
    ("Quelle est la capitale de la France ?", "La capitale de la France est Paris, sur la Seine."),
    ("Combien font deux et trois ?", "Deux et trois font cinq : 2 + 3 = 5."),
    ("Donne un synonyme de « rapide ».", "Un synonyme de « rapide » est « véloce »."),
    ("Comment dit-on merci en anglais ?", "On dit « thank you » en anglais."),
    ("Quel temps fait-il en hiver à Lyon ?", "L'hiver à Lyon est frais, souvent gris, avec quelques jours de gel."),
    ("Cite un fruit rouge.", "La fraise est un fruit rouge, comme la framboise et la cerise."),
]
SFT = {
    "use_cpu": True,
    "bf16": False,
    "max_steps": 12,
    "learning_rate": 0.003,
    "per_device_train_batch_size": 4,
    "assistant_only_loss": True,
    "max_length": 256,
    "logging_steps": 3,
    "save_strategy": "no",
    "seed": 0,
}


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    """A real version directory (frcorpus run) with 24 French conversations."""
    tmp_path = tmp_path_factory.mktemp("corpus")
    rows = [chat(q + f" ({i})", a, id=f"r{i}-{j}") for i in range(4) for j, (q, a) in enumerate(QUESTIONS)]
    src = write_jsonl(tmp_path / "chats.jsonl", rows)
    result = run_pipeline(write_pipeline(tmp_path, [{"name": "chats", "path": str(src), "language": "fr"}]))
    return Path(result.version_dir)


def recipe(tmp_path: Path, model: Path, corpus: Path, **sft) -> Path:
    data = {
        "name": "tiny",
        "model": str(model),
        "dataset": str(corpus),
        "output_dir": str(tmp_path / "run"),
        "sft": {**SFT, **sft},
    }
    path = tmp_path / "recipe.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


def test_dataset_reference_reads_the_manifest(corpus):
    version = resolve_dataset(DatasetRef(path=str(corpus)))
    manifest = json.loads((corpus / "manifest.json").read_text())
    assert (version.name, version.version, version.fingerprint) == ("test", corpus.name, manifest["fingerprint"])
    assert version.split == "all"
    # the dataset folder stands for its newest version
    assert resolve_dataset(DatasetRef(path=str(corpus.parent))).folder == corpus
    dataset, counts = load_conversations(version)
    assert counts == {"records": 24, "trained": 24, "skipped_no_assistant": 0}
    assert dataset.column_names == ["messages"]
    assert dataset[0]["messages"][1] == {"role": "assistant", "content": QUESTIONS[0][1]}


def test_records_without_an_answer_are_counted_not_trained(tmp_path, corpus):
    import pyarrow as pa
    import pyarrow.parquet as pq

    copy = tmp_path / "v"
    shutil.copytree(corpus, copy)
    turns = [[{"role": "user", "content": "Une question ?"}, {"role": "assistant", "content": ""}]]
    pq.write_table(pa.table({"id": ["empty"], "messages": turns}), copy / "data" / "99999.parquet")
    dataset, counts = load_conversations(resolve_dataset(DatasetRef(path=str(copy))))
    assert counts == {"records": 25, "trained": 24, "skipped_no_assistant": 1}
    assert len(dataset) == 24


def test_train_split_is_preferred_and_required_when_asked(tmp_path, corpus):
    copy = tmp_path / "v"
    shutil.copytree(corpus, copy)
    with pytest.raises(DatasetError) as err:
        resolve_dataset(DatasetRef(path=str(copy), split="train"))
    assert str(err.value) == (
        f"{copy}: dataset.split is train but the version has no data/train-*.parquet (no split stage); "
        "use split: all, or add a split stage to the pipeline"
    )
    first = sorted((copy / "data").glob("*.parquet"))[0]
    first.rename(copy / "data" / "train-00000.parquet")
    version = resolve_dataset(DatasetRef(path=str(copy)))
    assert (version.split, [p.name for p in version.files]) == ("train", ["train-00000.parquet"])


def test_not_a_version_directory(tmp_path):
    with pytest.raises(DatasetError) as err:
        resolve_dataset(DatasetRef(path=str(tmp_path / "missing")))
    assert (
        str(err.value)
        == f"dataset: {tmp_path / 'missing'}: no such folder; give a version directory <out>/<name>/<version>"
    )


def test_sft_lowers_the_loss_and_records_the_dataset_version(tmp_path, tiny_model, corpus):
    loaded = load_recipe(recipe(tmp_path, tiny_model, corpus))
    record = run_sft(loaded)
    out = tmp_path / "run" / "sft"
    train = record["train"]
    assert train["steps"] == 12 and len(train["losses"]) == 4
    assert train["loss_last"] < train["loss_first"] - 0.3, train["losses"]
    assert train["tokens"] > 0 and train["tokens_per_s"] > 0
    assert record["dataset"]["version"] == corpus.name and record["dataset"]["fingerprint"]
    assert record["counts"] == {"records": 24, "trained": 24, "skipped_no_assistant": 0}
    assert record["chat_template"] == "frcorpus ChatML training template"
    assert json.loads((out / "frcorpus_sft.json").read_text()) == record
    # the saved tokenizer carries the template it was trained with
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(out)
    assert tok.chat_template == CHATML_TRAINING
    assert AutoModelForCausalLM.from_pretrained(out).num_parameters() > 0

    # a second run finds the model trained with the same inputs and does not train again
    stamp = (out / "model.safetensors").stat().st_mtime_ns
    assert run_sft(loaded) == record
    assert (out / "model.safetensors").stat().st_mtime_ns == stamp

    # other options on the same output folder: refused unless forced
    changed = load_recipe(recipe(tmp_path, tiny_model, corpus, learning_rate=0.001))
    with pytest.raises(SFTError) as err:
        run_sft(changed)
    assert str(err.value).startswith(f"{out} holds a model trained with another configuration or dataset (key ")
    assert str(err.value).endswith("); use --force to train again, or another output_dir")
    assert run_sft(changed, force=True)["sft"]["learning_rate"] == 0.001


def test_interrupted_sft_resumes_from_its_checkpoint(tmp_path, tiny_model, corpus):
    loaded = load_recipe(recipe(tmp_path, tiny_model, corpus, max_steps=6, save_strategy="steps", save_steps=3))
    run_sft(loaded)
    out = tmp_path / "run" / "sft"
    # as if the run had died after its first checkpoint
    (out / "frcorpus_sft.json").unlink()
    shutil.rmtree(out / "checkpoint-6")
    record = run_sft(loaded)
    assert record["resumed_from"] == "checkpoint-3"
    assert record["train"]["steps"] == 6


def word_tokenizer(template: str):
    """A tokenizer without ChatML tokens."""
    from tokenizers import Tokenizer, models
    from transformers import PreTrainedTokenizerFast

    tok = PreTrainedTokenizerFast(tokenizer_object=Tokenizer(models.WordLevel({"<s>": 0, "a": 1}, unk_token="<s>")))
    tok.chat_template = template
    return tok


def test_training_template_choice(tmp_path, tiny_model):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_model)
    # plain ChatML, unknown to TRL: frcorpus's ChatML training template
    assert training_template(tok, "auto", True) == (CHATML_TRAINING, "frcorpus ChatML training template")
    assert training_template(tok, "auto", False) == (None, "the model's own")
    # a template TRL knows (Qwen3's, shipped inside TRL): TRL's training version of it
    import trl

    tok.chat_template = (Path(trl.__file__).parent / "chat_templates" / "qwen3.jinja").read_text()
    template, source = training_template(tok, "auto", True)
    assert source == "TRL's training template for this model" and "{% generation %}" in template
    # no markers, not ChatML: no guess
    with pytest.raises(SFTError) as err:
        training_template(word_tokenizer("{{ messages }}"), "auto", True)
    assert str(err.value) == (
        "assistant_only_loss: the model's chat template has no {% generation %} markers and TRL has no training "
        "version of it, and the tokenizer has no <|im_start|>/<|im_end|> tokens for frcorpus's ChatML one; set "
        "chat_template: to a .jinja file with {% generation %} markers, or assistant_only_loss: false"
    )
    plain = tmp_path / "plain.jinja"
    plain.write_text("{% for m in messages %}{{ m['content'] }}{% endfor %}")
    with pytest.raises(SFTError) as err:
        training_template(tok, str(plain), True)
    assert str(err.value) == (
        f"chat_template: {plain} has no {{% generation %}} markers, which assistant_only_loss needs; wrap each "
        "assistant answer in {% generation %}...{% endgeneration %}"
    )
