"""`langid`: per-turn, per-conversation and per-sentence language with the bundled lid.176.ftz."""

from __future__ import annotations

import json

import pytest

from frcorpus.stages.langid import LangId
from frcorpus.text.languages import iso_code
from frcorpus.text.prose import set_aside

FR_Q = "Peux-tu m'expliquer comment fonctionne la photosynthèse chez les plantes ?"
FR_A = (
    "La photosynthèse est le processus par lequel les plantes transforment la lumière du soleil en énergie "
    "chimique. Elle se déroule dans les chloroplastes, grâce à la chlorophylle qui capte la lumière."
)
EN_A = (
    "Photosynthesis is the process by which plants turn sunlight into chemical energy. It takes place in "
    "the chloroplasts, where chlorophyll captures the light."
)
EN_PARAGRAPH = (
    "In other words, plants use the energy of light to build sugars from carbon dioxide and water, and they "
    "release oxygen as a by-product of this reaction, which is why forests matter so much for the air we breathe."
)


def chat(*turns: tuple[str, str]) -> dict:
    return {"id": "r", "messages": [{"role": r, "content": c} for r, c in turns], "_reject": None}


def run(record: dict, **cfg) -> dict:
    stage = LangId(LangId.Config(type="langid", **cfg), "langid")
    stage.setup()
    stage.run_batch([record])
    return record


def reason(record: dict) -> str | None:
    return record["_reject"] and record["_reject"]["reason"]


def test_french_conversation_is_kept_and_annotated():
    rec = run(chat(("user", FR_Q), ("assistant", FR_A)))
    assert reason(rec) is None
    assert [t["lang"] for t in rec["lang"]] == ["fr", "fr"]
    assert all(t["score"] > 0.9 and not t["inherited"] for t in rec["lang"])
    assert rec["langid"]["lang"] == "fr" and rec["langid"]["keep_share"] == 1.0 and rec["langid"]["mixed_with"] is None


def test_an_english_answer_to_a_french_user_is_wrong_language():
    rec = run(chat(("user", FR_Q), ("assistant", EN_A)))
    assert reason(rec) == "langid.wrong_language(en)"
    assert rec["_reject"]["detail"].startswith("turn 1 (assistant): en 0.")
    assert rec["langid"]["keep_share"] == 0.0


def test_english_conversation_under_each_requirement():
    en = chat(("user", "Can you explain how photosynthesis works in plants?"), ("assistant", EN_A))
    for require in ("all_turns", "assistant_turns", "conversation"):
        rec = run({**en, "messages": [dict(m) for m in en["messages"]], "_reject": None}, require=require)
        assert reason(rec) == "langid.wrong_language(en)", require
    # an English user turn only fails all_turns
    mixed_user = chat(("user", "Can you explain how photosynthesis works in plants?"), ("assistant", FR_A))
    assert reason(run(mixed_user, require="assistant_turns")) is None
    rec = run(
        chat(("user", "Can you explain how photosynthesis works in plants?"), ("assistant", FR_A)), require="all_turns"
    )
    assert reason(rec) == "langid.wrong_language(en)" and rec["_reject"]["detail"].startswith("turn 0 (user)")


def test_an_english_paragraph_inside_a_french_answer_is_mixed():
    rec = run(chat(("user", FR_Q), ("assistant", FR_A + "\n\n" + EN_PARAGRAPH)))
    assert rec["lang"][1]["lang"] == "fr" or reason(rec) == "langid.mixed(en)"
    assert reason(rec) == "langid.mixed(en)"
    assert rec["langid"]["mixed_with"] == "en" and 0.3 < rec["langid"]["keep_share"] < 0.7
    assert rec["_reject"]["detail"].endswith("of the assistant text is not fr")
    # a looser threshold keeps it, still annotated
    rec = run(chat(("user", FR_Q), ("assistant", FR_A + "\n\n" + EN_PARAGRAPH)), max_foreign_share=0.9)
    assert reason(rec) is None and rec["langid"]["mixed_with"] == "en"


