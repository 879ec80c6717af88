"""Licences of the sources and of the published dataset (the card's `license:`).

A small, conservative model of what matters when records of several sources are published together:
whether a licence forbids commercial use (NC), requires adaptations to keep it (share-alike, copyleft),
forbids adaptations (ND), or only asks for attribution. It is no legal advice; it catches the common
mistake of publishing non-commercial or share-alike data under a permissive licence.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# The licence identifiers the Hub accepts in a card's `license:` (huggingface/hub-docs,
# docs/hub/repositories-licenses.md); any other licence is published as `other` with `license_name`.
HUB_LICENSES = frozenset(
    """apache-2.0 mit openrail bigscience-openrail-m creativeml-openrail-m bigscience-bloom-rail-1.0
    bigcode-openrail-m afl-3.0 artistic-2.0 bsl-1.0 bsd bsd-2-clause bsd-3-clause bsd-3-clause-clear c-uda cc
    cc0-1.0 cc-by-2.0 cc-by-2.5 cc-by-3.0 cc-by-4.0 cc-by-sa-3.0 cc-by-sa-4.0 cc-by-nc-2.0 cc-by-nc-3.0 cc-by-nc-4.0
    cc-by-nd-4.0 cc-by-nc-nd-3.0 cc-by-nc-nd-4.0 cc-by-nc-sa-2.0 cc-by-nc-sa-3.0 cc-by-nc-sa-4.0 cdla-sharing-1.0
    cdla-permissive-1.0 cdla-permissive-2.0 wtfpl ecl-2.0 epl-1.0 epl-2.0 etalab-2.0 eupl-1.1 agpl-3.0 gfdl gpl
    gpl-2.0 gpl-3.0 lgpl lgpl-2.1 lgpl-3.0 isc lppl-1.3c ms-pl mpl-2.0 odc-by odbl openrail++ osl-3.0 postgresql
    ofl-1.1 ncsa unlicense zlib pddl lgpl-lr deepfloyd-if-license llama2 gemma unknown other""".split()
)

PUBLIC_DOMAIN = frozenset({"cc0-1.0", "pddl", "unlicense", "wtfpl"})
PERMISSIVE = frozenset(
    """apache-2.0 mit bsd bsd-2-clause bsd-3-clause bsd-3-clause-clear isc zlib bsl-1.0 afl-3.0 artistic-2.0 ecl-2.0
    ms-pl ncsa postgresql odc-by etalab-2.0 cdla-permissive-1.0 cdla-permissive-2.0""".split()
)
# copyleft outside Creative Commons: an adaptation keeps the same licence (or one of these successors)
COPYLEFT: dict[str, frozenset[str]] = {
    "gpl-2.0": frozenset({"gpl-2.0"}),
    "gpl-3.0": frozenset({"gpl-3.0", "agpl-3.0"}),
    "agpl-3.0": frozenset({"agpl-3.0"}),
    "lgpl-2.1": frozenset({"lgpl-2.1", "lgpl-3.0", "gpl-2.0", "gpl-3.0", "agpl-3.0"}),
    "lgpl-3.0": frozenset({"lgpl-3.0", "gpl-3.0", "agpl-3.0"}),
    "gfdl": frozenset({"gfdl"}),
    "odbl": frozenset({"odbl"}),
    "cdla-sharing-1.0": frozenset({"cdla-sharing-1.0"}),
    "mpl-2.0": frozenset({"mpl-2.0", "gpl-2.0", "gpl-3.0", "lgpl-2.1", "lgpl-3.0", "agpl-3.0"}),
    "epl-1.0": frozenset({"epl-1.0"}),
    "epl-2.0": frozenset({"epl-2.0"}),
    "eupl-1.1": frozenset({"eupl-1.1"}),
    "osl-3.0": frozenset({"osl-3.0"}),
    "lgpl-lr": frozenset({"lgpl-lr"}),
}
CC = re.compile(r"^cc-by(?P<nc>-nc)?(?P<nd>-nd)?(?P<sa>-sa)?-(?P<version>\d(?:\.\d)?)$")

# how restrictive a kind is, for choosing the output licence among the sources' own
RANK = {
    "public_domain": 0,
    "permissive": 1,
    "attribution": 2,
    "share_alike": 3,
    "non_commercial": 4,
    "no_derivatives": 5,
}


@dataclass(frozen=True)
class Licence:
    id: str
    kind: str  # public_domain | permissive | attribution | share_alike | non_commercial | no_derivatives | unknown
    nc: bool = False
    sa: bool = False
    version: float = 0.0

    @property
    def label(self) -> str:
        """What restricts it, in words (for error messages and the card)."""
        return {
            "public_domain": "public domain",
            "permissive": "permissive",
            "attribution": "attribution",
            "share_alike": "share-alike" if not self.id.startswith(("gpl", "agpl", "lgpl")) else "copyleft",
            "non_commercial": "non-commercial, share-alike" if self.sa else "non-commercial",
            "no_derivatives": "no derivatives",
            "unknown": "not a licence frcorpus knows",
        }[self.kind]


def normalize(licence: str) -> str:
    """SPDX ids as users write them (`CC-BY-NC-4.0`, `GPL-3.0-only`) -> the Hub's lower-case ids."""
    text = licence.strip().lower()
    return re.sub(r"-(only|or-later)$", "", text)


