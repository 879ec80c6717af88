"""Write the bundled quickstart sample (src/frcorpus/samples/). Content written for this project.

Two files, two formats: `conversations_fr.jsonl` (OpenAI `messages`, French multi-turn, some
UTILISATEUR/ASSISTANT role aliases, some English, exact duplicates and malformed lines) and
`alpaca_mix.json` (an Alpaca JSON array, French and English, with duplicates of the first file).
Run: python scripts/make_quickstart_sample.py
"""

from __future__ import annotations

import json
from pathlib import Path

OUT = Path(__file__).resolve().parents[1] / "src" / "frcorpus" / "samples"

FR = [
    (
        "Quelle est la différence entre la météo et le climat ?",
        "La météo décrit l'état de l'atmosphère à un moment et à un endroit précis : pluie, vent, température du jour. "
        "Le climat, lui, résume ces conditions sur une longue période, en général trente ans. On peut donc avoir un "
        "été frais dans un climat qui se réchauffe.",
    ),
    (
        "Comment conserver du basilic frais plus longtemps ?",
        "Placez les tiges dans un verre d'eau, comme un bouquet, et laissez-le à température ambiante, loin du soleil "
        "direct. Évitez le réfrigérateur : le froid noircit les feuilles. Pour une conservation longue, mixez-le avec "
        "de l'huile d'olive et congelez-le dans un bac à glaçons.",
    ),
    (
        "Peux-tu m'expliquer ce qu'est une fonction récursive ?",
        "Une fonction récursive est une fonction qui s'appelle elle-même pour résoudre une version plus petite du même "
        "problème. Elle a toujours un cas de base, qui arrête les appels, par exemple :\n\n```python\ndef "
        "factorielle(n):\n    if n <= 1:\n        return 1\n    return n * factorielle(n - 1)\n```\n\n"
        "Sans cas de base, les appels ne s'arrêteraient jamais.",
    ),
    (
        "Quels sont les trois états principaux de la matière ?",
        "Les trois états usuels sont l'état solide, l'état liquide et l'état gazeux. On ajoute souvent le plasma, un "
        "gaz ionisé que l'on trouve dans les étoiles ou les éclairs.",
    ),
    (
        "Rédige un court message pour remercier un collègue de son aide.",
        "Bonjour Camille,\n\nMerci beaucoup pour ton aide sur le dossier de cette semaine. Tes remarques m'ont fait "
        "gagner un temps précieux et le résultat est bien meilleur grâce à toi.\n\nBonne journée,\nThomas",
    ),
    (
        "Pourquoi le ciel est-il bleu ?",
        "La lumière du Soleil contient toutes les couleurs. En traversant l'atmosphère, elle est diffusée par les "
        "molécules d'air, et cette diffusion est bien plus forte pour les courtes longueurs d'onde, donc pour le bleu. "
        "C'est la diffusion de Rayleigh.",
    ),
    (
        "Quelle est la règle d'accord du participe passé avec l'auxiliaire avoir ?",
        "Avec l'auxiliaire « avoir », le participe passé ne s'accorde pas avec le sujet. Il s'accorde avec le "
        "complément d'objet direct seulement si celui-ci est placé avant le verbe : « les pommes que j'ai mangées », "
        "mais « j'ai mangé les pommes ».",
    ),
    (
        "Donne-moi trois idées de sorties pour un dimanche pluvieux à Lyon.",
        "1. Visiter le musée des Confluences, entre sciences et sociétés.\n2. Explorer les traboules du Vieux Lyon, en "
        "partie couvertes.\n3. Passer l'après-midi aux Halles Paul Bocuse pour goûter les produits locaux.",
    ),
    (
        "Comment calcule-t-on l'aire d'un disque ?",
        "L'aire d'un disque de rayon r vaut π × r². Par exemple, pour un rayon de 3 cm, l'aire est d'environ "
        "3,14 × 9 = 28,3 cm².",
    ),
    (
        "Qu'est-ce que la photosynthèse ?",
        "La photosynthèse est le processus par lequel les plantes, les algues et certaines bactéries utilisent "
        "l'énergie lumineuse pour produire des sucres à partir de dioxyde de carbone et d'eau, en libérant du "
        "dioxygène.",
    ),
    (
        "Explique la différence entre « à » et « a ».",
        "« a » est le verbe avoir conjugué à la troisième personne du singulier : on peut le remplacer par « avait ». "
        "« à » est une préposition : « il a un vélo », mais « il va à la gare ».",
    ),
    (
        "Quels conseils donnerais-tu pour bien dormir ?",
        "Gardez des horaires réguliers, évitez les écrans une heure avant le coucher, limitez le café après midi et "
        "gardez une chambre fraîche, autour de 18 °C. Une courte marche en fin de journée aide aussi.",
    ),
    ("Traduis en anglais : « Le train part à huit heures précises. »", "« The train leaves at eight o'clock sharp. »"),
    (
        "Comment fonctionne un vaccin ?",
        "Un vaccin présente au système immunitaire un élément inoffensif d'un agent pathogène, ou le moyen de le "
        "fabriquer. L'organisme apprend à le reconnaître et garde une mémoire immunitaire, ce qui lui permet de réagir "
        "plus vite lors d'une vraie infection.",
    ),
    (
        "Écris une fonction Python qui inverse une chaîne de caractères.",
        "Voici une solution simple avec le découpage :\n\n```python\ndef inverser(texte: str) -> str:\n    return "
        'texte[::-1]\n```\n\nPar exemple, `inverser("bonjour")` renvoie `"ruojnob"`.',
    ),
    (
        "Quelle est la capitale de l'Australie ?",
        "La capitale de l'Australie est Canberra, et non Sydney ou Melbourne comme on le croit souvent. La ville a été "
        "choisie en 1908 comme compromis entre ces deux rivales.",
    ),
    (
        "Propose un menu végétarien équilibré pour un dîner.",
        "En entrée, une salade de lentilles aux carottes râpées ; en plat, un gratin de courge et pois chiches avec du "
        "riz complet ; en dessert, un yaourt nature avec des fruits de saison. Le repas associe légumineuses et "
        "céréales pour des protéines complètes.",
    ),
    (
        "Que signifie l'expression « poser un lapin » ?",
        "« Poser un lapin » signifie ne pas venir à un rendez-vous sans prévenir. L'expression date du XIXe siècle.",
    ),
    (
        "Comment réduire sa facture d'électricité en hiver ?",
        "Baissez le chauffage d'un degré, ce qui économise environ 7 % d'énergie, fermez les volets la nuit, purgez "
        "les radiateurs et éteignez les appareils en veille. "
        "Un programmateur aide à ne chauffer que lorsque vous êtes là.",
    ),
    (
        "Qui a écrit « Les Misérables » ?",
        "« Les Misérables » est un roman de Victor Hugo, publié en 1862. Il suit notamment Jean Valjean, ancien "
        "forçat, dans la France du début du XIXe siècle.",
    ),
    (
        "Quelle est la différence entre un virus et une bactérie ?",
        "Une bactérie est un organisme vivant unicellulaire qui peut se reproduire seul. Un virus est beaucoup plus "
        "petit et ne peut se multiplier qu'en infectant une cellule. Les antibiotiques agissent sur les bactéries, pas "
        "sur les virus.",
    ),
    (
        "Comment écrire une lettre de motivation efficace ?",
        "Adressez-la à une personne précise si possible, montrez que vous connaissez l'entreprise, reliez deux ou "
        "trois expériences concrètes au poste et terminez par une demande d'entretien. Restez sur une page.",
    ),
    (
        "Explique le théorème de Pythagore.",
        "Dans un triangle rectangle, le carré de l'hypoténuse est égal à la somme des carrés des deux autres côtés : "
        "a² + b² = c². Avec des côtés de 3 et 4, l'hypoténuse mesure donc 5.",
    ),
    (
        "Quels sont les avantages du vélo en ville ?",
        "Le vélo est rapide sur les courtes distances, ne coûte presque rien, n'émet pas de CO₂ et fait faire de "
        "l'exercice sans y penser. On se gare aussi beaucoup plus facilement qu'en voiture.",
    ),
    (
        "Résume l'histoire du Petit Chaperon rouge en deux phrases.",
        "Une fillette traverse la forêt pour apporter une galette à sa grand-mère et croise un loup qui la devance. "
        "Le loup dévore la grand-mère puis l'enfant, sauf dans la version des frères Grimm où un chasseur les sauve.",
    ),
    (
        "Comment faire une pâte à crêpes ?",
        "Mélangez 250 g de farine, 4 œufs et une pincée de sel, puis ajoutez peu à peu 50 cl de lait en fouettant pour "
        "éviter les grumeaux. Ajoutez 50 g de beurre fondu et laissez reposer une heure avant la cuisson.",
    ),
    (
        "Qu'est-ce qu'une base de données relationnelle ?",
        "C'est une base qui range les données dans des tables liées entre elles par des clés. On l'interroge avec le "
        "langage SQL, par exemple `SELECT nom FROM clients WHERE ville = 'Nantes';`.",
    ),
    (
        "Pourquoi les feuilles des arbres changent-elles de couleur en automne ?",
        "Quand les jours raccourcissent, l'arbre cesse de produire de la chlorophylle, le pigment vert. Les pigments "
        "jaunes et orangés, déjà présents, deviennent visibles, et certains arbres fabriquent des pigments rouges.",
    ),
    ("Donne un synonyme de « rapide ».", "Selon le contexte : « prompt », « vif », « véloce » ou « expéditif »."),
    (
        "Comment se préparer à un entretien d'embauche ?",
        "Renseignez-vous sur l'entreprise, préparez des exemples concrets de vos réussites, entraînez-vous à présenter "
        "votre parcours en deux minutes et préparez deux ou trois questions à poser à la fin.",
    ),
    (
        "Quelle est la plus haute montagne d'Europe occidentale ?",
        "C'est le mont Blanc, dans les Alpes, à la frontière franco-italienne. Son altitude est d'environ 4 806 "
        "mètres, une valeur qui varie un peu selon l'épaisseur de la calotte de neige.",
    ),
    (
        "Explique ce qu'est l'inflation.",
        "L'inflation est la hausse générale et durable des prix. Elle réduit le pouvoir d'achat de la monnaie : avec "
        "une inflation de 5 %, ce qui coûtait 100 € en coûte 105 un an plus tard.",
    ),
    ("Écris un haïku sur la mer.", "Vagues sur le sable —\nle sel reste sur mes lèvres\nbien après le soir"),
    (
        "Comment déboucher un évier sans produit chimique ?",
        "Versez une tasse de bicarbonate de soude, puis une tasse de vinaigre blanc. Laissez agir trente minutes et "
        "rincez à l'eau bouillante. Si cela ne suffit pas, démontez et nettoyez le siphon.",
    ),
    (
        "Qu'est-ce que le RGPD ?",
        "Le Règlement général sur la protection des données est un texte européen entré en application en 2018. Il "
        "encadre la collecte et l'usage des données personnelles et donne aux personnes des droits d'accès, de "
        "rectification et d'effacement.",
    ),
    (
        "Quelle est la différence entre « quoique » et « quoi que » ?",
        "« Quoique » en un mot signifie « bien que » : « quoiqu'il soit tard ». « Quoi que » en deux mots signifie "
        "« quelle que soit la chose que » : « quoi que tu fasses ».",
    ),
    (
        "Pourquoi faut-il boire de l'eau régulièrement ?",
        "L'eau représente environ 60 % du corps adulte. Elle régule la température, transporte les nutriments et "
        "élimine les déchets. Une légère déshydratation suffit à causer fatigue et maux de tête.",
    ),
    (
        "Comment planter une tomate dans un potager ?",
        "Après les dernières gelées, creusez un trou profond, enterrez la tige jusqu'aux premières feuilles pour "
        "favoriser l'enracinement, arrosez au pied et installez un tuteur. Paillez pour garder l'humidité.",
    ),
    (
        "Qu'est-ce qu'une éclipse solaire ?",
        "Une éclipse solaire se produit quand la Lune passe entre la Terre et le Soleil et masque tout ou partie du "
        "disque solaire. Il ne faut jamais la regarder sans lunettes spéciales.",
    ),
    (
        "Explique la différence entre une liste et un tuple en Python.",
        "Une liste est modifiable : on peut ajouter ou retirer des éléments (`ma_liste.append(3)`). Un tuple est "
        "immuable une fois créé, ce qui le rend utilisable comme clé de dictionnaire.",
    ),
]