def test_short_turns_take_the_conversation_language():
    rec = run(chat(("user", FR_Q), ("assistant", FR_A), ("user", "OK"), ("assistant", "Merci !")))
    assert reason(rec) is None
    assert [t["inherited"] for t in rec["lang"]] == [False, False, True, True]
    assert rec["lang"][3]["lang"] == "fr"
    # judged alone, "Merci !" is not French enough to keep
    rec = run(chat(("user", FR_Q), ("assistant", "Merci !")), min_chars=0)
    assert rec["lang"][1]["inherited"] is False and rec["lang"][1]["lang"] != "fr" or rec["lang"][1]["score"] < 0.9


def test_code_formulas_links_and_numbers_are_set_aside():
    code = (
        "```python\n# compute the total price of the shopping cart\n"
        "def total(items):\n    return sum(i.price for i in items)\n```"
    )
    answer = (
        f"Voici une fonction qui calcule le prix total du panier :\n{code}\nElle additionne le prix de chaque article."
    )
    rec = run(chat(("user", "Écris une fonction Python pour le total du panier."), ("assistant", answer)))
    assert reason(rec) is None and rec["lang"][1]["lang"] == "fr"
    indented = "Voici le code :\n\n    import os\n    print(os.listdir())\n\nIl affiche le dossier."
    assert set_aside(indented).split() == ["Voici", "le", "code", ":", "Il", "affiche", "le", "dossier."]
    text = "Voir https://example.com/english/page et `print(x)`, la formule $E = mc^2$, \\(a+b\\) et 3,14 ou 12:30."
    assert set_aside(text).split() == ["Voir", "et", ",", "la", "formule", ",", "et", "ou", "."]
    # prices are no formula (pandoc's rule for inline math): the words between two of them stay
    assert set_aside("Le livre coûte 5$ et le stylo 10$.").split() == [
        "Le",
        "livre",
        "coûte",
        "$",
        "et",
        "le",
        "stylo",
        "$.",
    ]
    assert set_aside("Entre 5 $ et 10 $ par mois, soit $x$ euros.").split()[:6] == [
        "Entre",
        "$",
        "et",
        "$",
        "par",
        "mois,",
    ]
    # without setting code aside, the same answer would be judged on English code comments
    only_code = chat(("user", "Écris une fonction Python pour le total du panier."), ("assistant", code))
    rec = run(only_code)
    assert rec["lang"][1]["inherited"] is True  # nothing left to judge: it takes the conversation's language
    assert reason(rec) is None


def test_quotation_marks_are_not_taken_for_french():
    # lid.176 reads « as French: a Malay line in guillemets scored 0.84 French before quotes were set aside
    assert set_aside('« Download Lagu Super Junior » et “SPY” ou "x"').split() == [
        "Download",
        "Lagu",
        "Super",
        "Junior",
        "et",
        "SPY",
        "ou",
        "x",
    ]
    rec = run(chat(("assistant", "« Download Lagu Terbaru Ega D'Academy - Bunga Warung.")), min_chars=10)
    assert rec["lang"][0]["lang"] == "en" and reason(rec) == "langid.low_score"


def test_nothing_to_judge_is_low_score():
    rec = run(chat(("user", "???"), ("assistant", "12 + 30 = 42")))
    assert reason(rec) == "langid.low_score"
    assert rec["langid"]["lang"] == "und" and rec["_reject"]["detail"] == "turn 1 (assistant): und 0.00 < 0.5"


def test_low_score_threshold():
    rec = run(chat(("user", FR_Q), ("assistant", FR_A)), min_score=0.9999)
    assert reason(rec) == "langid.low_score"


def test_annotate_only_counts_instead_of_rejecting():
    stage = LangId(LangId.Config(type="langid", annotate_only=True), "langid")
    stage.setup()
    rec = chat(("user", FR_Q), ("assistant", EN_A))
    stage.run_batch([rec])
    assert rec["_reject"] is None and rec["lang"][1]["lang"] == "en"
    assert stage.stats.counters == {"would_reject.langid.wrong_language(en)": 1}


