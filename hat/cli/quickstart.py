"""``hat-quickstart``: the whole HAT pipeline on Multi30k de->en on this machine's CPU.

Stages (each resumes: a finished stage leaves ``<workdir>/.stages/<name>.json``, an interrupted one continues from
its own checkpoint, CSV or log): prepare data (joint BPE) -> train SuperTransformer -> profile latency (ONNX Runtime,
this CPU) -> fit predictor -> search under 3 budgets (one Pareto run) -> measure the found SubTransformers -> fine-tune
the one with the lowest inherited validation loss -> BLEU on test_2016_flickr -> export it to ONNX -> summary.
The pipeline is :func:`hat.quickstart.run_quickstart`.
"""

from __future__ import annotations

import argparse
import sys
from typing import Optional, Sequence

from hat.errors import cli_main
from hat.quickstart import PRESETS, QuickstartSettings, format_summary, run_quickstart

PROG = "hat-quickstart"


@cli_main(PROG)
def main(argv: Optional[Sequence[str]] = None) -> int:
    p = argparse.ArgumentParser(prog=PROG, description=__doc__.split("\n\n")[0])
    p.add_argument("--data-dir", help="Multi30k raw files (train.de[.gz], ...); default: $HAT_MULTI30K_DIR or the "
                   "project's shared data beside the checkout, else downloaded")
    p.add_argument("--workdir", default="runs/quickstart")
    p.add_argument("--preset", choices=sorted(PRESETS), default="tiny")
    p.add_argument("--threads", type=int, default=QuickstartSettings.threads)
    args = p.parse_args(argv)
    summary = run_quickstart(QuickstartSettings(workdir=args.workdir, preset=args.preset, threads=args.threads,
                                                data_dir=args.data_dir), log=print)
    print(format_summary(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
