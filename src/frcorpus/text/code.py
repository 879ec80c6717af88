"""Code in markdown text: fenced blocks (``` or ~~~), whose exact bytes every stage keeps, and code
written without a fence (shell commands, SQL, JSON, configuration, program lines, terminal output),
which a stage that judges prose (language identification) sets aside with `without_code`."""

from __future__ import annotations

import re

# A fenced code block anywhere in a text, through its closing fence or the end (for stages that only
# need to set code aside; CODE_FENCE below keeps the exact fence lines for splitting a text).
FENCED_CODE = r"```.*?(?:```|\Z)|~~~.*?(?:~~~|\Z)"
# A fenced code block (``` or ~~~), through its closing fence or the end of the text.
CODE_FENCE = re.compile(r"(^|\n)([ \t]*(```|~~~)[^\n]*\n.*?(?:\n[ \t]*\3[ \t]*(?=\n|$)|$))", re.S)
FENCED = re.compile(FENCED_CODE, re.S)


def split_code(text: str) -> list[tuple[bool, str]]:
    """Split text into (is_code, chunk) pieces so that fenced code keeps its exact bytes."""
    parts: list[tuple[bool, str]] = []
    pos = 0
    for m in CODE_FENCE.finditer(text):
        start = m.start(2)
        if start > pos:
            parts.append((False, text[pos:start]))
        parts.append((True, m.group(2)))
        pos = m.end(2)
    if pos < len(text):
        parts.append((False, text[pos:]))
    return parts