def test_keep_several_languages_and_iso_codes():
    assert LangId.Config(type="langid", keep=["fra", "eng"]).keep == ["fr", "en"]
    assert run(chat(("user", FR_Q), ("assistant", EN_A)), keep=["fr", "en"])["_reject"] is None
    for label, code in (
        ("__label__fr", "fr"),
        ("__label__fra_Latn", "fr"),  # GlotLID, OpenLID
        ("__label__eng_Latn", "en"),
        ("__label__arb_Arab", "ar"),  # macrolanguage folded
        ("__label__cmn_Hani", "zh"),
        ("__label__ceb", "ceb"),  # no ISO 639-1 code
    ):
        assert iso_code(label) == code


def test_a_missing_model_file_is_a_clear_error(tmp_path):
    from frcorpus.config import load_pipeline
    from frcorpus.yamlconf import ConfigError

    pipeline = tmp_path / "p.yaml"
    data = tmp_path / "d.jsonl"
    data.write_text('{"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}]}\n')
    pipeline.write_text(
        f"name: t\nsources:\n  - {{name: s, path: {data}}}\nstages:\n  - type: langid\n    model: ./models/lid.bin\n"
    )
    with pytest.raises(ConfigError) as exc:
        load_pipeline(pipeline)
    assert exc.value.problems == [
        f"{pipeline}:6: stages[0].model: model file ./models/lid.bin does not exist; "
        "give a local fastText LID model file (relative paths are relative to the working directory) or a Hub "
        "repo id org/name"
    ]
    # a file that disappears after validation is still named when the stage loads it
    model = tmp_path / "lid.bin"
    model.write_bytes(b"")
    stage = LangId(LangId.Config(type="langid", model=str(model)), "langid")
    model.unlink()
    with pytest.raises(FileNotFoundError, match=r"langid: model file .*lid.bin does not exist"):
        stage.setup()


def test_an_answer_with_no_prose_takes_the_conversation_language():
    code = "```sql\nSELECT COUNT(*) FROM orders;\n```"
    rec = run(chat(("user", "Write a SQL query that counts the rows of a table named orders."), ("assistant", code)))
    assert rec["lang"][1] == {"lang": "en", "score": rec["langid"]["score"], "inherited": True}
    assert reason(rec) == "langid.wrong_language(en)" and rec["langid"]["keep_share"] is None


def test_an_answer_in_the_language_the_user_asked_for_is_kept():
    question = "Explique la photosynthèse, mais réponds en anglais s'il te plaît."
    stage = LangId(LangId.Config(type="langid"), "langid")
    stage.setup()
    rec = chat(("user", question), ("assistant", EN_A))
    stage.run_batch([rec])
    assert reason(rec) is None and rec["lang"][1]["lang"] == "en"
    assert stage.stats.counters["kept_requested_language.en"] >= 1
    # in English too, and for a paragraph inside a French answer
    rec = run(chat(("user", "Answer in English: what is photosynthesis?"), ("assistant", EN_A)))
    assert reason(rec) is None
    rec = run(chat(("user", FR_Q + " Ajoute un paragraphe en anglais."), ("assistant", FR_A + "\n\n" + EN_PARAGRAPH)))
    assert reason(rec) is None and rec["langid"]["mixed_with"] == "en"
    # without the option, or when another language was asked for, it is the wrong language
    assert reason(run(chat(("user", question), ("assistant", EN_A)), allow_requested=False)) == (
        "langid.wrong_language(en)"
    )
    assert reason(run(chat(("user", FR_Q + " Réponds en espagnol."), ("assistant", EN_A)))) == (
        "langid.wrong_language(en)"
    )


# The lexicon (langid_lexicon): fastText's unsure verdicts weighed against the words' frequencies.
LATIN = "Aliud exemplum est vox tempestas."  # lid.176.ftz: fr 0.64, la 0.16
SHORT_FR = "Le leurre accompagne la vision."  # lid.176.ftz: fr 0.42


