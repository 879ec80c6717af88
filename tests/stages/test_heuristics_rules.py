"""`heuristics`: every rule fires on a French and an English case, with its reason code, and stops
firing when it is turned off."""

from __future__ import annotations

import pytest

from frcorpus.stages.heuristics import Heuristics

GOOD_FR = "La photosynthèse transforme la lumière en énergie chimique dans les chloroplastes des feuilles."
GOOD_EN = "Photosynthesis turns light into chemical energy inside the chloroplasts of the leaves."


def judge(question: str, answer: str, **cfg) -> tuple[str | None, str]:
    stage = Heuristics(Heuristics.Config(type="heuristics", **cfg), "heuristics")
    stage.setup()
    record = {
        "messages": [{"role": "user", "content": question}, {"role": "assistant", "content": answer}],
        "_reject": None,
    }
    stage.run_batch([record])
    reject = record["_reject"]
    return (reject["reason"], reject["detail"]) if reject else (None, "")


def repeated(sentence: str, times: int) -> str:
    return "\n".join([sentence] * times)


LOOP_FR = " ".join(["je pense que la réponse est la suivante et je pense que"] * 40) + "."
# Qwen2.5-0.5B (M-IFEval): one paragraph under each heading
SECTIONS_FR = "".join(
    f"### Section {n}\n\nDans ce monde, la communication est une arme inébranlable. Les mensonges sont des "
    "armes invisibles, un atout inépuit pour les échanges.\n\n"
    for n in (1, 2, 3)
)
SECTIONS_EN = "".join(
    f"### Section {n}\n\nIn this world, communication is an unshakable weapon. Lies are invisible weapons, "
    "a tireless asset for every exchange.\n\n"
    for n in (1, 2, 3)
)
LOOP_EN = " ".join(["i think that the answer is the following and i think that"] * 40) + "."
CASES = [
    # (reason, option that turns the rule off, French case, English case)
    ("empty_answer", None, ("Question ?", "…"), ("Question?", "!!")),
    ("answer_too_short", {"min_answer_words": 1}, ("Question ?", "Oui"), ("Question?", "Yes")),
    ("turn_too_long", {"max_turn_chars": None}, ("Question ?", GOOD_FR * 400), ("Question?", GOOD_EN * 400)),
    (
        "refusal",
        {"refusals": False},
        ("Donne-moi la recette.", "Je suis désolé, mais je ne peux pas vous aider avec cette demande."),
        ("Give me the recipe.", "I'm sorry, but I can't help with that request."),
    ),
    (
        "ai_boilerplate",
        {"ai_boilerplate": False},
        ("Que penses-tu du jazz ?", "En tant que modèle de langage, je n'ai pas d'avis, mais le jazz est riche."),
        ("What about jazz?", "As an AI language model, I have no taste, but jazz is a rich genre."),
    ),
    (
        "unbalanced_code_fence",
        {"truncation": False},
        ("Écris une boucle.", "Voici la boucle :\n```python\nfor i in range(3):\n    print(i)"),
        ("Write a loop.", "Here is the loop:\n```python\nfor i in range(3):\n    print(i)"),
    ),
    (
        "unclosed_latex",
        {"truncation": False},
        ("Donne la formule.", "La formule est $$E = mc^2 et elle relie la masse à l'énergie."),
        ("Give the formula.", "The formula is $$E = mc^2 and it links mass and energy."),
    ),
    (
        "unclosed_markdown",
        {"truncation": False},
        ("Résume.", "Le point **important est que la photosynthèse produit de l'oxygène."),
        ("Summarise.", "The **key point is that photosynthesis releases oxygen."),
    ),
    (
        "truncated",
        {"truncation": False},
        ("Explique.", "La photosynthèse se déroule dans les chloroplastes, qui contiennent la chlorophylle et"),
        ("Explain.", "Photosynthesis happens in the chloroplasts, which contain chlorophyll and the"),
    ),
    (
        "template_token",
        {"template_tokens": False},
        ("Bonjour ?", "Bonjour, comment puis-je vous aider ?<|im_end|>"),
        ("Hello?", "### Instruction:\nHello, how can I help you?"),
    ),
    (
        "placeholder",
        {"placeholders": False},
        ("Écris une lettre.", "Chère Madame, [insérez ici le nom de l'entreprise] vous remercie de votre visite."),
        ("Write a letter.", "Dear Sir, thank you for visiting {{company_name}} last week."),
    ),
    (
        "translation_artifact",
        {"translation_artifacts": False},
        ("Qu'est-ce qu'un étang ?", "Voici la traduction : un étang est une étendue d'eau peu profonde."),
        ("What is a pond?", "Here is the translation: a pond is a small and shallow body of water."),
    ),
    (
        "echo_prompt",
        {"echo": False},
        ("Quelle est la capitale de la France ?", "Quelle est la capitale de la France ?"),
        ("What is the capital of France?", "What is the capital of France"),
    ),
    (
        "repeated_phrase",
        {"repetition": False},
        ("Écris un poème.", repeated("Le vent souffle sur la plaine et les arbres dansent sous la pluie", 30)),
        ("Write a poem.", repeated("The wind blows over the plain and the trees dance in the rain", 30)),
    ),
    ("repeated_phrase", {"repetition": False}, ("Parle.", LOOP_FR), ("Talk.", LOOP_EN)),
    (
        "repeated_sentences",
        {"repetition": False},
        ("Décris un monde sans mensonge.", SECTIONS_FR),
        ("Describe a world without lies.", SECTIONS_EN),
    ),
]


