"""Fault injection: every writing command under kill -9, a file-size limit, a
full disk (a tiny tmpfs in a private mount namespace) and a read-only store;
after each fault the store must open, read back whole, hold consistent counts
and sessions, have handed out nothing it did not deliver, and take the next
command.

One scenario engine for two callers: tests/test_faults.py runs each scenario
as a test, and ``python -m benchmarks --sections faults`` runs them all and
writes the fault table (rendered on docs/faults.md).

The kills are real SIGKILLs of a real CLI process, at named points
(:func:`persona_index.commits.fault_point`, armed by ``$PERSONA_INDEX_FAULT``):
``commit`` (right after a verified Lance commit, ``#K``: the K-th),
``draw:staged``, ``draw:draws-committed``, ``draw:recorded``,
``reset:manifests-deleted``, ``tag:merged``, ``tag:swapped``, ``reembed:batch``.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PERSONAS = 300  # the base store: generated personas, hash embedder


# -- running the CLI -------------------------------------------------------------
def _env(extra=None):
    path = [str(ROOT)] + ([os.environ["PYTHONPATH"]] if os.environ.get("PYTHONPATH") else [])
    env = dict(os.environ, LANCEDB_LOG="error", HF_HUB_OFFLINE="1", PYTHONPATH=os.pathsep.join(path))
    env.pop("PERSONA_INDEX_FAULT", None)
    env.update(extra or {})
    return env


def cli(args, *, cwd, fault=None, fsize=None, timeout=120, prefix=()):
    """Run ``persona-index ARGS`` in a child (``fault``: a kill point;
    ``fsize``: ``ulimit -f`` in KiB, set by a shell in the child)."""
    cmd = [*prefix, sys.executable, "-m", "persona_index_cli.main", *map(str, args)]
    if fsize is not None:
        cmd = ["bash", "-c", f'ulimit -f {int(fsize)} && exec "$@"', "bash", *cmd]
    p = subprocess.run(cmd, cwd=cwd, env=_env({"PERSONA_INDEX_FAULT": fault} if fault else None),
                       capture_output=True, text=True, timeout=timeout)
    return {"rc": p.returncode, "stdout": p.stdout, "stderr": p.stderr.strip(),
            "stderr_lines": len([l for l in p.stderr.splitlines() if l.strip()]),
            "traceback": "Traceback" in p.stderr}


# -- what must hold after any fault --------------------------------------------------
def check_store(db: str) -> dict:
    """The store opens, every table reads back whole (Lance's validate and a
    full scan), ids are unique, every attribute has its column, and the
    sessions are consistent: each committed batch's draws equal its
    manifest's ids, no session holds a persona twice, and every file a
    committed batch staged is delivered (``pending`` counts those that are
    not yet: the next draw of the session finishes them)."""
    import lance

    from persona_index.sessions import MANIFESTS, SESSIONS, Sessions
    from persona_index.store import PersonaIndex

    out = {"problems": []}
    bad = out["problems"].append
    idx = PersonaIndex(db, must_exist=True)
    info = idx.info()
    out["count"] = info["count"]
    out["version"] = info["table_version"]
    for name in idx.table_names():
        ds = lance.dataset(f"{db}/{name}.lance")
        ds.validate()
        t = ds.to_table()
        if name == "personas":
            ids = t.column("id").to_pylist()
            if len(set(ids)) != len(ids):
                bad("personas: an id stored twice")
            for a in info["attributes"]:
                if a not in t.schema.names:
                    bad(f"attribute {a!r} listed without its column")
            out["hidden_columns"] = [c for c in t.schema.names if c.startswith("_pi_")]
    s = Sessions(idx)
    out["sessions"] = {d["session"]: d["personas"] for d in s.list()}
    out["pending"] = 0
    mt, st = s._table(MANIFESTS), s._table(SESSIONS)
    stored = set(idx.snapshot().ids.to_pylist())
    for name in out["sessions"]:
        drawn = s.drawn([name])
        if len(set(drawn)) != len(drawn):
            bad(f"session {name!r} holds a persona twice")
        if not set(drawn) <= stored:
            bad(f"session {name!r} holds ids the store lacks")
    if mt is not None and st is not None:
        rows = st.to_lance().to_table().to_pylist()
        for text in mt.to_lance().to_table(columns=["manifest"]).column("manifest").to_pylist():
            m = json.loads(text)
            got = [r["id"] for r in rows if r["session"] == m["session"] and r["batch"] == m["batch"]]
            if sorted(got) != sorted(m["ids"]):
                bad(f"session {m['session']!r} batch {m['batch']}: draws differ from its manifest")
            for tmp, final in m.get("_delivery") or []:
                if os.path.exists(tmp):
                    out["pending"] += 1
                elif not os.path.exists(final):
                    bad(f"{final} of session {m['session']!r} batch {m['batch']} is lost")
                elif final.endswith(".jsonl"):
                    with open(final, encoding="utf-8") as fh:
                        if sorted(json.loads(l)["id"] for l in fh if l.strip()) != sorted(m["ids"]):
                            bad(f"{final} does not hold its batch")
    return out


def _ok(check: dict) -> bool:
    return not check["problems"]


# -- scenarios -------------------------------------------------------------------------
def make_base(root: Path) -> Path:
    """A 300-persona store (hash-64 embedder) and a 120-persona jsonl to ingest."""
    base = root / "base.lance"
    if not base.exists():
        r = cli(["--db", base, "--embed-model", "hash-64", "generate", "-n", PERSONAS,
                 "--no-progress"], cwd=root)
        assert r["rc"] == 0, r["stderr"]
        with open(root / "more.jsonl", "w", encoding="utf-8") as fh:
            for i in range(120):
                fh.write(json.dumps({"persona": f"an extra persona number {i} who keeps bees",
                                     "region": "NSEW"[i % 4]}) + "\n")
    return base


def _draw_a(db: str) -> None:
    """Session A's first batch (15 personas), drawn in this process."""
    from persona_index.sampling import draw
    from persona_index.store import PersonaIndex

    draw(PersonaIndex(db), 15, seed=0, session="A")


