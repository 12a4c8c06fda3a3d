"""`buckle report RUN_DIR...`: eval runs side by side as Markdown, HTML and PNG charts."""
from __future__ import annotations

import argparse

HELP = "compare eval runs: Markdown table, HTML page and PNG charts with n and 95-percent confidence intervals"


def add_arguments(p: argparse.ArgumentParser) -> None:
    """Register `buckle report` flags."""
    p.add_argument("runs", nargs="+", metavar="RUN_DIR", help="eval run directories (or a dir holding them)")
    p.add_argument("--output", required=True, help="directory for report.md, report.html and *.png")


def run(args: argparse.Namespace) -> int:
    """Run `buckle report`; prints the table and where the files are."""
    from buckle.eval.report import render

    paths = render(args.runs, args.output)
    print(paths["table"])
    print(f"report: {paths['markdown']}, {paths['html']}, {len(paths['charts'])} charts in {args.output}")
    return 0