def parse(licence: str) -> Licence:
    lid = normalize(licence)
    if lid in PUBLIC_DOMAIN:
        return Licence(lid, "public_domain")
    if lid in PERMISSIVE:
        return Licence(lid, "permissive")
    if lid in COPYLEFT or lid in ("gpl", "lgpl", "agpl"):
        return Licence(lid, "share_alike", sa=True)
    m = CC.match(lid)
    if m:
        nc, nd, sa, version = bool(m["nc"]), bool(m["nd"]), bool(m["sa"]), float(m["version"])
        if nd:
            return Licence(lid, "no_derivatives", nc=nc, version=version)
        if nc:
            return Licence(lid, "non_commercial", nc=True, sa=sa, version=version)
        return Licence(lid, "share_alike" if sa else "attribution", sa=sa, version=version)
    return Licence(lid, "unknown")


def accepts(output: str, source: str) -> bool | None:
    """Whether records under `source` may be published in a dataset under `output`; None when
    frcorpus cannot tell (a licence it does not know)."""
    out, src = parse(output), parse(source)
    if out.id == src.id:
        return True
    if src.kind == "unknown" or out.kind == "unknown":
        return None
    if src.kind == "no_derivatives":
        return False  # a filtered, reformatted corpus is an adaptation
    if src.kind == "public_domain":
        return True
    if src.kind in ("permissive", "attribution"):
        return out.kind != "public_domain"  # attribution cannot be waived for others
    if src.kind == "share_alike" and not src.nc:
        if src.id in COPYLEFT:
            return out.id in COPYLEFT[src.id]
        if CC.match(src.id):  # CC BY-SA: a later BY-SA, or GPLv3 for 4.0 (one-way compatibility)
            return (out.kind == "share_alike" and CC.match(out.id) is not None and out.version >= src.version) or (
                src.version >= 4.0 and out.id == "gpl-3.0"
            )
        return False
    # non-commercial: NC travels; NC-SA also needs an NC-SA licence of the same or a later version
    if src.sa:
        return out.nc and out.sa and out.kind == "non_commercial" and out.version >= src.version
    return out.kind == "non_commercial"


@dataclass(frozen=True)
class OutputLicence:
    """The licence the card declares, and how it was chosen."""

    id: str  # the card's `license:` (a Hub id, `other` or `unknown`)
    name: str | None  # `license_name:` when id is `other` for a single licence the Hub does not list
    chosen: str  # single | most_restrictive | mixed | undeclared | override
    conflicts: tuple[tuple[str, str], ...] = ()  # (source, licence) an override goes against


def output_licence(
    sources: dict[str, str | None], override: str | None = None, allow_conflict: bool = False
) -> OutputLicence:
    """The output licence from the sources' licences (name -> licence or None), or the override."""
    if override is not None:
        lid = normalize(override)
        conflicts = tuple((n, lic) for n, lic in sources.items() if lic and accepts(lid, lic) is False)
        return OutputLicence(lid, None, "override", conflicts)
    if not sources or any(lic is None for lic in sources.values()):
        return OutputLicence("unknown", None, "undeclared")
    ids = sorted({normalize(lic) for lic in sources.values() if lic})
    if len(ids) == 1:
        return _hub_id(ids[0], "single")
    candidates = [c for c in ids if all(accepts(c, other) for other in ids)]
    if candidates:
        top = max(RANK.get(parse(c).kind, -1) for c in candidates)
        best = [c for c in candidates if RANK.get(parse(c).kind, -1) == top]
        if len(best) == 1:  # equally restrictive licences (mit and bsd-3-clause): no honest single choice
            return _hub_id(best[0], "most_restrictive")
    return OutputLicence("other", None, "mixed")


def _hub_id(lid: str, chosen: str) -> OutputLicence:
    return OutputLicence(lid, None, chosen) if lid in HUB_LICENSES else OutputLicence("other", lid, chosen)


def conflict_problems(
    sources: list[tuple[int, str, str | None, int]], override: str, where: str, override_line: int
) -> list[str]:
    """Config errors: each source (index, name, licence, line) whose licence the `card.license`
    override goes against."""
    problems = []
    for i, name, lic, line in sources:
        if lic and accepts(override, lic) is False:
            problems.append(
                f"{where}:{line}: sources[{i}].license: {lic} ({parse(lic).label}) of source {name!r} cannot be "
                f"published under card.license {override} (line {override_line}); choose a card.license that "
                "respects it, remove the source, or set card.allow_license_conflict: true to publish anyway "
                "(the card says so)"
            )
    return problems