@pytest.mark.parametrize(
    ("text", "with_lexicon", "without"),
    [
        (LATIN, ("langid.low_score", "turn 0 (assistant): la 0.16 < 0.5"), None),
        (SHORT_FR, None, ("langid.low_score", "turn 0 (assistant): fr 0.42 < 0.5")),
    ],
)
def test_the_lexicon_settles_what_fasttext_is_unsure_of(text, with_lexicon, without):
    for lexicon, expected in ((True, with_lexicon), (False, without)):
        rec = run(chat(("assistant", text)), require="all_turns", lexicon=lexicon)
        got = rec["_reject"] and (rec["_reject"]["reason"], rec["_reject"]["detail"])
        assert got == expected, lexicon


def test_the_lexicon_never_makes_a_foreign_language_surer_than_fasttext():
    from frcorpus.stages.langid_lexicon import Lexicon

    lexicon = Lexicon({"fr"})
    # English words throughout: naive Bayes alone would say en at 0.99+
    code, score = lexicon.judge("import injectable from angular core", {"en": 0.54, "fr": 0.03, "de": 0.03})
    assert code == "en" and score == 0.54
    # French words: the kept language takes the posterior, above fastText's 0.42
    code, score = lexicon.judge("le leurre accompagne la vision", {"fr": 0.42, "en": 0.14, "it": 0.08})
    assert code == "fr" and score > 0.8
    # Latin has no list: "another language", named after fastText's likeliest unlisted candidate
    code, score = lexicon.judge("aliud exemplum est vox tempestas", {"fr": 0.64, "la": 0.16})
    assert code == "la" and score == 0.16


def test_languages_without_a_list_borrow_only_a_close_one():
    from frcorpus.stages.langid_lexicon import Lexicon

    lexicon = Lexicon({"fr"})
    assert [lexicon.list_for(c) for c in ("hr", "bs", "sr", "no", "fr")] == ["sh", "sh", "sh", "nb", "fr"]
    # wordfreq itself would fall back to it, fr and en: those lists say nothing of these languages
    assert [lexicon.list_for(c) for c in ("la", "oc", "zu")] == [None, None, None]
    assert lexicon.judge("1 2 3", {"fr": 0.5}) is None  # no words to weigh


EN_UNSURE = (
    "Before taking my summer vacation, I'd appreciate a primer on tipping -- the cab driver, doorman, porter, "
    "and waiter."
)


def test_the_lexicon_weighs_only_texts_where_a_kept_language_has_a_tenth():
    stage = LangId(LangId.Config(type="langid", require="all_turns"), "langid")
    stage.setup()
    weighed = []
    judge = stage.lexicon.judge
    stage.lexicon.judge = lambda text, candidates: weighed.append((text, candidates)) or judge(text, candidates)
    # lid.176.ftz: en 0.64, fr 0.04 (a lingua sentence) -> fastText's verdict stands, unweighed
    rec = chat(("assistant", EN_UNSURE))
    stage.run_batch([rec])
    assert weighed == []
    assert (reason(rec), rec["_reject"]["detail"]) == ("langid.wrong_language(en)", "turn 0 (assistant): en 0.64")
    # fr 0.42: weighed, with fastText's candidates of at least 1% (asked again for them)
    rec = chat(("assistant", SHORT_FR))
    stage.run_batch([rec])
    assert [text for text, _ in weighed] == [SHORT_FR]
    assert weighed[0][1]["fr"] == pytest.approx(0.42, abs=0.01) and len(weighed[0][1]) > 1
    assert min(weighed[0][1].values()) >= 0.01
    assert reason(rec) is None


