"""Persona outputs against the control arm, end to end on the local mock server.

The commands a user runs, through the real CLI (click's runner, in this
process), on a real store built with the default model:

1. ``ingest`` ``pool`` personas of the shared tools set (generated personas
   when it is absent);
2. ``sample -n 2K`` with the default strategy;
3. ``synthesize --template tool --control C --oversample 2`` against
   :class:`persona_index.synthesis.mock.MockServer` on 127.0.0.1;
4. ``outputs-report RAW --json``: every persona row against the control rows;
5. ``outputs-report`` on the curated rows plus the control rows: the K kept
   against the same control.

What the figures mean: the mock replies ``Reply for <persona text>``, so a
persona output is its persona's text and every control output is the same
sentence (``Reply for a typical user``). Personas must raise output coverage
here; the verdict line checks the wiring (rows, arms, bootstrap, verdict),
not any model. Run it against a real endpoint to learn about a model.
"""

from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path

K = 50
CONTROL = 40
OVERSAMPLE = 2
METRICS = (("vendi", "output Vendi"), ("mean_pairwise_distance", "mean pairwise distance"),
           ("cell_coverage", "PCA-4 cell coverage"))


def _invoke(args: list) -> tuple[dict, float]:
    from click.testing import CliRunner

    from persona_index_cli.main import cli

    t0 = time.perf_counter()
    r = CliRunner().invoke(cli, args, catch_exceptions=False)
    secs = time.perf_counter() - t0
    if r.exit_code != 0:
        raise RuntimeError(f"persona-index {' '.join(args)} exited {r.exit_code}: {r.output}")
    try:
        return json.loads(r.stdout), secs
    except ValueError:
        return {}, secs


def _personas(data: str | None, pool: int) -> list[dict]:
    if data and Path(data).exists():
        from .common import load_pairs

        personas, _ = load_pairs(data)
        seen, out = set(), []
        for p in personas:
            if p.strip() and p not in seen:
                seen.add(p)
                out.append({"text": p})
            if len(out) == pool:
                break
        return out
    from persona_index.generate import generate

    return [{"text": r["text"]} for r in generate(pool, seed=0)]


def _comparison(rep: dict) -> dict:
    c = rep["control_comparison"]
    out = {"persona_rows": c["persona_rows"], "control_rows": c["control_rows"],
           "subsample_size": c["subsample_size"], "subsamples": c["subsamples"],
           "verdict": c["verdict"]}
    for key, _ in METRICS:
        out[key] = {k: round(v, 4) + 0.0 for k, v in c[key].items()}  # + 0.0: no -0.0
    return out


def run_arms(data: str | None, *, quick: bool = False) -> dict:
    """The section's results (see the module docstring)."""
    from persona_index.synthesis.mock import MockServer

    pool = 200 if quick else 400
    d = Path(tempfile.mkdtemp(prefix="bench-arms-"))
    src = d / "pool.jsonl"
    src.write_text("".join(json.dumps(p) + "\n" for p in _personas(data, pool)),
                   encoding="utf-8")
    db = str(d / "store.lance")
    times = {}
    _, times["ingest"] = _invoke(["--db", db, "ingest", str(src), "--no-progress"])
    _, times["sample"] = _invoke(["--db", db, "sample", "-n", str(OVERSAMPLE * K), "--seed", "0",
                                  "--out", str(d / "personas.jsonl")])
    raw = d / "raw.jsonl"
    with MockServer() as srv:
        summary, times["synthesize"] = _invoke(
            ["--db", db, "synthesize", "--template", "tool", "--personas",
             str(d / "personas.jsonl"), "--control", str(CONTROL), "--oversample",
             str(OVERSAMPLE), "--base-url", srv.url, "--out", str(raw), "--no-progress",
             "--json"])
    rep_all, times["report_all"] = _invoke(["--db", db, "outputs-report", str(raw), "--json"])
    rows = [json.loads(line) for line in open(raw, encoding="utf-8")]
    both = d / "curated+control.jsonl"
    curated = summary["curation"]["out"]
    both.write_text(Path(curated).read_text(encoding="utf-8") + "".join(
        json.dumps(r) + "\n" for r in rows if r.get("arm") == "control"), encoding="utf-8")
    rep_cur, times["report_curated"] = _invoke(["--db", db, "outputs-report", str(both),
                                                "--json"])
    cur = summary["curation"]
    source = (Path(data).name if data and Path(data).exists()
              else "persona_index.generate (seed 0): no --data")
    return {
        "pool": pool, "source": source, "k": K, "oversample": OVERSAMPLE, "control": CONTROL,
        "planned": summary["planned"], "ok": summary["ok"], "failed": summary["failed"],
        "curation": {k: cur[k] for k in ("k", "kept", "shortfall", "candidates", "strategy")},
        "all_persona_rows": _comparison(rep_all), "curated_rows": _comparison(rep_cur),
        "seconds": {k: round(v, 2) for k, v in times.items()},
        "commands": [
            f"persona-index ingest POOL.jsonl  # {pool} personas",
            f"persona-index sample -n {OVERSAMPLE * K} --seed 0 --out personas.jsonl",
            f"persona-index synthesize --template tool --personas personas.jsonl --control "
            f"{CONTROL} --oversample {OVERSAMPLE} --base-url MOCK --out raw.jsonl",
            "persona-index outputs-report raw.jsonl",
            "persona-index outputs-report curated+control.jsonl  # raw.curated.jsonl + the "
            "control rows"],
    }


def markdown(res: dict) -> list[str]:
    """The generated block of docs/outputs.md."""
    a, c = res["all_persona_rows"], res["curated_rows"]
    lines = ["```"] + res["commands"] + ["```", "",
             f"On the local mock server, {res['pool']} personas in the store (from "
             f"{res.get('source', 'the shared tools set')}); "
             f"{res['planned']} requests ({res['ok']} ok, {res['failed']} failed); "
             f"`--oversample {res['oversample']}` kept {res['curation']['kept']} of "
             f"{res['curation']['candidates']} persona rows (K = {res['curation']['k']}, "
             f"shortfall {res['curation']['shortfall']}).", "",
             "| metric | persona rows | curated rows | control rows | persona - control, "
             "95% interval | curated - control, 95% interval |",
             "|---|---|---|---|---|---|"]
    for key, label in METRICS:
        x, y = a[key], c[key]
        lines.append(f"| {label} | {x['persona']:.3f} | {y['persona']:.3f} | "
                     f"{x['control']:.3f} | {x['difference']:+.3f} [{x['low']:+.3f}, "
                     f"{x['high']:+.3f}] | {y['difference']:+.3f} [{y['low']:+.3f}, "
                     f"{y['high']:+.3f}] |")
    lines += ["", f"Rows compared: the {a['persona_rows']} ok persona rows and the "
              f"{c['persona_rows']} curated rows, each against the {a['control_rows']} control "
              f"rows, as differences on {a['subsamples']} pairs of equal-size subsamples "
              f"({a['subsample_size']} rows from each arm).", "",
              f"Verdict, all persona rows: *{a['verdict']}*.", "",
              f"Verdict, curated rows: *{c['verdict']}*."]
    return lines
