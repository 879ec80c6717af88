from __future__ import annotations

import re

import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from frcorpus.llm.base import Generation
from frcorpus.stages.translate.stage import Translate
from tests.conftest import chat, run_pipeline, write_jsonl, write_pipeline
from tests.stages.scripted_llm import use_scripted

LLM = {"backend": "transformers", "model": "scripted"}
ASKED = re.compile(r"ce message \((\w+)\) :\n\n(.*)\Z", re.S)

CODE_Q = "How do I print a list in Python? Use `print(items)` as shown below."
CODE_A = "You can write:\n\n```python\nitems = [1, 2, 3]\nprint(items)\n```\n\nThis prints the whole list at once."
FRENCH = {
    "How do I print a list in Python? Use ⟦1⟧ as shown below.": (
        "Comment afficher une liste en Python ? Utilisez ⟦1⟧ comme montré ci-dessous."
    ),
    "You can write:\n\n⟦1⟧\n\nThis prints the whole list at once.": (
        "Vous pouvez écrire :\n\n⟦1⟧\n\nCela affiche toute la liste en une seule fois."
    ),
}


def asked(request) -> tuple[str, str]:
    role, text = ASKED.search(request.messages[-1][1]).groups()
    return role, text


def make(**options) -> Translate:
    cfg = Translate.Config(type="translate", llm=LLM, **{"cache": False, **options})
    stage = Translate(cfg, "translate")
    stage.setup()
    return stage


def en_record(q: str = CODE_Q, a: str = CODE_A, rid: str = "r0") -> dict:
    return {"id": rid, "_reject": None, "source": {"name": "s", "language": "en"}, **chat(q, a)}


def test_a_good_translation_is_kept_with_segments_restored_lineage_and_original(monkeypatch):
    made = use_scripted(monkeypatch, lambda req: FRENCH[asked(req)[1]])
    stage = make()
    records = [en_record()]
    stage.run_batch(records)
    r = records[0]
    assert r["_reject"] is None
    assert r["id"] == "r0-fr"
    assert r["messages"][0]["content"] == (
        "Comment afficher une liste en Python ? Utilisez `print(items)` comme montré ci-dessous."
    )
    assert "```python\nitems = [1, 2, 3]\nprint(items)\n```" in r["messages"][1]["content"]
    assert r["original_messages"][0]["content"] == CODE_Q
    assert r["lineage"] == {
        "source_id": "r0",
        "source_lang": "en",
        "target_lang": "fr",
        "model": "scripted",
        "model_revision": None,
        "prompt_hash": stage.prompt.hash,
        "mode": "translate",
    }
    # both turns went in one call, the answer with the question as context
    assert len(made[-1].calls) == 1 and len(made[-1].calls[0]) == 2
    assert "[user] " + CODE_Q in made[-1].calls[0][1].messages[-1][1]


@pytest.mark.parametrize(
    ("answer", "reason", "detail", "gates"),
    [
        (lambda t: t, "translate.not_french", "turn 0 (user): lang=en", {}),
        (lambda t: FRENCH[t].replace("⟦1⟧", ""), "translate.segments_changed", "turn 0 (user): segment 1", {}),
        (lambda t: "Voici la traduction : " + FRENCH[t], "translate.preamble", "turn 0 (user): ", {}),
        (
            lambda t: FRENCH[t] + " Et puis une longue phrase ajoutée par le modèle, que personne ne lui a demandée.",
            "translate.length_ratio",
            "turn 0 (user): ratio=",
            {},
        ),
        (
            lambda t: FRENCH[t] + " This sentence was left in English by the model.",
            "translate.english_left",
            "turn 0 (user): ",
            {"length_ratio": [0.5, 5.0]},
        ),
    ],
)
def test_each_gate_rejects_with_its_reason_after_the_retries(monkeypatch, answer, reason, detail, gates):
    made = use_scripted(monkeypatch, lambda req: answer(asked(req)[1]))
    stage = make(max_retries=1, gates=gates)
    records = [en_record()]
    stage.run_batch(records)
    rej = records[0]["_reject"]
    assert rej["reason"] == reason
    assert rej["detail"].startswith(detail)
    assert f"after 2 attempts; output: {answer(asked(made[-1].requests[-2])[1])[:20]!r}"[:-1] in rej["detail"]
    assert records[0]["messages"][0]["content"] == CODE_Q  # the reject keeps the English
    assert [r.attempt for r in made[-1].requests] == [0, 0, 1, 1]
    assert stage.stats.counters["retries"] == 2


