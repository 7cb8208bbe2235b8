"""Batch files and their manifests: the manifest's fields and their check,
old parameter names upgraded, manifest files read (sampling and curation
alike), and a batch written as jsonl next to its manifest, both or neither.
:func:`persona_index.sampling.replay` re-runs a manifest."""

from __future__ import annotations

from typing import TYPE_CHECKING, Sequence

from .errors import ManifestError

if TYPE_CHECKING:
    from .sampling import Batch

__all__ = ["MANIFEST_VERSION", "RENAMED_PARAMS", "check_manifest", "upgrade_manifest", "load_manifest",
           "read_manifest_file", "manifest_path_for", "batch_rows", "stage_batch", "write_batch",
           "read_ids"]

MANIFEST_VERSION = 1

_MANIFEST_FIELDS = {  # field: (types, required)
    "strategy": ((str,), True), "seed": ((int,), True), "n": ((int,), True),
    "table_version": ((int,), True), "ids": ((list,), True), "params": ((dict, type(None)), False),
    "where": ((str, type(None)), False), "near": ((str, type(None)), False),
    "within": ((int, type(None)), False), "session": ((str, type(None)), False),
    "session_version": ((int, type(None)), False), "exclude_sessions": ((list, type(None)), False),
    "store": ((str,), False),
}


def check_manifest(manifest) -> None:
    """Refuse a manifest with a missing field or a field of the wrong type,
    naming the field (a hand-edited manifest must not reach the sampler).

    Examples
    --------
    >>> check_manifest({"strategy": "uniform", "seed": "7", "n": 2, "table_version": 1, "ids": []})
    Traceback (most recent call last):
    persona_index.errors.ManifestError: manifest field 'seed' must be int, got '7'
    >>> check_manifest({"strategy": "uniform", "seed": 7, "n": 2, "ids": []})
    Traceback (most recent call last):
    persona_index.errors.ManifestError: manifest lacks 'table_version'
    """
    if not isinstance(manifest, dict):
        raise ManifestError(f"a manifest is a JSON object, got {type(manifest).__name__}")
    for key, (types, required) in _MANIFEST_FIELDS.items():
        if key not in manifest:
            if required:
                raise ManifestError(f"manifest lacks {key!r}")
            continue
        v = manifest[key]
        if isinstance(v, bool) or not isinstance(v, types):
            want = " or ".join("null" if t is type(None) else t.__name__ for t in types)
            raise ManifestError(f"manifest field {key!r} must be {want}, got {v!r:.60}")
    if manifest["n"] < 1 or manifest["table_version"] < 1:
        raise ManifestError("manifest fields 'n' and 'table_version' must be positive")
    if not all(isinstance(i, str) for i in manifest["ids"]):
        raise ManifestError("manifest field 'ids' must be a list of strings")
    if not all(isinstance(i, str) for i in manifest.get("exclude_sessions") or []):
        raise ManifestError("manifest field 'exclude_sessions' must be a list of strings")


#: strategy parameters renamed since a manifest may have been written:
#: (strategy, old name, new name); old manifests replay for one release
RENAMED_PARAMS = (("stratified", "within", "method"),)