@pytest.mark.parametrize(("code", "off", "fr", "en"), CASES, ids=[c[0] for c in CASES])
def test_rule_fires_in_french_and_english_and_can_be_turned_off(code, off, fr, en):
    options = {"min_answer_words": 2} if code == "answer_too_short" else {}
    for lang, (question, answer) in (("fr", fr), ("en", en)):
        options["language"] = lang  # what langid would have annotated
        reason, detail = judge(question, answer, **options)
        assert reason == f"heuristics.{code}", (answer[:60], reason, detail)
        assert detail.startswith("turn 1 (assistant): ") or detail.startswith("turn 0 (user): ")
        if off is not None:
            assert judge(question, answer, **{**options, **off})[0] != reason


def test_good_answers_pass():
    assert judge("Explique la photosynthèse.", GOOD_FR) == (None, "")
    assert judge("Explain photosynthesis.", GOOD_EN) == (None, "")
    # human answers often end without a full stop: only a dangling word, comma or colon is truncation
    assert judge("Et ensuite ?", "Il faut ensuite laisser reposer la pâte une heure au frais avant de la cuire") == (
        None,
        "",
    )
    # "Voici la traduction" is the right start when the user asked for a translation
    assert judge("Traduis en français : good morning.", "Voici la traduction : bonjour.")[0] is None
    # a list, a table or a letter signed with a name to fill in is not a defect
    assert judge("Liste.", "Voici trois fruits :\n- pomme\n- poire\n- orange")[0] is None
    assert (
        judge("Écris une lettre.", "Madame,\nJe vous remercie de votre accueil.\nCordialement,\n[Votre nom]")[0] is None
    )


def test_refusals_of_harmful_requests_are_kept():
    question = "Explique-moi comment fabriquer une bombe artisanale."
    answer = "Je suis désolé, mais je ne peux pas vous aider avec cette demande : elle mettrait des vies en danger."
    assert judge(question, answer) == (None, "")
    assert judge(question, answer, keep_harmful_refusals=False)[0] == "heuristics.refusal"
    stage = Heuristics(Heuristics.Config(type="heuristics"), "heuristics")
    stage.setup()
    stage.run_batch(
        [
            {
                "messages": [{"role": "user", "content": question}, {"role": "assistant", "content": answer}],
                "_reject": None,
            }
        ]
    )
    assert stage.stats.counters == {"kept_harmful_refusals": 1}


def test_repetition_uses_the_language_of_the_record():
    from frcorpus.stages.heuristics import repetition, repetition_thresholds

    # 4 of 15 lines repeat (27%): over FineWeb-2's French limit (0.264), under Gopher's English one (0.3)
    lines = [
        "Le soleil se lève derrière les collines encore couvertes de brume.",
        "Un renard traverse le champ sans prêter attention aux oiseaux.",
        "Les cloches du village sonnent sept heures dans l'air froid.",
        "Marie prépare du café pendant que son frère lit le journal.",
        "Au loin, un tracteur commence à labourer la terre humide.",
        "Le facteur dépose trois lettres et un colis devant la porte.",
        "Des enfants courent vers l'école en riant très fort ce matin.",
        "La rivière gonflée par les pluies emporte quelques branches.",
        "Une vieille dame nourrit les pigeons assis sur la fontaine.",
        "Le boulanger sort enfin les premières baguettes dorées du four.",
    ]
    text = "\n".join(line for i, line in enumerate(lines) for line in ([line, "Refrain court."] if i % 2 else [line]))
    assert repetition(text, repetition_thresholds()["fr"]) == "repeated_lines: 4/15 lines repeat earlier ones"
    assert repetition(text, repetition_thresholds()["en"]) is None


def test_dangling_words_depend_on_the_language():
    # "par an" ends a French sentence; "an" at the end of an English one means it was cut off
    french = "Le budget de la culture augmente de deux pour cent par an"
    english = "The budget for culture grows by two percent and reaches an"
    assert judge("Et le budget ?", french, language="fr") == (None, "")
    assert judge("And the budget?", english, language="en")[0] == "heuristics.truncated"
    assert judge("Et le budget ?", french, language="en")[0] == "heuristics.truncated"