def test_a_retry_that_passes_keeps_the_record(monkeypatch):
    def answer(req):
        text = asked(req)[1]
        return FRENCH[text] if req.attempt else text  # English first, French on the retry

    use_scripted(monkeypatch, answer)
    stage = make(max_retries=2)
    records = [en_record()]
    stage.run_batch(records)
    assert records[0]["_reject"] is None
    assert stage.stats.counters["gate.not_french"] == 2
    assert stage.stats.counters["retries"] == 2


def test_truncated_and_backend_errors_are_reasons_and_errors_are_not_retried(monkeypatch):
    def answer(req):
        text = asked(req)[1]
        if text.startswith("How"):
            return Generation(FRENCH[text][:30], "length", 10, 512)
        return Generation("", "error", error="timeout after 4 attempts")

    made = use_scripted(monkeypatch, answer)
    stage = make(max_retries=1)
    records = [en_record()]
    stage.run_batch(records)
    assert records[0]["_reject"]["reason"] == "translate.truncated"
    assert records[0]["_reject"]["detail"] == (
        "turn 0 (user): stopped at max_tokens=2048 after 2 attempts; output: 'Comment afficher une liste en'"
    )
    assert [asked(r)[1][:3] for r in made[-1].requests] == ["How", "You", "How"]  # the error is not asked again
    use_scripted(monkeypatch, lambda req: Generation("", "error", error="timeout after 4 attempts"))
    records = [en_record()]
    make().run_batch(records)
    assert records[0]["_reject"] == {
        "stage": "translate",
        "reason": "translate.backend_error",
        "detail": "turn 0 (user): timeout after 4 attempts",
    }


def test_french_records_pass_through_untouched(monkeypatch):
    made = use_scripted(monkeypatch, lambda req: "jamais")
    stage = make()
    fr = {"id": "f", "_reject": None, "source": {"name": "s", "language": "fr"}, **chat("Bonjour ?", "Salut !")}
    stage.run_batch([fr])
    assert fr["id"] == "f" and fr["messages"][1]["content"] == "Salut !" and "lineage" not in fr
    assert made == [] and stage.stats.counters["passed_through"] == 1  # the model is not even loaded


def test_regenerate_translates_the_prompt_and_answers_it_in_french(monkeypatch):
    answer_fr = "Utilisez la fonction print, qui affiche la liste entière sur une seule ligne de la console."

    def answer(req):
        if req.messages[-1][0] == "user" and ASKED.search(req.messages[-1][1]):
            return FRENCH[asked(req)[1]]
        return answer_fr

    made = use_scripted(monkeypatch, answer)
    stage = make(mode="regenerate")
    records = [en_record()]
    stage.run_batch(records)
    r = records[0]
    assert r["_reject"] is None and r["lineage"]["mode"] == "regenerate"
    assert r["messages"][1]["content"] == answer_fr
    regen = made[-1].calls[1][0]
    assert regen.messages[0][0] == "system" and "Réponds toujours en français" in regen.messages[0][1]
    assert regen.messages[1] == ("user", r["messages"][0]["content"])
    assert stage.stats.counters["turns_regenerated"] == 1


def test_register_gate_rejects_mixed_tu_and_vous(monkeypatch):
    replies = {
        "Can you help me?": "Peux-tu m'aider ?",
        "Sure, tell me what you need and I will help you.": "Bien sûr, dis-moi ce dont tu as besoin et je t'aiderai.",
        "Thanks. What should I do first?": "Merci. Que dois-je faire en premier ?",
        "First, you should write down your goals.": "D'abord, vous devriez noter vos objectifs.",
    }
    use_scripted(monkeypatch, lambda req: replies[asked(req)[1]])
    stage = make(gates={"register": True, "language": False, "english_left": False})
    rec = {
        "id": "m",
        "_reject": None,
        "source": {"name": "s", "language": "en"},
        "messages": [{"role": r, "content": c} for r, c in zip(["user", "assistant"] * 2, replies, strict=False)],
    }
    stage.run_batch([rec])
    assert rec["_reject"]["reason"] == "translate.register_mixed"
    assert rec["_reject"]["detail"].startswith("conversation: answer 0 says tu")


