"""filters/, cards/, the bundled model and the quickstart sample must work from an installed wheel too."""

from __future__ import annotations

import subprocess
import sys
import zipfile

from tests.conftest import REPO


def test_wheel_carries_resources(tmp_path):
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            str(REPO),
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(tmp_path),
        ],
        check=True,
        capture_output=True,
    )
    (wheel,) = tmp_path.glob("frcorpus-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for required in (
        "frcorpus/filters/role_aliases.yaml",
        "frcorpus/filters/length_thresholds.yaml",
        "frcorpus/cards/dataset_card.md.j2",
        "frcorpus/samples/conversations_fr.jsonl",
        "frcorpus/samples/alpaca_mix.json",
        "frcorpus/samples/instructions_en.jsonl",
        "frcorpus/prompts/translate/default.yaml",
        "frcorpus/prompts/judge/luth_grammar.yaml",
        "frcorpus/filters/translation_preambles.txt",
        "frcorpus/models/lid.176.ftz",  # the default language-ID model, offline
        "frcorpus/models/NOTICE.md",
        "frcorpus/models/fr_answer_quality/scorer.json",  # quality_classifier's default scorer
        "frcorpus/models/fr_answer_quality/head.npz",
        "frcorpus/cli.py",
        "frcorpus/py.typed",  # PEP 561: type checkers read the package's annotations
    ):
        assert required in names, required
    entry_points = zipfile.ZipFile(wheel).read(next(n for n in names if n.endswith("entry_points.txt"))).decode()
    assert "frcorpus = frcorpus.cli:main" in entry_points