def _copy(base: Path, dst: Path) -> str:
    shutil.copytree(base, dst, ignore=shutil.ignore_patterns(".locks"))
    return str(dst)


# (command, fault, argv after --db, kill point or None, next command argv, expectation)
# expectation after the fault: "any" (rolled back or committed whole)
SCENARIOS = {
    "ingest/kill after the 1st batch commit": (
        ["ingest", "{more}", "--batch-size", "40", "--no-progress", "--no-near-dedup"], "commit#1",
        ["ingest", "{more}", "--no-progress", "--no-near-dedup", "--json"]),
    "ingest/kill after the 2nd batch commit": (
        ["ingest", "{more}", "--batch-size", "40", "--no-progress", "--no-near-dedup"], "commit#2",
        ["ingest", "{more}", "--no-progress", "--no-near-dedup", "--json"]),
    "tag/kill after its commit": (
        ["tag", "--attr", "field", "--labels", "health,craft,arts"], "commit#1",
        ["tag", "--attr", "field", "--labels", "health,craft", "--replace", "--json"]),
    "tag --replace/kill after the merge": (
        ["tag", "--attr", "domain", "--labels", "health,craft", "--replace"], "tag:merged",
        ["tag", "--attr", "domain", "--labels", "health,craft,arts", "--replace", "--json"]),
    "tag --replace/kill after the swap": (
        ["tag", "--attr", "domain", "--labels", "health,craft", "--replace"], "tag:swapped",
        ["tag", "--attr", "domain", "--labels", "health,craft,arts", "--replace", "--json"]),
    "reembed/kill after the 2nd batch": (
        ["reembed", "{copy}", "--to-model", "hash-32", "--batch-size", "100", "--no-progress"],
        "reembed:batch#2",
        ["reembed", "{copy}", "--to-model", "hash-32", "--batch-size", "100", "--no-progress",
         "--json"]),
    "sample --session/kill after staging the files": (
        ["sample", "-n", "20", "--session", "Z", "--seed", "1", "--out", "{out}"], "draw:staged",
        ["sample", "-n", "20", "--session", "Z", "--seed", "2", "--out", "{out2}", "--json"]),
    "sample --session/kill between draws and manifest": (
        ["sample", "-n", "20", "--session", "Z", "--seed", "1", "--out", "{out}"],
        "draw:draws-committed",
        ["sample", "-n", "20", "--session", "Z", "--seed", "2", "--out", "{out2}", "--json"]),
    "sample --session/kill after the commit, before the renames": (
        ["sample", "-n", "20", "--session", "Z", "--seed", "1", "--out", "{out}"], "draw:recorded",
        ["sample", "-n", "20", "--session", "Z", "--seed", "2", "--out", "{out2}", "--json"]),
    "sessions reset/kill between its two deletes": (
        ["sessions", "reset", "A"], "reset:manifests-deleted",
        ["sample", "-n", "20", "--session", "A", "--seed", "3", "--json"]),
}


