"""`frcorpus recipe sft`: TRL's SFTTrainer on a dataset version, from the recipe's `sft:` SFTConfig.

The model goes to <output_dir>/sft with its tokenizer (carrying the chat template it was trained with) and
`frcorpus_sft.json`: the dataset version, the base model and revision, the options, loss and tokens/s.
A run interrupted after a checkpoint resumes from it; a finished one is not redone unless forced.
"""

from __future__ import annotations

import json
import logging
import shutil
import time
from pathlib import Path
from typing import Any

from ..resources import package_version
from .config import LoadedRecipe, build_sft_args, input_key
from .dataset import DatasetVersion, load_conversations, resolve_dataset

logger = logging.getLogger(__name__)

MARKER = "frcorpus_sft.json"

# ChatML with {% generation %} markers around each assistant answer and its <|im_end|> (so the model
# learns to stop). For ChatML models whose template TRL cannot patch (SmolLM2's, for one). Unlike
# SmolLM2's own template it adds no default system prompt.
CHATML_TRAINING = (
    "{% for message in messages %}"
    "{% if message['role'] == 'assistant' %}"
    "{{ '<|im_start|>assistant\n' }}{% generation %}{{ message['content'] + '<|im_end|>' }}{% endgeneration %}"
    "{{ '\n' }}"
    "{% else %}"
    "{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n' }}"
    "{% endif %}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)


class SFTError(ValueError):
    """A recipe that cannot be trained as configured (the message says how to fix it)."""


def sft_dir(loaded: LoadedRecipe) -> Path:
    return loaded.output_dir / "sft"


def sft_key(loaded: LoadedRecipe, dataset: dict[str, Any]) -> str:
    """What the SFT model depends on: a finished sft/ with another key was trained on something else."""
    cfg = loaded.config
    return input_key(cfg.model, cfg.revision, dataset, cfg.dataset.max_records, cfg.chat_template, loaded.sft_values)


def read_marker(folder: Path) -> dict[str, Any] | None:
    path = folder / MARKER
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None


def training_template(tokenizer, choice: str, assistant_only_loss: bool) -> tuple[str | None, str]:
    """(the chat template to train with, or None to keep the model's; what it is, for the record)."""
    from trl.chat_template_utils import get_training_chat_template, has_generation_markers

    if choice not in ("auto", "chatml"):
        template = Path(choice).read_text(encoding="utf-8")
        if assistant_only_loss and not has_generation_markers(template):
            raise SFTError(
                f"chat_template: {choice} has no {{% generation %}} markers, which assistant_only_loss needs; "
                "wrap each assistant answer in {% generation %}...{% endgeneration %}"
            )
        return template, f"file {choice}"
    if choice == "chatml":
        _require_chatml(tokenizer, "chat_template: chatml")
        return CHATML_TRAINING, "frcorpus ChatML training template"
    if not assistant_only_loss:
        return None, "the model's own"
    if tokenizer.chat_template and has_generation_markers(tokenizer.chat_template):
        return None, "the model's own (has generation markers)"
    if tokenizer.chat_template:
        try:
            return get_training_chat_template(tokenizer), "TRL's training template for this model"
        except ValueError:
            pass  # a template TRL does not know: ChatML models still have one below
    _require_chatml(
        tokenizer,
        "assistant_only_loss: the model's chat template has no {% generation %} markers and TRL has no training "
        "version of it",
    )
    logger.info("training with frcorpus's ChatML template (generation markers around the assistant turns)")
    return CHATML_TRAINING, "frcorpus ChatML training template"


def _require_chatml(tokenizer, what: str) -> None:
    vocab = tokenizer.get_vocab()
    if "<|im_start|>" not in vocab or "<|im_end|>" not in vocab:
        raise SFTError(
            f"{what}, and the tokenizer has no <|im_start|>/<|im_end|> tokens for frcorpus's ChatML one; set "
            "chat_template: to a .jinja file with {% generation %} markers, or assistant_only_loss: false"
        )


def sft_tokenizer(base_folder: Path, chat_template: str, assistant_only_loss: bool):
    """(the base model's tokenizer carrying the chat template the SFT trains with, what that template is)."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(base_folder)
    template, template_source = training_template(tokenizer, chat_template, assistant_only_loss)
    if template is not None:
        tokenizer.chat_template = template
    return tokenizer, template_source


def run_sft(loaded: LoadedRecipe, force: bool = False, dataset: DatasetVersion | None = None) -> dict[str, Any]:
    """Train, save, and return what frcorpus_sft.json records. `dataset`: train on these files (a selection
    made by frcorpus, its `selection` recorded) instead of the recipe's dataset version."""
    from trl import SFTTrainer

    from ..llm.models import local_model

    cfg = loaded.config
    out = sft_dir(loaded)
    dataset = dataset or resolve_dataset(cfg.dataset)
    key = sft_key(loaded, dataset.describe())
    done = read_marker(out)
    if done is not None and not force:
        if done.get("key") != key:
            raise SFTError(
                f"{out} holds a model trained with another configuration or dataset (key {done.get('key')}, "
                f"now {key}); use --force to train again, or another output_dir"
            )
        logger.info("sft: %s is already trained on %s %s; skipping", out, dataset.name, dataset.version)
        return done
    if force and out.exists():
        shutil.rmtree(out)
    checkpoints = _checkpoints(out)
    base_folder, base_revision = local_model(cfg.model, cfg.revision)
    train, counts = load_conversations(dataset, cfg.dataset.max_records)
    args = build_sft_args(loaded.sft_values, out)
    tokenizer, template_source = sft_tokenizer(base_folder, cfg.chat_template, args.assistant_only_loss)
    logger.info(
        "sft: %s on %s %s (%d conversations), chat template: %s",
        cfg.model,
        dataset.name,
        dataset.version,
        len(train),
        template_source,
    )
    trainer = SFTTrainer(model=str(base_folder), args=args, train_dataset=train, processing_class=tokenizer)
    resume = bool(checkpoints)
    if resume:
        logger.info("sft: resuming from %s", checkpoints[-1])
    started = time.perf_counter()
    result = trainer.train(resume_from_checkpoint=str(checkpoints[-1]) if resume else None)
    seconds = time.perf_counter() - started
    trainer.save_model(str(out))  # the model and its tokenizer, with the template it was trained with
    record = {
        "key": key,
        "recipe": cfg.name,
        "base_model": cfg.model,
        "base_revision": base_revision,
        "dataset": dataset.describe(),
        "counts": counts,
        "chat_template": template_source,
        "sft": {k: _plain(v) for k, v in loaded.sft_values.items()},
        "train": _train_summary(trainer.state.log_history, result.metrics, seconds),
        "resumed_from": checkpoints[-1].name if resume else None,
        "versions": {d: package_version(d) for d in ("frcorpus", "trl", "transformers", "torch")},
    }
    (out / MARKER).write_text(json.dumps(record, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return record


def _checkpoints(folder: Path) -> list[Path]:
    """The Trainer's checkpoint-<step> folders, oldest first."""
    found = [p for p in folder.glob("checkpoint-*") if p.is_dir() and p.name[len("checkpoint-") :].isdigit()]
    return sorted(found, key=lambda p: int(p.name[len("checkpoint-") :]))


def _train_summary(history: list[dict[str, Any]], metrics: dict[str, Any], seconds: float) -> dict[str, Any]:
    losses = [h["loss"] for h in history if "loss" in h]
    tokens = max((h.get("num_tokens", 0) for h in history), default=0)
    runtime = metrics.get("train_runtime") or seconds
    return {
        "steps": max((h.get("step", 0) for h in history), default=0),
        "epochs": metrics.get("epoch") or max((h.get("epoch", 0) for h in history), default=0),
        "seconds": round(seconds, 1),
        "tokens": int(tokens),
        "tokens_per_s": round(tokens / runtime, 1) if runtime else None,
        "loss_first": losses[0] if losses else None,
        "loss_last": losses[-1] if losses else None,
        "train_loss": metrics.get("train_loss"),
        "losses": losses,
    }


def _plain(value: Any) -> Any:
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return str(getattr(value, "value", value))