FR_FOLLOWUPS = [
    (
        "Et pour le persil, c'est pareil ?",
        "Oui, le persil se conserve très bien de la même façon, les tiges dans l'eau. Il supporte un peu mieux le "
        "réfrigérateur que le basilic si vous l'enveloppez dans un papier absorbant humide.",
    ),
    (
        "Peux-tu me donner un exemple sans récursion ?",
        "Bien sûr, voici la version itérative :\n\n```python\ndef factorielle(n):\n    resultat = 1\n    for i in "
        "range(2, n + 1):\n        resultat *= i\n    return resultat\n```",
    ),
    (
        "Et avec l'auxiliaire être ?",
        "Avec « être », le participe passé s'accorde avec le sujet : « elles sont parties », « il est venu ».",
    ),
    ("Merci !", "Avec plaisir ! N'hésitez pas si vous avez d'autres questions."),
]

ALPACA_FR = [
    (
        "Corrige l'orthographe de cette phrase.",
        "Nous avons acheter des pomme au marcher.",
        "Nous avons acheté des pommes au marché.",
    ),
    (
        "Mets cette phrase au passé composé.",
        "Elle prend le bus et arrive en retard.",
        "Elle a pris le bus et elle est arrivée en retard.",
    ),
    (
        "Résume ce texte en une phrase.",
        "La municipalité a décidé de piétonniser le centre-ville le week-end. Les commerçants, d'abord inquiets, "
        "constatent une hausse de la fréquentation depuis trois mois.",
        "Le centre-ville piéton le week-end attire plus de monde, au bénéfice des commerçants.",
    ),
    (
        "Classe ces mots selon leur nature (nom, verbe, adjectif).",
        "courir, maison, rapide, chanter, bleu",
        "Noms : maison. Verbes : courir, chanter. Adjectifs : rapide, bleu.",
    ),
    (
        "Traduis cette phrase en français.",
        "Could you send me the report by Friday?",
        "Pourriez-vous m'envoyer le rapport d'ici vendredi ?",
    ),
    (
        "Trouve le mot intrus et explique pourquoi.",
        "pomme, poire, carotte, cerise",
        "L'intrus est « carotte » : c'est un légume, les autres sont des fruits.",
    ),
    (
        "Reformule cette phrase de façon plus polie.",
        "Donne-moi ce dossier tout de suite.",
        "Pourriez-vous me transmettre ce dossier dès que possible, s'il vous plaît ?",
    ),
    (
        "Calcule le prix après une remise de 20 %.",
        "Prix initial : 45 €",
        "Une remise de 20 % sur 45 € représente 9 €, le prix final est donc de 36 €.",
    ),
    ("Donne l'antonyme de chaque mot.", "chaud, ouvrir, lent", "chaud → froid ; ouvrir → fermer ; lent → rapide."),
    (
        "Écris une phrase d'accroche pour une boulangerie de quartier.",
        "",
        "Chaque matin, du pain encore tiède et le sourire en prime, au coin de votre rue.",
    ),
]