def run_kill(name: str, root: Path) -> dict:
    """One kill -9 scenario on a fresh copy of the base store."""
    argv, point, nxt = SCENARIOS[name]
    base = make_base(root)
    work = Path(tempfile.mkdtemp(dir=root))
    db = _copy(base, work / "s.lance")
    if name.startswith("sessions reset"):  # a session to reset, drawn before the fault
        _draw_a(db)
    subs = {"{more}": str(root / "more.jsonl"), "{copy}": str(work / "copy.lance"),
            "{out}": str(work / "b1.jsonl"), "{out2}": str(work / "b2.jsonl")}
    fill = lambda a: [subs.get(x, x) for x in a]  # noqa: E731
    before = check_store(db)
    r = cli(["--db", db, *fill(argv)], cwd=work, fault=point)
    after = check_store(db)
    row = {"command": name.split("/")[0], "fault": f"kill -9 at {point}", "rc": r["rc"],
           "killed": r["rc"] == -9, "before": before["count"], "after": after["count"],
           "sessions_after": after["sessions"], "pending_after_fault": after["pending"],
           "problems": after["problems"]}
    if name.startswith("reembed"):
        inf = cli(["--db", work / "copy.lance", "info", "--json"], cwd=work)
        row["partial_shown_as_store"] = inf["rc"] == 0
    n = cli(["--db", db, *fill(nxt)], cwd=work)
    final = check_store(db)
    row.update(next_rc=n["rc"], next_stderr=n["stderr"][-300:], final_count=final["count"],
               final_sessions=final["sessions"], pending_final=final["pending"],
               problems=row["problems"] + final["problems"])
    if name.startswith("reembed"):
        copy = check_store(str(work / "copy.lance"))
        row["copy_count"] = copy["count"]
        row["problems"] += copy["problems"]
        if copy["count"] != final["count"]:
            row["problems"].append("the reembed copy lacks personas")
    if name.startswith("ingest") and final["count"] != before["count"] + 120:
        row["problems"].append("ingest lost personas")
    if name.startswith("sample"):
        got = final["sessions"].get("Z", 0)
        if got not in (20, 40) or final["pending"]:
            row["problems"].append(f"session Z holds {got} (want 20 or 40), pending {final['pending']}")
    if name.startswith("tag") and final.get("hidden_columns"):
        row["problems"].append(f"hidden columns left: {final['hidden_columns']}")
    row["whole"] = not row["problems"] and row["killed"] and row["next_rc"] == 0
    shutil.rmtree(work, ignore_errors=True)
    return row


# -- file-size limit -------------------------------------------------------------------
FSIZE_CASES = {
    "sample -n 300 --session Z --json": ["sample", "-n", "300", "--session", "Z", "--seed", "1",
                                         "--json"],
    "ingest (120 personas)": ["ingest", "{more}", "--no-progress", "--no-near-dedup"],
    "tag --attr field": ["tag", "--attr", "field", "--labels", "health,craft,arts"],
}