def upgrade_manifest(manifest: dict) -> tuple[dict, list[str]]:
    """``manifest`` with today's parameter names, and one note per rename made
    (the input is not changed).

    Examples
    --------
    >>> m, notes = upgrade_manifest({"strategy": "stratified", "params": {"within": "farthest"}})
    >>> m["params"], notes
    ({'method': 'farthest', 'quotas': 'product'}, ["manifest parameter 'within' of stratified is now 'method' (read as method='farthest'); old manifests replay until the next release"])
    >>> upgrade_manifest({"strategy": "uniform", "params": {}})[1]
    []

    A herding manifest without ``ramp`` was drawn with a constant spread
    weight (0.5 unless it names one), one without ``candidates_per_pick`` with
    32 per pick; it reads so:

    >>> upgrade_manifest({"strategy": "herding", "params": {}})[0]["params"]
    {'beta': 0.5, 'ramp': 'none', 'candidates_per_pick': 32}

    A Ray herding manifest without ``rounds`` was drawn with the two-round
    coreset selection; it reads so:

    >>> p = {"ramp": "linear", "candidates_per_pick": 16, "engine": "ray"}
    >>> upgrade_manifest({"strategy": "herding", "params": p})[0]["params"]
    {'ramp': 'linear', 'candidates_per_pick': 16, 'engine': 'ray', 'rounds': 'coreset'}

    A stratified manifest without ``method`` or ``quotas`` was drawn
    uniformly inside strata with the product rule; it reads so (no note):

    >>> upgrade_manifest({"strategy": "stratified", "params": {"by": ["region"]}})
    ({'strategy': 'stratified', 'params': {'by': ['region'], 'method': 'uniform', 'quotas': 'product'}}, [])
    """
    params, notes = dict(manifest.get("params") or {}), []
    for strategy, old, new in RENAMED_PARAMS:
        if manifest.get("strategy") == strategy and old in params and new not in params:
            params[new] = params.pop(old)
            notes.append(f"manifest parameter {old!r} of {strategy} is now {new!r} "
                         f"(read as {new}={params[new]!r}); old manifests replay until the next release")
    changed = bool(notes)
    if manifest.get("strategy") == "herding":
        # the rule of its time where not recorded: before the ramp (issue 25) a constant
        # spread weight, 0.5 unless given; 32 candidates per pick; Ray's coreset rounds
        from .samplers.herding import legacy_params

        upgraded = legacy_params(params)
        params, changed = upgraded, changed or upgraded != params
    if manifest.get("strategy") == "stratified":
        # written before the stratified draw recorded these: what they meant then
        from .samplers.stratified import LEGACY

        for key, value in LEGACY.items():
            if key not in params:
                params[key] = value
                changed = True
    return ({**manifest, "params": params} if changed else manifest), notes


def load_manifest(path) -> dict:
    """A manifest file, read and checked (:func:`check_manifest`).

    Examples
    --------
    >>> import tempfile, os
    >>> p = os.path.join(tempfile.mkdtemp(), "m.json")
    >>> _ = open(p, "w").write("{not json")
    >>> load_manifest(p)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    persona_index.errors.ManifestError: ...m.json: not a JSON manifest (Expecting property name ...)
    """
    return read_manifest_file(path, check_manifest)


def read_manifest_file(path, check) -> dict:
    """A JSON manifest file, read and passed to ``check``; every error names
    the file (sampling and curation manifests alike).

    Examples
    --------
    >>> import tempfile, os
    >>> p = os.path.join(tempfile.mkdtemp(), "m.json")
    >>> _ = open(p, "w").write('{"a": 1}')
    >>> read_manifest_file(p, lambda m: None)
    {'a': 1}
    """
    import json

    try:
        with open(path, encoding="utf-8") as fh:
            manifest = json.load(fh)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ManifestError(f"{path}: not a JSON manifest ({exc})") from None
    try:
        check(manifest)
    except ManifestError as exc:
        raise ManifestError(f"{path}: {exc}") from None
    return manifest


def manifest_path_for(out: str) -> str:
    """Where ``sample --out OUT`` puts its manifest: OUT with ``.manifest.json``.

    >>> manifest_path_for("batches/b1.jsonl")
    'batches/b1.manifest.json'
    """
    return out.rsplit(".", 1)[0] + ".manifest.json"


def batch_rows(batch: Batch) -> list[dict]:
    """A batch's personas as output rows: id, text, each attribute, licence, source.

    >>> from persona_index.sampling import Batch
    >>> b = Batch(ids=["a"], rows=[{"id": "a", "text": "a nurse", "region": "Africa",
    ...                             "source": "f.jsonl", "licence": None, "vector": None}],
    ...           manifest={}, attributes=["region"])
    >>> batch_rows(b)
    [{'id': 'a', 'text': 'a nurse', 'region': 'Africa', 'licence': None, 'source': 'f.jsonl'}]
    """
    return [{"id": r["id"], "text": r["text"], **{a: r.get(a) for a in batch.attributes},
             "licence": r.get("licence"), "source": r.get("source")} for r in batch.rows]