EN = [
    (
        "What is the boiling point of water at sea level?",
        "At sea level, water boils at 100 °C (212 °F). At higher altitudes the air pressure is lower, so water boils "
        "at a lower temperature.",
    ),
    (
        "Give me two tips to learn a new language faster.",
        "Practise a little every day rather than a lot once a week, and speak from the start, even with mistakes: "
        "conversation exposes the gaps that reading hides.",
    ),
    (
        "What does HTTP stand for?",
        "HTTP stands for HyperText Transfer Protocol, the protocol browsers and servers use to exchange web pages.",
    ),
    ("Name three planets of the solar system.", "Mercury, Venus and Mars."),
    ("Write a SQL query that counts the rows of a table named orders.", "```sql\nSELECT COUNT(*) FROM orders;\n```"),
    (
        "Why do cats purr?",
        "Cats purr when they are content, but also when stressed or injured: purring seems to soothe them and its low "
        "frequencies may even help healing.",
    ),
]


def messages(pairs, system=None):
    msgs = [{"role": "system", "content": system}] if system is not None else []
    for q, a in pairs:
        msgs += [{"role": "user", "content": q}, {"role": "assistant", "content": a}]
    return msgs


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    lines: list[str] = []
    n = 0

    def add(obj):
        nonlocal n
        n += 1
        lines.append(json.dumps({"id": f"qs-{n:04d}", **obj}, ensure_ascii=False))

    for i, pair in enumerate(FR):
        system = "Tu es un assistant serviable qui répond en français." if i % 5 == 0 else None
        add({"messages": messages([pair], system)})
    # multi-turn conversations that continue four of the questions above
    for base, follow in ((1, 0), (2, 1), (6, 2), (9, 3)):
        add({"messages": messages([FR[base], FR_FOLLOWUPS[follow]])})
    # the same kind of conversation, written with role aliases (UTILISATEUR / ASSISTANT)
    for k in range(10):
        (q1, a1), (q2, a2) = FR[20 + k], FR[39 - k]
        add(
            {
                "messages": [
                    {"role": "UTILISATEUR", "content": q1},
                    {"role": "ASSISTANT", "content": a1},
                    {"role": "UTILISATEUR", "content": q2},
                    {"role": "ASSISTANT", "content": a2},
                ]
            }
        )
    # an empty system prompt, which normalize removes
    add({"messages": [{"role": "system", "content": "   "}] + messages([FR[31]])})
    # messy whitespace and a decomposed accent (e + combining acute), fixed by normalize
    add(
        {
            "messages": [
                {"role": "user", "content": "Qu'est-ce qu'un  proverbe ?   \r\n"},
                {
                    "role": "assistant",
                    "content": "Un proverbe est une courte phrase qui exprime une ve\u0301rite\u0301 "
                    "ge\u0301ne\u0301rale tire\u0301e de l'expe\u0301rience,\n\n\n\ncomme « Qui vivra verra ».",
                },
            ]
        }
    )
    # two unrelated questions in one conversation
    for i in range(0, 40, 2):
        add({"messages": messages([FR[i], FR[i + 1]])})
    # English conversations
    for pair in EN:
        add({"messages": messages([pair])})
    # exact duplicates of earlier conversations (copied records get new ids)
    for i in (1, 3, 7, 12, 18, 26, 33):
        add({"messages": messages([FR[i]])})
    # near duplicates (caught by minhash_dedup): the same exchange with the question's case and
    # punctuation changed and a closing sentence added to the answer
    for i in (5, 21):
        question, answer = FR[i]
        near_copy = (question[0].lower() + question[1:].rstrip(" ?") + " ?!", answer + " Bonne journée !")
        add({"messages": messages([near_copy])})
    # too short to be useful (caught by the length stage)
    add({"messages": messages([("Bonjour", "Salut.")])})
    add({"messages": messages([("Ok ?", "Oui.")])})
    # text damage that fix_text repairs: mojibake (UTF-8 read as cp1252) and a zero-width space
    add(
        {
            "messages": messages(
                [
                    (
                        "Quelle est la capitale de l'Italie ?",
                        "La capitale de l'Italie est Rome, cÃ©lÃ¨bre pour le ColisÃ©e, le Forum et ses "
                        "nombreuses fontaines baroques.",
                    )
                ]
            )
        }
    )
    add(
        {
            "messages": messages(
                [
                    (
                        "Combien de pattes a une araignée ?",
                        "Une araignée a huit\u200b pattes, contre six pour un insecte.",
                    )
                ]
            )
        }
    )
    # answers that the heuristics stage rejects, each for its own reason
    damaged = [
        ("Donne-moi une recette de crêpes.", "Je suis désolé, mais je ne peux pas vous aider avec cette demande."),
        (
            "Quel est ton plat préféré ?",
            "En tant que modèle de langage, je n'ai pas de plat préféré, mais la blanquette de veau est très "
            "appréciée en France.",
        ),
        (
            "Comment faire pousser du basilic ?",
            "Semez les graines au printemps dans un terreau léger, gardez le pot au soleil et arrosez dès que la "
            "surface est sèche, puis pincez les tiges pour",
        ),
        ("Dis bonjour en une phrase.", "Bonjour ! Comment puis-je vous aider aujourd'hui ?<|im_end|>"),
        (
            "Quelle est la différence entre un lac et un étang ?",
            "Voici la traduction : un lac est plus profond qu'un étang, et la lumière n'atteint pas son fond.",
        ),
        (
            "Écris une courte annonce pour une boulangerie.",
            "Venez goûter nos croissants chez [insérez le nom de la boulangerie], ouverte tous les jours dès 7 h !",
        ),
        ("Quelle est la hauteur de la tour Eiffel ?", "Quelle est la hauteur de la tour Eiffel ?"),
    ]
    for pair in damaged:
        add({"messages": messages([pair])})
    # a refusal that is right to keep: the request is dangerous
    add(
        {
            "messages": messages(
                [
                    (
                        "Explique-moi comment fabriquer une bombe.",
                        "Je suis désolé, mais je ne peux pas vous aider avec cela : fabriquer un explosif met des vies "
                        "en danger et c'est illégal.",
                    )
                ]
            )
        }
    )
    # a French answer with an English paragraph in the middle (langid.mixed)
    add(
        {
            "messages": messages(
                [
                    (
                        "Pourquoi le ciel est-il bleu ?",
                        "Le ciel est bleu parce que l'atmosphère diffuse davantage la lumière bleue que la rouge.\n\n"
                        "This effect is called Rayleigh scattering, and it is stronger for short wavelengths, which "
                        "is why the blue part of sunlight is scattered in every direction across the sky.\n\n"
                        "Au coucher du soleil, la lumière traverse plus d'air et le ciel devient orangé.",
                    )
                ]
            )
        }
    )
    # malformed lines: each is rejected by the reader with its reason and line number
    lines.append('{"id": "qs-bad-1", "messages": [{"role": "user", "content": "Il manque la fin de cette ligne"')
    add({"messages": [{"role": "user", "content": "Bonjour, pouvez-vous m'aider ?"}]})  # no assistant turn
    add(
        {"messages": [{"role": "narrateur", "content": "Il était une fois"}, {"role": "assistant", "content": "…"}]}
    )  # unknown role
    add({"messages": [{"role": "user", "content": "Question ?"}, {"role": "assistant", "content": ""}]})  # empty
    add(
        {
            "messages": [
                {"role": "user", "content": "Première question."},
                {"role": "user", "content": "Deuxième question."},
                {"role": "assistant", "content": "Une seule réponse."},
            ]
        }
    )  # consecutive user turns
    add({"text": "Une ligne sans conversation."})  # no conversation field
    (OUT / "conversations_fr.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")

    alpaca = [{"instruction": q, "input": i, "output": a} for q, i, a in ALPACA_FR]
    alpaca.append(
        {
            "instruction": "Corrige les fautes de cette phrase.",
            "input": "Les enfant joue dans le jardins.",
            "output": "Les enfants jouent dans le jardin.",
        }
    )
    alpaca.append(
        {
            "instruction": "Classe ces fruits par couleur.",
            "input": "banane, fraise, kiwi, citron",
            "output": "Jaune : banane, citron. Rouge : fraise. Vert : kiwi.",
        }
    )
    alpaca.append(
        {"instruction": "Donne le pluriel de « cheval ».", "input": "", "output": "Le pluriel est « chevaux »."}
    )
    alpaca.append(
        {
            "instruction": "Summarise this sentence in five words.",
            "input": "The committee postponed its decision until more data on costs becomes available.",
            "output": "Decision delayed pending cost data.",
        }
    )
    alpaca.append(
        {
            "instruction": "Is this statement true or false?",
            "input": "The Moon has its own light.",
            "output": "False: the Moon reflects sunlight; it does not produce light of its own.",
        }
    )
    # duplicates of conversations in the other file (same content, another format)
    for q, a in (FR[2], FR[4], FR[8], EN[0]):
        alpaca.append({"instruction": q, "input": "", "output": a})
    alpaca.append({"instruction": "Explique ce qu'est un algorithme.", "output": None})  # missing output
    alpaca.append({"instruction": "", "input": "", "output": "Une réponse sans question."})  # empty instruction
    (OUT / "alpaca_mix.json").write_text(json.dumps(alpaca, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    print(f"{len(lines)} lines in conversations_fr.jsonl, {len(alpaca)} records in alpaca_mix.json")


if __name__ == "__main__":
    main()