def test_numbers_and_quotes_are_what_the_plain_digit_class_finds():
    """NUMBER spells `\\d` out as ranges (faster in `re`): the same matches as the plain pattern,
    astral digits and emoji included."""
    import random
    import re

    from frcorpus.text.prose import NUMBER, QUOTE_MARKS

    plain = re.compile(r"[\d" + QUOTE_MARKS + r"](?:(?<=\d)\d*(?:[.,:/h-]\d+)*)?")
    alphabet = (
        list("0123456789.,:/h- ab")
        + list(QUOTE_MARKS)
        + ["٣", "३", "３", "\U0001d7ce", "\U000104a0", "😀", "\U00020000"]
    )
    rng = random.Random(0)
    for _ in range(20_000):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 12)))
        assert NUMBER.sub(" ", text) == plain.sub(" ", text), repr(text)
    assert NUMBER.sub(" ", "le 3 mai 2024 à 14h30, 12,5 € ; 😀 \U0001d7ce") == "le   mai   à  ,   € ; 😀  "


def test_one_line_skips_the_split_only_when_it_would_change_nothing():
    import random

    from frcorpus.text.prose import one_line, single_spaced

    alphabet = list("ab .") + [
        "\n",
        "\t",
        "\r",
        "\x0b",
        "\x0c",
        "\x1c",
        "\x85",
        "\xa0",
        "\u2009",
        "\u2028",
        "\u3000",
        "é",
    ]
    rng = random.Random(0)
    for _ in range(20_000):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 10)))
        if single_spaced(text):
            assert " ".join(text.split()) == text, repr(text)
        assert one_line(text) == " ".join(text.split()), repr(text)
    assert one_line("Bonjour\u00a0!\n\nÇa va ?") == "Bonjour ! Ça va ?"


# Issue 20: what the audit found rejected or kept wrongly, from real data (vigogne OASST, M-IFEval).
ROLES = {"UTILISATEUR": "user", "ASSISTANT": "assistant"}


def vigogne(shared_data, conversation_id: str) -> dict:
    path = shared_data / "instruct_fr" / "vigogne" / "oasst_20230412_fr_1k.jsonl"
    for line in path.read_text(encoding="utf-8").splitlines():
        row = json.loads(line)
        if row["id"] == conversation_id:
            return chat(*((ROLES[t["role"]], t["content"]) for t in row["conversation"]))
    raise KeyError(conversation_id)


def mifeval(shared_data, model: str, index: int) -> dict:
    path = shared_data / "instruct_fr" / "mifeval_fr_responses" / f"fr_input_response_data_{model}.jsonl"
    row = json.loads(path.read_text(encoding="utf-8").splitlines()[index])
    return chat(("user", row["prompt"]), ("assistant", row["response"]))


def test_a_language_named_without_a_request_is_not_let_through():
    # the audit's kept chats: an English chat about English, a Spanish one whose user learns Spanish,
    # an Occitan one that names Occitan
    en = chat(
        ("user", "What is the difference between British and American English?"),
        ("assistant", "British English keeps the u in words like colour, while American English drops it."),
    )
    assert reason(run(en)) == "langid.wrong_language(en)"
    es = chat(
        ("user", "I am learning Spanish. ¿Puedes explicarme cuándo se usa el subjuntivo?"),
        ("assistant", "El subjuntivo se usa para expresar deseos, dudas y emociones, por ejemplo: espero que vengas."),
    )
    assert reason(run(es)) == "langid.wrong_language(es)"
    oc = chat(
        ("user", "Parla-me de la lenga occitana e de sa literatura, en occitan."),
        (
            "assistant",
            "L'occitan es una lenga romanica parlada dins lo sud de França, amb una literatura fòrça anciana.",
        ),
    )
    assert reason(run(oc))[: len("langid.wrong_language(")] == "langid.wrong_language("
    # a request after the answer does not excuse it
    late = chat(("user", FR_Q), ("assistant", EN_A), ("user", "Réponds en anglais, maintenant."), ("assistant", EN_A))
    assert (reason(run(late)), late["_reject"]["detail"]) == (
        "langid.wrong_language(en)",
        "turn 1 (assistant): en 0.97",
    )