def _largest_new_file(before: set, db: str) -> int:
    sizes = [p.stat().st_size for p in Path(db).rglob("*.lance")
             if p.is_file() and "data" in p.parts and str(p) not in before]
    return max(sizes) if sizes else 0


def run_fsize(name: str, root: Path, kib: int | None = None) -> dict:
    """``ulimit -f KIB`` in the child. ``kib=None`` calibrates it: the command
    is run once unlimited on a scratch copy and the limit set just under the
    largest data file it writes, where pylance 14 cuts the file and still
    reports success (the case the verification exists for)."""
    base = make_base(root)
    work = Path(tempfile.mkdtemp(dir=root))
    db = _copy(base, work / "s.lance")
    argv = [str(root / "more.jsonl") if a == "{more}" else a for a in FSIZE_CASES[name]]
    largest = None
    if kib is None:
        scratch = _copy(base, work / "scratch.lance")
        old = {str(p) for p in Path(scratch).rglob("*.lance") if p.is_file()}
        r0 = cli(["--db", scratch, *argv], cwd=work)
        assert r0["rc"] == 0, r0["stderr"]
        largest = _largest_new_file(old, scratch)
        kib = max(1, (largest - 1) // 1024)
        shutil.rmtree(scratch)
    before = check_store(db)
    r = cli(["--db", db, *argv], cwd=work, fsize=kib)
    after = check_store(db)
    row = {"command": name, "fault": f"ulimit -f {kib}" + (
               f" (its largest data file: {largest:,} bytes)" if largest else ""), "rc": r["rc"],
           "stderr": r["stderr"][-300:], "stderr_lines": r["stderr_lines"],
           "traceback": r["traceback"], "before": before["count"], "after": after["count"],
           "sessions_after": after["sessions"], "problems": after["problems"]}
    # the next command, without the limit: the same one again when it failed,
    # else a fresh draw (the store was changed whole)
    nxt = argv if r["rc"] != 0 else ["sample", "-n", "10", "--session", "next", "--seed", "1"]
    n = cli(["--db", db, *nxt], cwd=work)
    final = check_store(db)
    row.update(next_rc=n["rc"], final_count=final["count"], final_sessions=final["sessions"],
               problems=row["problems"] + final["problems"])
    if r["rc"] == 0:  # it fitted: then what it wrote must be there whole (checked above)
        pass
    elif r["traceback"] or r["stderr_lines"] != 1:
        row["problems"].append("not one line on stderr")
    if r["rc"] != 0 and after["count"] != before["count"] and not name.startswith("ingest"):
        row["problems"].append("a failed command changed the store")
    row["whole"] = not row["problems"] and r["rc"] in (0, 1) and n["rc"] == 0
    shutil.rmtree(work, ignore_errors=True)
    return row


# -- a full disk: a tiny tmpfs in a private mount namespace ----------------------------------
def tmpfs_possible() -> str | None:
    """None when ``unshare -m`` can mount a tmpfs here, else why not."""
    if os.geteuid() != 0:
        return "needs root (unshare -m and mount)"
    if not shutil.which("unshare"):
        return "no unshare"
    d = tempfile.mkdtemp()
    p = subprocess.run(["unshare", "-m", "sh", "-c", f"mount -t tmpfs -o size=64k tmpfs {d}"],
                       capture_output=True, text=True)
    os.rmdir(d)
    return None if p.returncode == 0 else f"unshare -m cannot mount a tmpfs: {p.stderr.strip()[:100]}"


DISK_CASES = {  # name: (argv, KB left free)
    "sample -n 300 --session Z --json (first session draw, 12 KB free)": (
        ["sample", "-n", "300", "--session", "Z", "--seed", "1", "--json"], 12),
    "sample -n 300 --session Z --out (first session draw)": (
        ["sample", "-n", "300", "--session", "Z", "--seed", "1", "--out", "{work}/b.jsonl"], 50),
    "ingest (120 personas)": (["ingest", "{more}", "--no-progress", "--no-near-dedup"], 50),
    "sessions reset A": (["sessions", "reset", "A"], 50),
    "sessions reset A (4 KB free)": (["sessions", "reset", "A"], 4),
}


def _inner(spec: dict) -> dict:
    """Inside ``unshare -m``: mount a tmpfs, put the store on it, fill the disk
    to ``free_kib``, run the command, free the disk, check, run it again."""
    mnt = spec["mnt"]
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={spec['size_kib']}k", "tmpfs", mnt],
                   check=True)
    db = _copy(Path(spec["base"]), Path(mnt) / "s.lance")
    work = mnt
    if spec["name"].startswith("sessions reset"):
        _draw_a(db)
    argv = [a.replace("{work}", work).replace("{more}", spec["more"]) for a in spec["argv"]]
    before = check_store(db)
    st = os.statvfs(mnt)
    fill = st.f_bavail * st.f_frsize - spec["free_kib"] * 1024
    with open(Path(mnt) / "filler", "wb") as fh:
        if fill > 0:
            fh.write(b"\0" * fill)
    r = cli(["--db", db, *argv], cwd=work)
    os.remove(Path(mnt) / "filler")
    after = check_store(db)
    row = {"command": spec["name"], "fault": f"disk full ({spec['free_kib']} KB free)",
           "rc": r["rc"], "stderr": r["stderr"][-300:], "stderr_lines": r["stderr_lines"],
           "traceback": r["traceback"], "before": before["count"], "after": after["count"],
           "sessions_before": before["sessions"], "sessions_after": after["sessions"],
           "problems": after["problems"],
           "debris": sorted(p for p in os.listdir(work) if p.endswith(".partial")
                            or p.startswith("."))}
    nxt = argv if r["rc"] != 0 else ["sample", "-n", "10", "--session", "next", "--seed", "1"]
    n = cli(["--db", db, *nxt], cwd=work)
    final = check_store(db)
    row.update(next_rc=n["rc"], next_stderr=n["stderr"][-200:], final_count=final["count"],
               final_sessions=final["sessions"], problems=row["problems"] + final["problems"])
    if r["rc"] != 0 and (r["traceback"] or r["stderr_lines"] != 1):
        row["problems"].append("not one line on stderr")
    if r["rc"] != 0 and after["sessions"] != before["sessions"]:
        row["problems"].append("a failed command changed the sessions")
    if r["rc"] != 0 and row["debris"]:
        row["problems"].append(f"left files: {row['debris']}")
    row["whole"] = not row["problems"] and r["rc"] in (0, 1) and n["rc"] == 0
    return row


