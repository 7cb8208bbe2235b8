"""python -m benchmarks [--quick] [--data PATH] [--out DIR] [--sections ...]

Every figure comes from one command; results land as JSON, a markdown report
and PNG plots under a results folder named by date.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

from .sections import CHAT_DATA, DEFAULT_DATA, SECTIONS, Run  # noqa: F401 (CHAT_DATA: public)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    ap.add_argument("--quick", action="store_true", help="small sizes, under 3 minutes on 2 cores")
    ap.add_argument("--data", default=str(DEFAULT_DATA) if DEFAULT_DATA.exists() else None,
                    help="persona jsonl (with outputs for the transfer study)")
    ap.add_argument("--out", help="results folder (default benchmarks/results/<date>[-quick])")
    ap.add_argument("--sections", nargs="+", choices=SECTIONS, default=None)
    ap.add_argument("--render", metavar="DIR", help="only rewrite report.md and the plots of "
                                                   "DIR/results.json")
    args = ap.parse_args(argv)
    if args.render:
        from . import report as R

        d = Path(args.render)
        res = json.loads((d / "results.json").read_text(encoding="utf-8"))
        for name, cov in res.get("coverage", {}).items():
            R.plot_coverage(cov, f"{name}, N={cov['pool']}", d / f"coverage_{name}.png")
        if "speed" in res:
            R.plot_speed(res["speed"], d / "speed.png")
        R.write_report(res, d)
        return 0
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from persona_index._lazy import quiet_libraries

    quiet_libraries()
    from . import coverage as C
    from . import report as R
    from .common import environment

    quick = args.quick
    sections = args.sections or (("coverage", "speed") if quick else tuple(SECTIONS))
    date = time.strftime("%Y-%m-%d")
    out = Path(args.out or Path(__file__).parent / "results" / (date + ("-quick" if quick else "")))
    out.mkdir(parents=True, exist_ok=True)
    t_start = time.perf_counter()
    res = {"quick": quick, "date": date, "command": "python -m benchmarks" + (" --quick" if quick else ""),
           "environment": environment(), "notes": []}
    run = Run(data=args.data, quick=quick, out=out, res=res)
    for name, sec in SECTIONS.items():  # registration order, whatever order --sections names them
        if name in sections and (args.data or not sec.data):
            sec.run(run)

    res["total_seconds"] = time.perf_counter() - t_start
    cmd = "python -m benchmarks" + (" --quick" if quick else "") + (
        " --sections " + " ".join(sections) if args.sections else "")
    res["provenance"] = {sec: {"commit": res["environment"]["commit"], "command": cmd,
                               "date": date, "environment": res["environment"]}
                         for sec in sections}
    prev = out / "results.json"
    if args.sections and prev.exists():  # a partial rerun updates its sections only
        old = json.loads(prev.read_text(encoding="utf-8"))
        old.setdefault("reruns", []).append({"sections": list(sections),
                                             "seconds": res["total_seconds"], "date": date})
        for key, val in res.items():
            if key not in ("quick", "date", "command", "notes", "total_seconds", "environment",
                           "provenance"):
                old[key] = val
        old.setdefault("provenance", {})
        for sec in sections:
            old["provenance"][sec] = res["provenance"][sec]
        res = old
    (out / "results.json").write_text(json.dumps(res, indent=1, default=str), encoding="utf-8")
    R.write_report(res, out)
    print(f"\nwrote {out}/report.md ({time.perf_counter() - t_start:.0f}s)")
    if "coverage" in res:
        for name, cov in res["coverage"].items():
            print(f"winners per metric [{name}]:")
            for m, per in C.winners(cov).items():
                print(f"  {m}: " + ", ".join(f"k={k} {s}" for k, s in per.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