def stage_batch(batch: Batch, out: str | None, *, manifest_out: str | None = None):
    """A :class:`~persona_index.outputs.Staged` holding a batch as jsonl for
    ``out`` (``-``: stdout) and its manifest for ``manifest_out`` (default:
    :func:`manifest_path_for` ``out``; none for stdout). The caller checks the
    paths first (:func:`~persona_index.outputs.check_outputs`).

    Examples
    --------
    >>> import tempfile, os, json
    >>> from persona_index.sampling import Batch
    >>> d = tempfile.mkdtemp()
    >>> b = Batch(ids=["a"], rows=[{"id": "a", "text": "a nurse"}], manifest={"seed": 1})
    >>> s = stage_batch(b, os.path.join(d, "b.jsonl"))
    >>> os.listdir(d) == [] or all(f.endswith(".partial") for f in os.listdir(d))
    True
    >>> s.commit(); sorted(os.listdir(d))
    ['b.jsonl', 'b.manifest.json']
    """
    import json

    from .outputs import Staged

    staged = Staged()
    try:
        if out:
            staged.add(out, "".join(json.dumps(r, ensure_ascii=False) + "\n"
                                    for r in batch_rows(batch)))
            if out != "-":
                manifest_out = manifest_out or manifest_path_for(out)
        if manifest_out:
            staged.add(manifest_out, json.dumps(batch.manifest, indent=1))
    except BaseException:
        staged.abort()
        raise
    return staged


def write_batch(batch: Batch, out: str | None, *, manifest_out: str | None = None,
                inputs: Sequence = ()) -> str | None:
    """Write a batch as jsonl to ``out`` (``-``: stdout) and its manifest to
    ``manifest_out`` (default: :func:`manifest_path_for` ``out``; none for
    stdout), both or neither. Never over an input (``inputs``) or over each
    other. Returns the manifest's path.

    Examples
    --------
    >>> import tempfile, os, json
    >>> from persona_index.sampling import Batch
    >>> d = tempfile.mkdtemp()
    >>> b = Batch(ids=["a"], rows=[{"id": "a", "text": "a nurse"}], manifest={"seed": 1})
    >>> m = write_batch(b, os.path.join(d, "b.jsonl"))
    >>> os.path.basename(m), json.load(open(m))
    ('b.manifest.json', {'seed': 1})
    """
    from .outputs import check_outputs

    if out and out != "-" and not manifest_out:
        manifest_out = manifest_path_for(out)
    check_outputs({"out": out, "manifest_out": manifest_out},
                  inputs=[i for i in inputs if i])
    stage_batch(batch, out, manifest_out=manifest_out).commit()
    return manifest_out


def read_ids(lines, name: str = "<ids>") -> list[str]:
    """Ids from lines that are ids or JSON objects with an ``id`` (what
    ``sample --out`` writes); a line that is neither fails as ``NAME:LINE``.

    >>> read_ids(['{"id": "a1", "text": "x"}', "", "b2"])
    ['a1', 'b2']
    >>> read_ids(['{"text": "no id"}'], "batch.jsonl")
    Traceback (most recent call last):
    persona_index.errors.InputFileError: batch.jsonl:1: expected an id, or a JSON object with an 'id'
    """
    import json

    from .errors import InputFileError

    ids = []
    for n, line in enumerate(lines, 1):
        line = line.strip()
        if not line:
            continue
        pid = line
        if line.startswith("{"):
            try:
                pid = json.loads(line).get("id")
            except (json.JSONDecodeError, AttributeError):
                pid = None
        if not isinstance(pid, str) or not pid:
            raise InputFileError(name, n, "expected an id, or a JSON object with an 'id'")
        ids.append(pid)
    return ids
