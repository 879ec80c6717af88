"""text/language_requests: a request for an answer in a language, not a mention of one."""

from __future__ import annotations

import json

import pytest

from frcorpus.text.language_requests import (
    LanguageRequest,
    language_names,
    language_request,
    requested_language,
    requested_languages,
)


@pytest.mark.parametrize(
    ("text", "code"),
    [
        # French wordings (the M-IFEval prompts' own, vigogne's OASST users')
        ("Réponds en anglais.", "en"),
        ("Écris-le en espagnol", "es"),
        ("Traduis en allemand : bonjour", "de"),
        ("Votre réponse doit être entièrement en coréen.", "ko"),
        ("L'ENSEMBLE de votre réponse doit être formulé en Télougou, sans utiliser d'autres langues.", "te"),
        ("Répondez en chinois simplifié, et uniquement en chinois simplifié.", "zh"),
        ("Rédigez l'intégralité de votre réponse en finnois, sans utiliser d'autres langues.", "fi"),
        ("Votre texte doit impérativement être en bengali, sans emprunt à d'autres langues.", "bn"),
        ('Comment traduire "J\'aime les bananes" en anglais ?', "en"),
        ("Peux-tu l'expliquer en français ?", "fr"),
        ("Peux-tu me répondre en anglais ?", "en"),
        ("J'aimerais que tu me répondes en italien.", "it"),
        ("Parlons espagnol !", "es"),
        ("En anglais s'il te plaît", "en"),
        ("Donne-moi la version anglaise de ce texte.", "en"),
        ("Quelle est la traduction anglaise de « chat » ?", "en"),
        ("Comment dit-on « merci » en japonais ?", "ja"),
        ("Réponds en langue bretonne", "br"),
        ("Tu es un assistant qui répond toujours en anglais.", "en"),
        ("Ajoute un paragraphe en anglais.", "en"),
        # English wordings (M-IFEval's English prompts)
        ("Answer in Spanish.", "es"),
        ("Translate this into Japanese: hello", "ja"),
        ("Please respond using only the Kannada language, no other language is allowed.", "kn"),
        ("Write a lame joke about engagements in entirely Swahili, no other language is allowed.", "sw"),
        ("Tell a joke, but use Swahili language only, no other language is allowed.", "sw"),
        ("What is an SRE? Use only Korean in your response.", "ko"),
        ("Outside of Arabic, no other language is allowed throughout your entire response.", "ar"),
        ("Your entire response should be in Gujarati, no other language is allowed.", "gu"),
        ("How do you say thank you in Italian?", "it"),
        ("You are a helpful assistant that always answers in English.", "en"),
        ("in English please", "en"),
    ],
)
def test_a_request_for_a_language_is_found(text, code):
    assert requested_language(text) == code
    assert requested_languages(text) == (code,)


@pytest.mark.parametrize(
    "text",
    [
        # mentions: the audit's kept chats, and their French twins
        "What is the difference between British and American English?",
        "I am learning Spanish and I need help with verbs.",
        "Can you check the grammar of this English sentence: he go to school.",
        "Quelle est la différence entre l'anglais britannique et l'anglais américain ?",
        "J'apprends l'espagnol depuis deux ans.",
        "Qu'est-ce que l'occitan ?",
        "Raconte-moi l'histoire de la langue anglaise.",
        "Ce livre a été écrit en anglais.",
        "Le texte suivant est en anglais : hello",
        "Le mot « week-end » vient de l'anglais.",
        "Écris un article sur les vacances en Corse.",
        "I wrote this in English, can you check it?",
        # abilities, negations, and a user turn written in another language
        "Je parle anglais couramment.",
        "Tu parles anglais ?",
        "Parlez-vous anglais ?",
        "Do you speak English?",
        "Ne réponds pas en anglais.",
        "Don't answer in English.",
        "Lo occitan es una lenga romanica.",
        "¿Puedes ayudarme con mi tarea?",
    ],
)
def test_a_mention_is_no_request(text):
    assert language_request(text) == LanguageRequest()
    assert requested_language(text) is None and not language_request(text)


def test_a_translation_names_what_it_starts_from():
    request = language_request("Traduis ce texte de l'anglais vers le français : Hello")
    assert request == LanguageRequest(targets=("fr",), sources=("en",))
    assert language_request("Translate the following phrase from English to Spanish") == LanguageRequest(
        targets=("es",), sources=("en",)
    )
    # the first language after the verb is the one asked for, not one refused after it
    assert language_request("Réponds en français, pas en anglais.") == LanguageRequest(targets=("fr",))


def test_names_come_in_french_and_english_with_french_feminine_forms():
    names = language_names()
    assert [names[n] for n in ("anglais", "anglaise", "english", "coréen", "coréenne", "grecque", "bretonne")] == [
        "en",
        "en",
        "en",
        "ko",
        "ko",
        "el",
        "br",
    ]
    assert names["télougou"] == names["telugu"] == "te" and names["farsi"] == "fa"
    assert "corse" not in names and "same" not in names  # the island, the English word


def test_every_mifeval_language_instruction_is_found_and_no_other(shared_data):
    """M-IFEval's `language:response_language` instructions are the prompts that ask for an answer in
    another language: all 40 are found with their language, and of the 736 other prompts only three
    ask for another language (by hand: all three really do, with no id to say so)."""
    found, missed, extra = 0, [], []
    for name, own in (("fr_input_data.jsonl", "fr"), ("en_input_data.jsonl", "en")):
        for line in (shared_data / "benchmarks_fr" / "mifeval" / name).read_text(encoding="utf-8").splitlines():
            row = json.loads(line)
            gold = {
                kwargs["language"]
                for iid, kwargs in zip(row["instruction_id_list"], row["kwargs"], strict=True)
                if iid.endswith("language:response_language")
            }
            asked = set(requested_languages(row["prompt"])) - {own}
            if gold:
                found += asked == gold
                missed += [] if asked == gold else [row["prompt"]]
            elif asked:
                extra.append((sorted(asked), row["prompt"][:60]))
    assert (found, missed) == (40, [])
    assert extra == [
        (["fr"], "Explain in French why it is important to eat healthy foods t"),
        (["de"], 'Can you provide a translation for "今天天气很好" in German? Do not'),
        (["de"], "Translate the following sentence into German and then critic"),
    ]


def test_the_shipped_language_names_are_what_langcodes_gives():
    from frcorpus.text.language_requests import NAMES_FILE, langcodes_names

    # regenerate after a langcodes upgrade: NAMES_FILE.write_text(json.dumps(langcodes_names(), ensure_ascii=False,
    # indent=0, sort_keys=True) + "\n", encoding="utf-8")
    assert json.loads(NAMES_FILE.read_text(encoding="utf-8")) == langcodes_names()
