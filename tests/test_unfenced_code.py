"""text/code: code written without a fence, set aside so that only prose is judged."""

from __future__ import annotations

import json

import pytest

from frcorpus.text.code import is_code_line, without_code

# Lines of real answers (vigogne OASST, M-IFEval) and commands a French answer quotes without a fence.
CODE = [
    "sudo apt-get install postgresql",
    "ls -k",
    "cd ~/projets",
    "docker build -t app .",
    'find . -name "*.py"',
    "echo $PATH",
    "pip install numpy",
    "$ python3 manage.py runserver",
    "SELECT nom FROM clients WHERE ville = 'Nantes';",
    "CREATE TABLE clients (id SERIAL PRIMARY KEY, nom TEXT);",
    "select count(*) from orders",
    "import os",
    "from PIL import Image",
    "def convert_images(path_to_folder, output_folder):",
    "for file_name in os.listdir(path_to_folder):",
    "if bassin3 < 100:",
    "else:",
    "return a + b",
    "img = Image.open(os.path.join(path_to_folder, file_name))",
    'print("Ceci est un programme d\'expert en python")',
    "model.fit(X_train, y_train)",
    "})",
    "export class MessageService {",
    "<p>This is my website!</p>",
    '"salaries": [',
    '"nom": "Dupont",',
    "color: red;",
    "[server]",
    "drwxr-xr-x 2 assistant assistant 4096 Feb 4 14:56 Desktop",
]
PROSE = [
    "La photosynthèse est un processus.",
    "Voici le code :",
    "- les salariés ;",
    "Nom(s) et prénom(s)",
    "git est un logiciel de gestion de versions.",
    "for example:",
    "ON THE OTHER HAND, WE DISAGREE",
    "FROM THE START",
    "Find the file and open it.",
    "Note : ceci est important.",
    "Si six scies scient six cigares, six-cent-six scies scient six-cent-six cigares.",
    "    Texte du paragraphe, indenté sous un élément de liste.",
]


@pytest.mark.parametrize("line", CODE)
def test_code_lines(line):
    assert is_code_line(line)
    assert without_code(line) == ""  # a JSON value of one word ("Dupont") is no prose either


@pytest.mark.parametrize("line", PROSE)
def test_prose_lines(line):
    assert not is_code_line(line)
    assert without_code(line) == line.strip()


def test_a_french_answer_keeps_its_prose_and_loses_its_commands():
    answer = (
        "Pour installer PostgreSQL sur Ubuntu, lance :\n\nsudo apt-get install postgresql\n\n"
        "Crée ensuite la table et interroge-la :\n\n"
        "CREATE TABLE clients (id SERIAL PRIMARY KEY, nom TEXT, ville TEXT);\n"
        "SELECT nom FROM clients WHERE ville = 'Nantes';\n\nLa requête renvoie les noms des clients nantais."
    )
    assert without_code(answer).split("\n") == [
        "Pour installer PostgreSQL sur Ubuntu, lance :",
        "",
        "",
        "",
        "Crée ensuite la table et interroge-la :",
        "",
        "",
        "",
        "",
        "La requête renvoie les noms des clients nantais.",
    ]


def test_json_keeps_what_its_values_say(shared_data):
    """Claude 3.5 Sonnet's answer to M-IFEval prompt 162 (« Formate l'ensemble de ta réponse en JSON »):
    its French sits in indented JSON values, its code in a fence that opens after a key. Markdown's
    indented-code rule took the French away and judged the Python."""
    path = (
        shared_data / "instruct_fr" / "mifeval_fr_responses" / "fr_input_response_data_claude-3-5-sonnet-20240620.jsonl"
    )
    answer = json.loads(path.read_text(encoding="utf-8").splitlines()[162])["response"]
    prose = [line for line in without_code(answer).split("\n") if line]
    assert prose[0] == "Voici mon avis sur les effets de l'IA sur le monde du travail :"
    assert '"Automatisation des tâches répétitives",' in prose
    assert not any("pandas" in line or "RandomForestClassifier" in line for line in prose)
    assert prose[-1].startswith("J'espère que cette analyse t'aide")


def test_fenced_code_still_goes_whole():
    assert without_code("Voici :\n```python\nprint('x')\nSome English text\n```\nFin.") == "Voici :\n\n\n\n\nFin."
    assert without_code("Voici : ```print('x')``` fin") == "Voici :  fin"