def run_disk(name: str, root: Path) -> dict:
    base = make_base(root)
    mnt = tempfile.mkdtemp(dir=root)
    argv, free_kib = DISK_CASES[name]
    spec = {"name": name, "argv": argv, "mnt": mnt, "base": str(base),
            "more": str(root / "more.jsonl"), "size_kib": 4096, "free_kib": free_kib}
    p = subprocess.run(["unshare", "-m", sys.executable, "-m", "benchmarks.faults", "_inner",
                        json.dumps(spec)], cwd=ROOT, env=_env(), capture_output=True, text=True,
                       timeout=300)
    if p.returncode != 0:
        raise RuntimeError(f"inner run failed: {p.stderr[-2000:]}")
    return json.loads(p.stdout.strip().splitlines()[-1])


# -- a read-only store and a broken store path -------------------------------------------------
def run_readonly(root: Path) -> dict:
    """The store's folder bind-mounted read-only (root ignores file modes)."""
    base = make_base(root)
    work = Path(tempfile.mkdtemp(dir=root))
    db = _copy(base, work / "s.lance")
    before = check_store(db)
    cmd = (f"mount --bind {db} {db} && mount -o remount,ro,bind {db} && "
           f"exec {sys.executable} -m persona_index_cli.main --db {db} "
           f"sample -n 10 --session Z --seed 1")
    p = subprocess.run(["unshare", "-m", "sh", "-c", cmd], cwd=work, env=_env(),
                       capture_output=True, text=True, timeout=120)
    after = check_store(db)
    lines = [l for l in p.stderr.splitlines() if l.strip()]
    row = {"command": "sample -n 10 --session Z", "fault": "read-only store", "rc": p.returncode,
           "stderr": p.stderr.strip()[-300:], "stderr_lines": len(lines),
           "traceback": "Traceback" in p.stderr, "before": before["count"],
           "after": after["count"], "sessions_after": after["sessions"],
           "problems": after["problems"]}
    n = cli(["--db", db, "sample", "-n", "10", "--session", "Z", "--seed", "1"], cwd=work)
    row["next_rc"] = n["rc"]
    if p.returncode != 1 or row["traceback"] or len(lines) != 1:
        row["problems"].append("not one line and exit 1")
    row["whole"] = not row["problems"] and n["rc"] == 0
    shutil.rmtree(work, ignore_errors=True)
    return row