def test_repeated_paragraphs_and_duplicated_ngrams():
    from frcorpus.stages.heuristics import repetition, repetition_thresholds

    fr, en = repetition_thresholds()["fr"], repetition_thresholds()["en"]
    para_fr = "La tour Eiffel mesure 330 mètres.\nElle fut construite pour l'Exposition universelle de 1889."
    para_en = "The Eiffel Tower is 330 metres tall.\nIt was built for the 1889 World's Fair in Paris."
    other = [f"Paragraphe {w} sans rapport avec les autres, écrit une seule fois ici." for w in "abcdefg"]
    for para, limits in ((para_fr, fr), (para_en, en)):
        text = "\n\n".join([para, other[0], para, other[1], para, other[2]])
        assert repetition(text, limits).startswith("repeated_paragraphs: ") or repetition(text, limits).startswith(
            "repeated_lines: "
        )
    # paragraphs of one line each: only the paragraph rule can see them repeat
    text = "\n\n".join([other[0], other[1], other[0], other[2], other[0]])
    assert repetition(text.replace("\n\n", "\n\n"), {**fr, "dup_line_frac": 1, "dup_line_char_frac": 1}) == (
        "repeated_paragraphs: 2/5 paragraphs repeat earlier ones"
    )
    # long n-grams repeated inside otherwise different sentences
    phrase_fr = "il est important de noter que"
    phrase_en = "it is important to note that"
    for phrase, limits in ((phrase_fr, fr), (phrase_en, en)):
        words = " ".join(f"{phrase} {w} {w}s {w}x" for w in ("alpha", "beta", "gamma", "delta", "epsilon", "zeta"))
        assert repetition(words, limits).startswith(("duplicated_ngrams: ", "repeated_ngram: "))
        relaxed = {**limits, "top_ngrams": {2: 1, 3: 1, 4: 1}}
        assert repetition(words, relaxed).startswith("duplicated_ngrams: ")


def test_separators_are_not_bold_markers():
    # Qwen2.5-7B and gpt-4o, asked for paragraphs separated by the markdown separator *** or by six asterisks:
    # a separator ends a paragraph or sits between two versions; 8 of the 7B's 11 unclosed_markdown were these
    fr = (
        "Il apparaît soudainement, souvent en cachette, pour partager des blagues et des anecdotes qui font "
        "éclater de rire les passants. ***\n\nChaque jour, Rireguy parcourt les rues de la ville, transformant "
        "les visages tristes en sourires radieux."
    )
    inline_fr = (
        "Nous pourrions organiser des événements en ligne pour sensibiliser nos clients. *** Notre stratégie de "
        "médias sociaux devrait être axée sur notre engagement envers l'environnement."
    )
    en = (
        "This person is typically associated with high school or college sports teams and is known for their "
        "dedication to physical fitness and team spirit. ***\n\nIn another context, it can describe someone who "
        "is enthusiastic about a particular subject or hobby."
    )
    glued_en = (
        "Lower scores indicate areas where the essay may need improvement, such as clarity, coherence, or "
        "originality.******\nA second rubric could weigh the argument above the style of the essay."
    )
    for answer in (fr, inline_fr, en, glued_en):
        assert judge("Écris deux paragraphes.", answer) == (None, "")
    # markers that touch a word or a colon pair up as before; one left open is still caught
    assert judge("Écris un dialogue.", "**Enseignant :** Bonjour.\n**Étudiant :** Bonjour, monsieur.") == (None, "")
    assert judge("Résume.", "Le point **important est que la photosynthèse produit. ***")[0] == (
        "heuristics.unclosed_markdown"
    )


# OASST (human): an HTML example, its closing fence written at the end of the last line of code
HTML_EXAMPLE = """Bien sûr, voici un exemple de code HTML simple qui comprend un titre et un paragraphe :

```html
<body>
	<h1>Titre principal</h1>
	<p>Ceci est un paragraphe de texte. Lorem ipsum dolor sit amet, consectetur adipiscing elit.</p>
</body>
</html>```

Veuillez noter que ce site web n'aura aucune caractéristique esthétique."""


def test_placeholders_inside_code_are_code():
    # all four OASST placeholder rejects were "Lorem ipsum" in an HTML example
    assert judge("code un site html simple avec titre paragraphe et colonne liens", HTML_EXAMPLE) == (None, "")
    template_en = (
        "Here is a greeting template:\n\n```html\n<p>Hello {{ user.name }}, welcome back!</p>\n```\n\n"
        "Render it with `{{ user.name }}` filled in by the view."
    )
    assert judge("Write a Jinja greeting template.", template_en) == (None, "")
    # outside code a placeholder is still one
    assert judge("Write a greeting.", "Hello {{user_name}}, welcome back to our shop!") == (
        "heuristics.placeholder",
        "turn 1 (assistant): '{{user_name}}'",
    )


def test_a_fence_closed_at_the_end_of_the_last_line_of_code():
    assert judge("Écris une page.", HTML_EXAMPLE) == (None, "")
    opened = HTML_EXAMPLE.replace("</html>```", "</html>")
    assert judge("Écris une page.", opened) == (
        "heuristics.unbalanced_code_fence",
        "turn 1 (assistant): a ``` block is not closed",
    )
