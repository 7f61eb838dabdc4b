"""Raw record of a finished ``hat-quickstart`` run: every stage's result JSON (``<workdir>/.stages/*.json``, with its
seconds) and the summary, into ``benchmarks/results/quickstart_<preset>.json``.

    hat-quickstart --preset tiny --data-dir ../shared/data/multi30k --workdir runs/quickstart   # timed run
    python benchmarks/quickstart_record.py runs/quickstart --command "hat-quickstart --preset tiny ..." --wall-s 1126

The stage seconds come from the run itself; ``--wall-s`` (e.g. from ``/usr/bin/time``) adds the end-to-end wall time.
The load average in the record is the one at the time of this call: take it right after the run.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks.record import RunRecord  # noqa: E402


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("workdir")
    ap.add_argument("--preset", default="tiny")
    ap.add_argument("--command", help="the hat-quickstart command that was timed")
    ap.add_argument("--wall-s", type=float, help="end-to-end wall seconds of that command")
    ap.add_argument("--results", help="raw record path (default benchmarks/results/quickstart_<preset>.json)")
    args = ap.parse_args(argv)
    stages_dir = Path(args.workdir) / ".stages"
    if not stages_dir.is_dir():
        print(f"{stages_dir}: not found (run hat-quickstart first)", file=sys.stderr)
        return 2
    rec = RunRecord(f"quickstart_{args.preset}", out=args.results,
                    argv=args.command.split() if args.command else None)
    stages = sorted(stages_dir.glob("*.json"), key=lambda p: p.stat().st_mtime)
    samples = [{"stage": p.stem, **json.loads(p.read_text())} for p in stages]
    summary = {"stage_seconds": {s["stage"]: s.get("seconds") for s in samples},
               "sum_stage_seconds": sum(s.get("seconds") or 0 for s in samples), "wall_s": args.wall_s}
    run_summary = Path(args.workdir) / "summary.json"  # the table it printed: predicted ms, the kept model
    if run_summary.is_file():
        summary["quickstart_summary"] = json.loads(run_summary.read_text())
    print(json.dumps(summary, indent=1))
    print(f"raw record: {rec.write(args=vars(args), samples=samples, summary=summary)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