# Unfenced code, one line at a time (the line stripped). Every alternative needs something prose does
# not write: a command a shell runs, SQL keywords in capitals, program syntax, a JSON key, an ls -l row.
# Shell commands that are also English words (echo, find, make...) count only with an argument that
# prose does not write (a flag, a path, a variable, a pipe or a redirection).
TOOLS = (
    r"sudo|apt|apt-get|apt-cache|dpkg|yum|dnf|pacman|zypper|snap|flatpak|brew|winget|choco|pip|pip3|pipx|pipenv"
    r"|conda|poetry|virtualenv|pyenv|npm|npx|yarn|pnpm|nvm|bun|deno|tsc|git|cd|ls|ll|mkdir|rmdir|rm|cp|mv|ln"
    r"|chmod|chown|chgrp|curl|wget|docker|docker-compose|podman|kubectl|helm|minikube|terraform|ansible"
    r"|systemctl|journalctl|ssh|scp|rsync|ssh-keygen|tar|unzip|gzip|gunzip|zip|grep|egrep|sed|awk|xargs"
    r"|ifconfig|ipconfig|netstat|nslookup|traceroute|psql|mysql|sqlite3|mongosh|redis-cli|gcc|g\+\+|clang"
    r"|javac|mvn|gradle|cargo|rustc|rustup|dotnet|composer|ffmpeg|openssl|nmap|pwd|whoami|crontab|useradd"
    r"|usermod|passwd|uvicorn|gunicorn|pytest|jupyter|heroku|gcloud|aws|ollama|huggingface-cli|python3|nano|vim"
)
WORD_COMMANDS = (
    r"echo|cat|find|make|source|export|python|node|java|go|ping|kill|top|man|head|tail|sort|touch|less|more|which"
    r"|history|service|set|unset|alias|wc|du|df|ps|env|read|test|time|printf|exit|open|start|code|php|ruby|perl"
)
SHELL_ARGUMENT = r"(?:\s-{1,2}\w|\s[~.]?/|\s\$\w|\s\$\{|\s*(?:\||&&|>>?|<)\s|=|\s['\"]|\s[\w.-]+\.[a-z]{1,5}\b)"
NOT_A_SENTENCE_END = r"(?<![\w)\"'»][.!?])$"  # a command line may end with " ." but not with a word's full stop
CODE_LINE = re.compile(
    "|".join(
        [
            # a shell prompt, a shebang
            r"(?:\$|>>>|#!|PS [^>]{0,40}>|[\w.-]+@[\w.-]+:[^\s$#]*[$#]|[A-Z]:\\[^>]*>)\s*\S",
            # a command: a tool's name, or a word command with an argument prose would not write
            rf"(?:sudo\s+)?(?:{TOOLS})(?:\s+\S.*)?{NOT_A_SENTENCE_END}",
            rf"(?:{WORD_COMMANDS})\b(?=.*{SHELL_ARGUMENT}).*{NOT_A_SENTENCE_END}",
            # SQL: its keywords in capitals, then something beyond capitals (a name, `*`, `(`, `;`, `=`)
            r"(?:SELECT|INSERT\s+INTO|UPDATE\s+\S+\s+SET|DELETE\s+FROM|CREATE\s+(?:OR\s+REPLACE\s+)?(?:TABLE|VIEW|INDEX"
            r"|UNIQUE|DATABASE|SCHEMA|FUNCTION|PROCEDURE|TRIGGER)|DROP\s+(?:TABLE|VIEW|INDEX|DATABASE)|ALTER\s+TABLE"
            r"|FROM|WHERE|(?:(?:INNER|LEFT|RIGHT|FULL|CROSS)\s+(?:OUTER\s+)?)?JOIN|GROUP\s+BY|ORDER\s+BY|HAVING|LIMIT"
            r"|VALUES|UNION(?:\s+ALL)?|WITH\s+\w+\s+AS)\b(?=.*[a-z*(;=]).*(?<![\w)][.!?])$",
            r"select\s+.+\s+from\s+\w+.*(?<![\w)][.!?])$",
            # program lines: imports, definitions, declarations, control flow, calls, assignments, blocks
            r"(?:import\s+[\w.]+(?:\s+as\s+\w+)?(?:\s*,\s*[\w.]+)*;?|from\s+[\w.]+\s+import\s+.+|#include\s*[<\"].*"
            r"|using\s+[\w.]+;|package\s+[\w.]+;|require\(.*|@\w+(?:\(.*\))?)$",
            r"(?:async\s+)?(?:def|fn|func|function)\s+\w+\s*\(.*$",
            r"(?:class|struct|enum|interface|trait|impl)\s+\w+.*[:{]$",
            r"(?:public|private|protected|static|export|default)\s+.*[({;]$",
            r"(?:const|let|var|val|int|float|double|char|bool|boolean|string|String|auto|void)\s+\w+\s*[=;:\[(].*$",
            r"(?:if|elif|while|for|with|switch|catch|else\s+if)\b.*(?:\)\s*\{|[=<>()\[\].][^:]*:)$",
            r"for\s+\w+(?:\s*,\s*\w+)*\s+in\s+[\w.]+\s*:$",
            r"(?:else|try|finally|do|except(?:\s+\w+(?:\s+as\s+\w+)?)?)\s*[:{]$",
            r"(?:return|yield|raise|throw|await)(?:\s+\S+)?;?$|(?:return|yield)\s.*[=+*/()\[\]<>].*$|(?:break|continue|pass);?$",
            r"[A-Za-z_$][\w.\[\]'\"]*\s*(?:[-+*/%|&^]|//|\*\*)?=(?!=)\s*\S.*$",
            r"[A-Za-z_][\w.]*(?:\[[^\]]*\])*\([^()]*(?:\([^()]*\)[^()]*)*\)\s*[;{]?$",
            r"[\]})]+[;,)]*$|[({\[]$",
            r".*[=(){}\[\]].*[\w)\]'\"];$",
            # HTML or XML tags, comments of code
            r"</?[A-Za-z][\w:-]*(?:\s[^<>]*)?/?>.*$",
            r"(?://|/\*|\*/|<!--|-->)",
            # CSS declarations, JSON keys, configuration `key = value` / `key: value`
            r"[a-z-]+\s*:\s*[^;]+;$",
            r"[\[{]?\s*\"[^\"]*\"\s*:.*$",
            r"\[[\w.-]+\]$",
            r"[a-z_][\w.-]*\s*:\s*(?:[\w./@:-]+|\"[^\"]*\"|'[^']*'|\[.*\]|\{.*\}|\|)?(?<![.!?])$",
            # terminal output: an ls -l row
            r"[-dlcbps][rwxsStT-]{9}[.+@]?\s+\d",
        ]
    )
)
# What a line of code may start with (besides two capitals or a drive letter) or end with: a one-line
# text with neither (most sentences) is not matched against CODE_LINE (callgrind on lingua_sentences:
# 2,900 instructions a sentence, against 6,300 with `endswith` and slices, and some 50,000 matched).
CODE_FIRST = frozenset(' \tabcdefghijklmnopqrstuvwxyz$>#@<{}[]"/*)-')
CAPITAL_START = re.compile(
    r"(?:SELECT|INSERT|UPDATE|DELETE|CREATE|DROP|ALTER|FROM|WHERE|WITH|VALUES|LIMIT|HAVING|GROUP|ORDER|UNION|INNER"
    r"|LEFT|RIGHT|FULL|CROSS|JOIN)\b|[A-Z]:\\|PS "
)  # SQL in capitals, a drive letter, PowerShell's prompt
CODE_LAST = frozenset(";){>}]: \t")  # the last character of a line of code, or a space to strip
INDENT = ("    ", "\t")
JSON_STRING = re.compile(r"\"((?:[^\"\\]|\\.)*)\"")
JSON_LINE = re.compile(r"[\[{]?\s*\"[^\"]*\"\s*[:,\]}]")
JSON_KEY = re.compile(r"[\[{\s]*\"[^\"]*\"\s*:")


