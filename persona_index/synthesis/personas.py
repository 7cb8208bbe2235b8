"""Growing the persona pool the Persona Hub way: text-to-persona and
persona-to-persona expansion, both ingested through the store's dedup."""

from __future__ import annotations

import json
import re
from typing import Sequence

from ..errors import InputFileError
from ..ingest import ingest_records, iter_file
from ..text import persona_id
from ..store import PersonaIndex
from .client import ClientConfig
from .run import complete_all
from .templates import PERSONA_TO_PERSONA, TEXT_TO_PERSONA, Template

_LEAD = re.compile(r"^\s*(?:[-*>#\d.)\s]+)?\**\s*persona\s*\**\s*[:\-–]\s*", re.I)


def parse_persona(response: str | None) -> str | None:
    """The persona sentence in a model's reply, or None.

    Accepts ``Persona: ...`` (any case, bullets, bold), a JSON object with a
    ``persona`` key, or else the first non-empty line; strips quotes and
    markdown; rejects empty and very long (> 1,000 characters) answers.

    Examples
    --------
    >>> parse_persona("Sure! Here it is.\\nPersona: A beekeeper in rural Wales.")
    'A beekeeper in rural Wales.'
    >>> parse_persona('- **Persona**: "A tax lawyer for start-ups."')
    'A tax lawyer for start-ups.'
    >>> parse_persona('{"persona": "A night-shift nurse."}')
    'A night-shift nurse.'
    >>> parse_persona("   ") is None
    True
    """
    if not response or not response.strip():
        return None
    s = response.strip()
    if s.startswith("```"):
        s = s.strip("`").split("\n", 1)[-1]
    try:
        doc = json.loads(s)
        if isinstance(doc, dict) and isinstance(doc.get("persona"), str):
            s = doc["persona"]
    except (json.JSONDecodeError, ValueError):
        pass
    lines = [l for l in s.splitlines() if l.strip()]
    pick = next((l for l in lines if _LEAD.match(l)), lines[0] if lines else "")
    text = _LEAD.sub("", pick).strip().strip('"“”*`').strip()
    if not text or len(text) > 1000:
        return None
    return text


def read_corpus(path: str) -> list[tuple[str, str]]:
    """``(doc_id, text)`` from a txt (one document a line) or jsonl (``text``
    field, optional ``id``) file.

    Examples
    --------
    >>> import os, tempfile
    >>> path = os.path.join(tempfile.mkdtemp(), "docs.jsonl")
    >>> with open(path, "w") as fh:
    ...     _ = fh.write('{"id": "d1", "text": "How to prune apple trees"}\\n'
    ...                  '{"id": "d2", "text": " Tax rules for freelancers "}\\n')
    >>> read_corpus(path)
    [('d1', 'How to prune apple trees'), ('d2', 'Tax rules for freelancers')]
    """
    fmt = "txt" if str(path).endswith(".txt") else "jsonl"
    out = []
    for n, rec in iter_file(path, fmt):
        text = rec.get("text")
        if not isinstance(text, str) or not text.strip():
            raise InputFileError(path, n, "document without a 'text' field")
        out.append((str(rec.get("id", f"{path}:{n}")), text.strip()))
    if not out:
        raise InputFileError(path, None, "no documents")
    return out


def text_to_persona(index: PersonaIndex, docs: Sequence[tuple[str, str]], config: ClientConfig, *,
                    action: str = "read", licence: str | None = None) -> dict:
    """Ask who would ``action`` each document; ingest the parsed personas with
    source ``text-to-persona`` and the document id.

    Needs an OpenAI-compatible endpoint (``config.base_url``) for every
    document; the parsing of each reply is :func:`parse_persona`. Without one,
    an example can only show the call's shape and its checks: no documents
    ask nothing, and a base URL that cannot be requested fails before any
    request.

    Examples
    --------
    >>> import tempfile
    >>> from persona_index.embed import HashEmbedder
    >>> index = PersonaIndex(tempfile.mkdtemp() + "/p.lance", HashEmbedder(16))
    >>> text_to_persona(index, [], ClientConfig("http://127.0.0.1:8000/v1", "any-model"))
    {'documents': 0, 'failed_or_unparsed': 0, 'added': 0, 'duplicates': 0}
    >>> text_to_persona(index, [("d1", "How to prune apple trees")],
    ...                 ClientConfig("127.0.0.1:8000", "any-model"))
    Traceback (most recent call last):
    ...
    persona_index.errors.InvalidQueryError: base URL '127.0.0.1:8000' must be an http:// or https:// URL with a host, e.g. http://127.0.0.1:8000/v1
    """
    prompts = [TEXT_TO_PERSONA.format(text=json.dumps(t, ensure_ascii=False), action=action)
               for _, t in docs]
    comps = complete_all(prompts, config)
    recs, unparsed = [], 0
    for (doc_id, _), c in zip(docs, comps):
        p = parse_persona(c.text) if c.ok else None
        if p is None:
            unparsed += 1
            continue
        recs.append({"persona": p, "doc_id": doc_id, "action": action})
    summary = ingest_records(index, recs, source="text-to-persona", licence=licence,
                             attrs=["action"]) if recs else None
    return {"documents": len(docs), "failed_or_unparsed": unparsed,
            "added": summary.added if summary else 0,
            "duplicates": (summary.exact_duplicates + summary.near_duplicates) if summary else 0}


def expand(index: PersonaIndex, seeds: Sequence[dict], config: ClientConfig, *, rounds: int = 6,
           licence: str | None = None) -> dict:
    """Persona-to-persona expansion: each round asks, for every persona added
    in the round before, for one person in a close relationship with them.
    New personas carry ``round`` and ``parent_id``; stops early when a round
    adds nothing.

    Needs an OpenAI-compatible endpoint (``config.base_url``); each reply is
    read with :func:`parse_persona`. Without one, an example can only show the
    shape of the summary: no seeds, nothing asked, stop after round 1.

    Examples
    --------
    >>> import tempfile
    >>> from persona_index.embed import HashEmbedder
    >>> index = PersonaIndex(tempfile.mkdtemp() + "/p.lance", HashEmbedder(16))
    >>> expand(index, [], ClientConfig("http://127.0.0.1:8000/v1", "any-model"), rounds=3)
    {'rounds': [{'round': 1, 'asked': 0, 'added': 0}], 'added': 0}
    """
    tmpl = Template("persona-to-persona", PERSONA_TO_PERSONA)
    frontier = [dict(s, id=s.get("id") or persona_id(s["text"])) for s in seeds]
    per_round = []
    for r in range(1, rounds + 1):
        comps = complete_all([tmpl.render(p) for p in frontier], config)
        recs = []
        for parent, c in zip(frontier, comps):
            text = parse_persona(c.text) if c.ok else None
            if text:
                recs.append({"persona": text, "round": r, "parent_id": parent["id"]})
        if not recs:
            per_round.append({"round": r, "asked": len(frontier), "added": 0})
            break
        before = set(index.snapshot().ids.to_pylist()) if index.exists else set()
        s = ingest_records(index, recs, source="persona-to-persona", licence=licence, attrs=[])
        new_ids = [i for i in (persona_id(x["persona"]) for x in recs) if i not in before]
        added = index.get(new_ids) if new_ids else []
        per_round.append({"round": r, "asked": len(frontier), "added": s.added,
                          "duplicates": s.exact_duplicates + s.near_duplicates})
        if s.added == 0:
            break
        frontier = added
    return {"rounds": per_round, "added": sum(x["added"] for x in per_round)}