def test_config_errors():
    with pytest.raises(ValueError, match="unknown translate prompt 'fancy'; presets: default"):
        Translate.Config(type="translate", llm=LLM, prompt="fancy")
    with pytest.raises(ValueError, match="concurrency: only for backend openai, not transformers"):
        Translate.Config(type="translate", llm={**LLM, "concurrency": 4})


def test_pipeline_rerun_hits_the_cache_and_accounts_for_every_record(monkeypatch, tmp_path):
    monkeypatch.setenv("FRCORPUS_CACHE_DIR", str(tmp_path / "cache"))
    made = use_scripted(monkeypatch, lambda req: FRENCH.get(asked(req)[1], asked(req)[1]))
    rows = [en_record(), en_record("Short English question that will stay English?", "Sure, it will.", "r1")]
    src = write_jsonl(tmp_path / "in.jsonl", [{"messages": r["messages"]} for r in rows])
    sources = [{"name": "s", "path": str(src), "language": "en"}]
    stages = [{"type": "translate", "llm": LLM, "max_retries": 0}]
    first = run_pipeline(write_pipeline(tmp_path, sources, stages))
    assert sum(len(b.requests) for b in made) == 4
    before = len(made)
    second = run_pipeline(write_pipeline(tmp_path, sources, stages, version="again"))
    assert sum(len(b.requests) for b in made) == 4 and len(made) == before  # the same model, nothing generated
    st = second.stats["stages"]["translate"]
    assert st["counters"]["cache.hits"] == 4 and "cache.misses" not in st["counters"]
    assert st["kept"] == 1 and st["rejected"] == {"translate.not_french": 1}
    assert second.stats["totals"]["read"] == second.stats["totals"]["kept"] + second.stats["totals"]["rejected"]
    kept = pq.read_table(second.version_dir / "data").to_pylist()
    assert kept[0]["lineage"]["source_lang"] == "en" and kept[0]["original_messages"][0]["content"] == CODE_Q
    rejected = pq.read_table(second.version_dir / "rejects").to_pylist()
    assert rejected[0]["messages"][0]["content"] == "Short English question that will stay English?"
    assert first.stats["stages"]["translate"]["kept"] == 1