def is_code_line(line: str) -> bool:
    """Whether a line (without its line break) is code written without a fence."""
    stripped = line.strip()
    return bool(stripped) and CODE_LINE.match(stripped) is not None


def without_code(text: str) -> str:
    """The text with its code set aside: fenced blocks, indented blocks that hold code and unfenced
    code lines become empty lines, except that JSON keeps its string values of several words (what an
    answer in JSON says); the other lines lose their indentation (nested lists, JSON with prose
    values and poems are indented too, and are prose)."""
    # the tests of one character first: each costs a fifth of `endswith` or of a slice
    if ("`" in text or "~" in text) and ("```" in text or "~~~" in text):
        text = FENCED.sub(lambda m: "\n" * m.group(0).count("\n"), text)
    if "\n" not in text:
        return _without_code_line(text.strip()) if _may_be_code(text) else text
    lines = text.split("\n")
    kept: list[str] = []
    after_blank = True
    i = 0
    while i < len(lines):
        line = lines[i]
        if after_blank and line.startswith(INDENT):
            # markdown's indented code block: indented lines after a blank line, through blank lines;
            # code when one of its lines is (a list item's indented paragraph is prose)
            end = i + 1
            while end < len(lines) and (lines[end].startswith(INDENT) or not lines[end].strip()):
                end += 1
            if any(is_code_line(block_line) for block_line in lines[i:end]):
                kept.extend([""] * (end - i))
                i, after_blank = end, True
                continue
        stripped = line.strip()
        kept.append(_without_code_line(stripped) if _may_be_code(stripped) else stripped)
        after_blank = not stripped
        i += 1
    return "\n".join(kept)


def _may_be_code(line: str) -> bool:
    """Whether a line may match CODE_LINE, from its first and last characters: a line that starts
    with a capital or a digit and ends with a letter or a full stop (most lines of prose) is not
    matched against it (OASST turns: 5 us a line matched, 0.3 us a line looked at)."""
    first = line[:1]
    return (
        "=" in line
        or first in CODE_FIRST
        or line[-1:] in CODE_LAST
        or (
            first.isupper()
            and ((second := line[1:2]).isupper() or second == ":")
            and CAPITAL_START.match(line) is not None
        )
    )


def _without_code_line(line: str) -> str:
    if not line or CODE_LINE.match(line) is None:
        return line
    if JSON_LINE.match(line):
        # "key": "value", or a string in a list: the values of several words, not the key
        return " ".join(v for v in JSON_STRING.findall(JSON_KEY.sub("", line, count=1)) if " " in v.strip())
    return ""
