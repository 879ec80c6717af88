"""The `sources:` entries of a pipeline: where a source's files are, their format, licence and language."""

from __future__ import annotations

from typing import Literal, get_args

from pydantic import Field

from frcorpus.yamlconf import Strict

Format = Literal["auto", "messages", "sharegpt", "alpaca", "prompt_response"]
FORMATS: tuple[str, ...] = get_args(Format)


class SourceFields(Strict):
    """`fields:` of a source: the names its rows use where they differ from their format's own."""

    prompt: str = Field("prompt", description="the field holding the prompt (the user turn)")
    response: str = Field("response", description="the field holding the answer (the assistant turn)")
    system: str | None = Field(None, description="the field holding a system prompt, if any")
    messages: str | None = Field(
        None, description="chat formats: the field holding the turns (default: messages or conversations)"
    )
    role: str | None = Field(None, description="chat formats: a turn's role key (default: role; sharegpt: from)")
    content: str | None = Field(None, description="chat formats: a turn's text key (default: content; sharegpt: value)")


class SourceConfig(Strict):
    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$", description="unique name of the source")
    path: str = Field(
        description="file, glob, folder, local Hugging Face dataset folder, bundled sample "
        "(frcorpus://samples/...) or Hub id org/name@revision"
    )
    format: Format = Field("auto", description="the records' format (auto: detected per file)")
    license: str | None = Field(None, description="SPDX-style licence id, e.g. apache-2.0, cc-by-nc-4.0")
    language: str | None = Field(None, pattern=r"^[a-z]{2,3}$", description="language hint (ISO 639)")
    # attribution of the upstream dataset, for the card (CC BY and most licences ask for credit)
    homepage: str | None = Field(
        None, pattern=r"^https?://\S+$", description="the upstream dataset's web page (https://...), for the card"
    )
    citation: str | None = Field(None, description="how the upstream asks to be cited (BibTeX or a sentence)")
    description: str | None = Field(None, description="what the source is, in a sentence, for the card")
    limit: int | None = Field(None, ge=1, description="read at most this many records from the source")
    fields: SourceFields = Field(
        default_factory=SourceFields,
        description="the rows' field names: prompt, response, system (prompt_response); messages, role, content "
        "(chat formats)",
    )
    id_field: str = Field("id", description="field holding the source's own record id, if any")