def dry_run(tmp_path, **options) -> str:
    from frcorpus.cli import app

    src = write_jsonl(tmp_path / "in.jsonl", [chat("a" * 350, "b" * 700), chat("c" * 35, "d" * 70)])
    stages = [{"type": "translate", "llm": LLM, **options}]
    path = write_pipeline(tmp_path, [{"name": "s", "path": str(src), "language": "en"}], stages)
    result = CliRunner().invoke(app, ["run", str(path), "--dry-run"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    return result.output


def test_dry_run_without_history_probes_a_batch_in_full_and_counts_its_retries(tmp_path, monkeypatch):
    from frcorpus.llm.cache import GenerationCache

    monkeypatch.setenv("FRCORPUS_CACHE_DIR", str(tmp_path / "cache"))
    # a weak model: every output runs to its token limit, so the truncation gate asks again each time
    made = use_scripted(monkeypatch, lambda req: Generation("x" * 40, "length", 10, req.max_tokens))
    llm = {**LLM, "batch_size": 2}
    output = dry_run(tmp_path, llm=llm, throughput_tokens_per_s=0.1)
    # token limits 32 + 0.65 x characters: 259 and 487 (probed: both failed, 2 attempts each to come),
    # 54 and 77 (at their limit, 3 attempts each): 2 x 746 + 3 x 131 = 1,885 tokens
    assert "translate: 2 of 2 records to translate (4 turns): 4 requests, 0 of them in the generation cache" in output
    assert "~1,885 tokens to generate (2.0 retries a request, 100% of the outputs at their token limit)" in output
    assert "~5 h 14 min on the CPU at 0.1 tokens/s" in output
    assert "translate: generating 2 request(s) in full to measure the model (kept in the generation cache" in output
    assert "probed on this machine: 2 request(s) generated in full (746 tokens in " in output
    assert "100% at their token limit, 100% failing the stage's checks" in output
    # the probe: the first batch, in full, kept in the cache but not in the history of calls (no retries)
    assert [r.max_tokens for r in made[0].calls[0]] == [259, 487]
    assert GenerationCache().history("scripted", None, "cpu") is None
    again = dry_run(tmp_path, llm=llm, throughput_tokens_per_s=0.1)
    assert "4 requests, 2 of them in the generation cache" in again
    assert [r.max_tokens for r in made[-1].calls[-1]] == [54, 77]  # the next batch


def test_dry_run_probe_of_a_model_that_passes_scales_the_expected_lengths(tmp_path, monkeypatch):
    monkeypatch.setenv("FRCORPUS_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setattr(Translate, "_check", lambda self, job, gen: None)  # every output passes the gates
    # the outputs are twice the expected length (350 characters x 1.2 / 3.5 = 120 tokens expected: 240)
    use_scripted(monkeypatch, lambda req: Generation("x" * 40, "stop", 10, 240))
    output = dry_run(tmp_path, llm={**LLM, "batch_size": 1}, throughput_tokens_per_s=0.1)
    # not probed: 700, 35 and 70 characters, expected 240, 12 and 24 tokens, x 2 (under their limits
    # 487, 54 and 77): 480 + 24 + 48 = 552 tokens, no retry
    assert "~552 tokens to generate (0.0 retries a request, 0% of the outputs at their token limit)" in output
    assert "0% at their token limit, 0% failing the stage's checks" in output


def test_dry_run_with_the_caches_history_gives_one_figure_and_loads_no_model(tmp_path, monkeypatch):
    from frcorpus.llm.cache import CallRecord, GenerationCache

    monkeypatch.setenv("FRCORPUS_CACHE_DIR", str(tmp_path / "cache"))
    made = use_scripted(monkeypatch, lambda req: "x" * 40)
    monkeypatch.setattr("frcorpus.llm.generator.model_identity", lambda config: ("scripted", None))
    template = make().prompt.hash
    # 5 first attempts and 5 retries, half their token limits generated, 2 of 10 at the limit, 5 tokens/s
    GenerationCache().record_call(CallRecord("scripted", None, template, "cpu", 10, 5, 2, 0, 500, 1000, 100.0))
    output = dry_run(tmp_path)
    # 877 tokens of limits x 0.5 x (1 + 1 retry a request) = 877 tokens, at 5 tokens/s
    assert "~877 tokens to generate (1.0 retries a request, 20% of the outputs at their token limit)" in output
    assert "~3 min on the CPU at 5.0 tokens/s" in output
    assert "from the generation cache's history of this model on cpu: 10 requests" in output
    assert made == []  # the history is enough: no model loaded


def test_validate_names_the_backend_package_a_pipeline_needs(tmp_path):
    from frcorpus.cli import app

    src = write_jsonl(tmp_path / "in.jsonl", [chat("Hello there, how are you?", "Fine, thanks.")])
    stages = [{"type": "translate", "llm": {"backend": "vllm", "model": "Qwen/Qwen3-32B"}}]
    path = write_pipeline(tmp_path, [{"name": "s", "path": str(src), "language": "en"}], stages)
    result = CliRunner().invoke(app, ["validate", str(path)], env={"COLUMNS": "300"})
    assert result.exit_code == 2
    assert (
        "stages[0] (translate): needs the 'vllm' package; install it with: pip install 'frcorpus[gpu]' "
        "(on a machine with an NVIDIA GPU and CUDA)" in " ".join(result.output.split())
    )


def test_the_progress_expects_the_retries_once_an_attempt_fails(monkeypatch):
    """The ETA counts the requests still to come: after a first attempt where every output ran to its
    limit, the batch is expected to ask each request max_retries times more."""
    from frcorpus.stages.progress import StageProgress

    use_scripted(monkeypatch, lambda req: Generation("x" * 40, "length", 10, req.max_tokens))
    stage = make(max_retries=2)
    progress = StageProgress(None, "translate", 0)
    expected = []
    progress.requests_expected = lambda n: expected.append(n)
    stage.attach_progress(progress)
    progress.batch_started(2)
    stage.run_batch([en_record(rid="a"), en_record(rid="b")])
    # 4 turns: after the first attempt 4 asked and 4 x 2 to come; then 8 asked and 4 to come; then 12
    assert expected == [12, 12, 12]
    snapshot = progress.snapshot
    snapshot.batch_requests_expected, snapshot.batch_requests_queued, snapshot.batch_requests_done = 12, 4, 4
    snapshot.records_total = 2
    assert snapshot.fraction() == pytest.approx(4 / 12)  # not 4 / 4, as the queue alone would say