def test_an_answer_in_a_requested_language_is_kept_and_a_third_one_is_not(shared_data):
    stage = LangId(LangId.Config(type="langid"), "langid")
    stage.setup()
    # « rédigez l'intégralité de votre réponse en coréen »: gpt-4o answers in Korean, Qwen2.5-0.5B in English
    korean, english = (
        mifeval(shared_data, "gpt-4o-2024-08-06", 91),
        mifeval(shared_data, "Qwen__Qwen2.5-0.5B-Instruct-GPTQ-Int4", 91),
    )
    stage.run_batch([korean, english])
    assert reason(korean) is None and korean["lang"][1]["lang"] == "ko"
    assert stage.stats.counters["kept_requested_language.ko"] == 1
    assert reason(english) == "langid.wrong_language(en)"
    # "Answer in Spanish" in English, answered in Spanish
    es = chat(
        ("user", "Answer in Spanish: why is the sky blue?"),
        ("assistant", "El cielo es azul porque la atmósfera dispersa más la luz azul que la roja."),
    )
    assert reason(run(es)) is None


def test_a_translation_may_quote_the_language_it_starts_from(shared_data):
    # « Traduis ce texte de l'anglais vers le français », then how to answer it politely: in English
    rec = run(vigogne(shared_data, "oasst-20230412-fr-00000647"))
    assert reason(rec) is None and rec["langid"]["mixed_with"] == "en"
    rec = run(vigogne(shared_data, "oasst-20230412-fr-00000647"), allow_requested=False)
    assert reason(rec) == "langid.mixed(en)"


def test_ascii_art_has_no_language_to_judge(shared_data):
    # « Dessine-moi une fleur en art ASCII », « Rajoute une feuille »: the second answer is all art
    rec = run(vigogne(shared_data, "oasst-20230412-fr-00000495"))
    assert reason(rec) is None and rec["lang"][3] == {"lang": "fr", "score": rec["langid"]["score"], "inherited": True}
    # art beside English prose: the prose decides
    art = "   _,--._.-,\n  /\\_r-,\\_ )\n.-.) _;='_/ (.;\n \\ \\' \\/S )\n  L.'-. _.'|-'"
    rec = run(
        chat(
            ("user", "Draw me a flower in ASCII art."),
            ("assistant", "Here is a rose drawn in ASCII art for you:\n\n" + art),
        )
    )
    assert reason(rec) == "langid.wrong_language(en)"


def test_an_unsure_turn_in_a_french_conversation_is_weighed_by_its_words(shared_data):
    # a French tongue-twister: lid.176 en 0.43, French below 1%
    rec = run(vigogne(shared_data, "oasst-20230412-fr-00000983"))
    assert reason(rec) is None and rec["lang"][3]["lang"] == "fr" and not rec["lang"][3]["inherited"]
    # « Mille neuf cent seize »: nl 0.61 (a wrong date, but French)
    rec = run(mifeval(shared_data, "Qwen__Qwen2.5-7B-Instruct-GPTQ-Int4", 53))
    assert reason(rec) is None and rec["lang"][1]["lang"] == "fr"
    # English in a French conversation stays English: "Humans are better... yeah we bettr tn u whoevr u r"
    rec = run(vigogne(shared_data, "oasst-20230412-fr-00000100"))
    assert reason(rec) == "langid.wrong_language(en)"


@pytest.mark.parametrize(
    ("user", "assistant", "verdict"),
    [
        ("Oui", "D'accord.", None),
        ("Salut", "Salut !", None),
        ("Super", "Génial !", None),
        ("Ok ?", "Oui.", None),
        ("Bonne nuit", "Bonne nuit !", None),
        ("Thanks", "You're welcome!", "langid.wrong_language(en)"),
        ("Yes", "Ok.", "langid.low_score"),
        ("Danke", "Bitte schön.", "langid.wrong_language(de)"),
    ],
)
def test_a_conversation_of_short_turns_is_judged_by_its_words(user, assistant, verdict):
    # lid.176 on "Salut Salut !": eo 0.25, fr 0.19; "Super Génial !": pt 0.46, fr 0.05
    rec = run(chat(("user", user), ("assistant", assistant)))
    assert reason(rec) == verdict
    assert rec["lang"][1]["inherited"] and (verdict is not None or rec["langid"]["lang"] == "fr")


