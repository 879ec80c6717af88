"""The record model: the base fields plus the columns the registered stages declare."""

from __future__ import annotations

import pytest

from frcorpus.stages import record_model


def test_the_record_model_is_the_base_plus_what_the_stages_declare():
    model = record_model()
    base = {"id": "s:1", "messages": [{"role": "user", "content": "Q ?"}], "source": {"name": "s", "uri": "x"}}
    langid = {"lang": "fr", "score": 0.9, "keep_share": 1.0, "mixed_with": None}
    assert model.model_validate({**base, "langid": langid, "scores": [("judge", 4.0)]}).langid.lang == "fr"
    with pytest.raises(ValueError, match="unknown_column"):
        model.model_validate({**base, "unknown_column": 1})  # no stage declares it
    with pytest.raises(ValueError, match="langid.score"):
        model.model_validate({**base, "langid": {**langid, "score": "high"}})  # not the declared type