def run_broken_path(root: Path) -> list:
    """``--db X`` where ``X/personas.lance`` is a file."""
    work = Path(tempfile.mkdtemp(dir=root))
    (work / "x").mkdir()
    (work / "x" / "personas.lance").write_text("not a table")
    rows = []
    for argv in (["generate", "-n", "5", "--no-progress"],
                 ["ingest", str(make_base(root).parent / "more.jsonl"), "--no-progress"],
                 ["info"]):
        r = cli(["--db", work / "x", "--embed-model", "hash-64", *argv], cwd=work)
        ok = r["rc"] == 1 and not r["traceback"] and r["stderr_lines"] == 1 \
            and "not a Lance table" in r["stderr"]
        rows.append({"command": " ".join(argv[:1]), "fault": "personas.lance is a file",
                     "rc": r["rc"], "stderr": r["stderr"][-300:], "traceback": r["traceback"],
                     "problems": [] if ok else ["not one line naming the file"],
                     "whole": ok and (work / "x" / "personas.lance").read_text() == "not a table"})
    shutil.rmtree(work, ignore_errors=True)
    return rows


def run_faults() -> dict:
    """Every scenario; the fault table's rows."""
    t0 = time.perf_counter()
    root = Path(tempfile.mkdtemp(prefix="pi-faults-"))
    rows = [run_kill(name, root) for name in SCENARIOS]
    rows += [run_fsize(name, root, kib) for name in FSIZE_CASES for kib in (None, 4)]
    why = tmpfs_possible()
    if why is None:
        rows += [run_disk(name, root) for name in DISK_CASES]
        rows.append(run_readonly(root))
    rows += run_broken_path(root)
    shutil.rmtree(root, ignore_errors=True)
    return {"rows": rows, "tmpfs": why or "yes", "seconds": round(time.perf_counter() - t0, 1),
            "all_whole": all(r["whole"] for r in rows)}


def fault_table(res: dict) -> list[str]:
    """The fault table (markdown lines) from run_faults' result."""
    L = ["| command | fault injected | exit | store after | next command | outcome |",
         "|---|---|---|---|---|---|"]
    for r in res["rows"]:
        rc = r["rc"]
        exit_ = "killed" if rc == -9 else str(rc)
        store = (f"{r.get('before', '')} → {r.get('after', '')} personas"
                 if "after" in r else "untouched")
        if r.get("sessions_after"):
            store += ", sessions " + ", ".join(f"{k} {v}" for k, v in r["sessions_after"].items())
        nxt = ("exit 0" if r.get("next_rc") == 0 else
               f"exit {r['next_rc']}" if "next_rc" in r else "—")
        out = "whole, nothing lost" if r["whole"] else "FAILED: " + "; ".join(r["problems"])
        L.append(f"| {r['command']} | {r['fault']} | {exit_} | {store} | {nxt} | {out} |")
    if res.get("tmpfs") != "yes":
        L.append(f"\n*Disk-full and read-only rows skipped: {res['tmpfs']}.*")
    return L


if __name__ == "__main__":
    if sys.argv[1:2] == ["_inner"]:
        print(json.dumps(_inner(json.loads(sys.argv[2]))))
    else:
        print(json.dumps(run_faults(), indent=1))