def test_unfenced_code_is_set_aside(shared_data):
    # JSON with French values and a fence that opens after a key (Claude 3.5 Sonnet, M-IFEval 162)
    assert reason(run(mifeval(shared_data, "claude-3-5-sonnet-20240620", 162))) is None
    # an indented Python block with English comments under a French sentence
    assert reason(run(vigogne(shared_data, "oasst-20230412-fr-00000527"))) is None
    # SQL and shell alone, answering French questions
    sql = chat(
        ("user", "Écris une requête SQL qui donne le nombre de commandes par client, du plus grand au plus petit."),
        ("assistant", "SELECT client_id, COUNT(*) AS total FROM orders GROUP BY client_id ORDER BY total DESC;"),
    )
    assert reason(run(sql)) is None
    shell = chat(
        ("user", "Quelles commandes pour installer git et curl sur Debian ?"),
        (
            "assistant",
            "Voici :\nsudo apt-get update && sudo apt-get install -y git curl build-essential\n"
            "git clone https://github.com/user/project.git && cd project\nmake install",
        ),
    )
    assert reason(run(shell)) is None
    # English prose around code is still English (vigogne: a simple HTML site explained in English)
    assert reason(run(vigogne(shared_data, "oasst-20230412-fr-00000810"))) == "langid.wrong_language(en)"
    sql_en = chat(
        ("user", "Write a SQL query that counts orders per customer."),
        ("assistant", "Here is the query:\nSELECT client_id, COUNT(*) AS total FROM orders GROUP BY client_id;"),
    )
    assert reason(run(sql_en)) == "langid.wrong_language(en)"


def test_mostly_capitals_are_read_lower_cased(shared_data):
    # « CHOISISsez UN LIEU ENSOLEILLÉ... »: a few small letters kept one_line from lower-casing it (en 0.24)
    rec = run(mifeval(shared_data, "Qwen__Qwen2.5-7B-Instruct-GPTQ-Int4", 5))
    assert reason(rec) is None and rec["lang"][1]["lang"] == "fr"
    english = (
        "THE GERANIUMS NEED SUN AND WATER. WATER THEM TWICE A WEEK, and REMOVE THE DEAD FLOWERS TO HELP NEW ONES GROW."
    )
    rec = run(chat(("user", "Comment entretenir vos géraniums ? Réponds en majuscules."), ("assistant", english)))
    assert reason(rec) == "langid.wrong_language(en)"


# Issue 22: the conversation's language comes from its judged turns, not from fastText on the turns joined.
def asked_texts(stage: LangId) -> list[str]:
    """What the stage asks fastText about from now on (its `predict`, recorded)."""
    asked: list[str] = []
    predict = stage.predict

    def recording(texts: list[str]) -> dict:
        asked.extend(texts)
        return predict(texts)

    stage.predict = recording
    return asked


def test_the_conversation_language_comes_from_its_judged_turns(shared_data):
    # a French request to translate an English text: the prompt is en 0.64, the answer fr 0.99; the
    # conversation is French, with its French units' score, and no text but the two turns is asked
    record = vigogne(shared_data, "oasst-20230412-fr-00000652")
    stage = LangId(LangId.Config(type="langid"), "langid")
    stage.setup()
    asked = asked_texts(stage)
    stage.run_batch([record])
    assert reason(record) is None
    assert [(t["lang"], round(t["score"], 2)) for t in record["lang"]] == [("en", 0.64), ("fr", 0.99)]
    assert record["langid"]["lang"] == "fr" and record["langid"]["score"] == record["lang"][1]["score"]
    assert len(asked) == 2
    # require: conversation judges the conversation's text whole (fastText: fr 1.00 on both turns joined)
    record = vigogne(shared_data, "oasst-20230412-fr-00000652")
    stage = LangId(LangId.Config(type="langid", require="conversation"), "langid")
    stage.setup()
    asked = asked_texts(stage)
    stage.run_batch([record])
    assert reason(record) is None and record["langid"]["lang"] == "fr" and record["langid"]["score"] > 0.999
    assert len(asked) == 3 and asked[-1].startswith("Traduis ce texte") and asked[-1].endswith("associés dépendants.")


def test_an_unsure_turn_does_not_give_the_conversation_its_language(shared_data):
    # Qwen2.5-0.5B's « [Émotions] [Émotions]... » (en 0.41) to a French prompt: the conversation is the
    # prompt's French, in which the words of the answer are weighed and found French (the repetition
    # is for `heuristics` to reject)
    record = mifeval(shared_data, "Qwen__Qwen2.5-0.5B-Instruct-GPTQ-Int4", 32)
    assert record["messages"][1]["content"].startswith("[Émotions] [Émotions]")
    run(record)
    assert reason(record) is None and record["langid"]["lang"] == "fr" and record["lang"][1]["lang"] == "fr"
    # a conversation whose only judged turn is short and unsure is judged on its text joined (alpaca_demo)
    record = run(
        chat(
            ("user", 'Concatenate the two strings together\n\nString1: "Hello"\nString2: "World!"'),
            ("assistant", '"HelloWorld!"'),
        )
    )
    assert [(t["lang"], t["inherited"]) for t in record["lang"]] == [("en", True), ("en", True)]
    assert record["langid"]["lang"] == "en" and reason(record) == "langid.low_score"


def test_branches_of_a_conversation_tree_are_judged_as_each_alone(shared_data):
    # OASST branches share their first turns (here a prompt and an answer of several paragraphs),
    # whose prose a batch sets aside once
    ids = [
        "oasst-20230412-fr-00000260",
        "oasst-20230412-fr-00000261",
        *(f"oasst-20230412-fr-0000078{i}" for i in range(5)),
    ]
    stage = LangId(LangId.Config(type="langid"), "langid")
    stage.setup()
    together = [vigogne(shared_data, i) for i in ids]
    stage.run_batch(together)
    for conversation_id, record in zip(ids, together, strict=True):
        alone = vigogne(shared_data, conversation_id)
        stage.run_batch([alone])
        assert [alone[key] for key in ("_reject", "lang", "langid")] == [
            record[key] for key in ("_reject", "lang", "langid")
        ]


def test_wordy_counts_letters_as_str_isalpha_does():
    from frcorpus.text.prose import wordy

    def by_definition(text: str) -> bool:
        return 2 * sum(map(str.isalpha, text)) >= len(text) - text.count(" ")

    texts = [
        "Voici une rose en art ASCII :",
        "   @@@   ",
        "½ ² Ⅻ 〇 ① ٣",  # numerals that are no letters (and `[^\W\d_]` takes for some)
        "a½b²",
        "𝐁𝐨𝐧𝐣𝐨𝐮𝐫 !!",  # letters beyond the BMP
        "😀😀😀 ok",
        "l'été\u00a0: oui",
        "ǅ ǈ ʰ ـ",  # titlecase, modifier letters
        "",
    ]
    assert [wordy(t) for t in texts] == [by_definition(t) for t in texts]
    assert [wordy(t) for t in texts] == [True, False, False, True, True, False, True, True, True]


def test_a_line_that_may_be_code_is_matched_against_the_code_patterns():
    from frcorpus.text.code import CODE_LINE, _may_be_code

    lines = [
        "sudo apt install git",
        "SELECT * FROM users WHERE id = 1;",
        "import numpy as np",
        "x = 3",
        "print(x)",
        "Print(x)",
        "C:\\Users\\me> dir",
        "PS C:\\> Get-Process",
        "user@host:~$ ls -la",
        "<div class='a'>",
        '"nom": "Dupont",',
        "drwxr-xr-x 2 root root 4096 janv. 1 12:00 dossier",
        "Voici le code :",
    ]
    assert all(_may_be_code(line) for line in lines if CODE_LINE.match(line))
    # prose that starts with a capital and ends with a letter or a full stop is not matched
    assert not _may_be_code("La photosynthèse se déroule dans les chloroplastes.")
    assert not _may_be_code("3 Ajoutez le sel")
