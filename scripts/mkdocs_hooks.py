"""MkDocs hook: write docs/reference/cli.md from the argparse parsers before every build, so
the CLI reference cannot drift from the code (the file is generated, not committed)."""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _subparsers(parser: argparse.ArgumentParser):
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            yield from action.choices.items()


def _walk(parser, prefix: str, out: list[str], level: int) -> None:
    for name, sub in _subparsers(parser):
        cmd = f"{prefix} {name}"
        out += [f"{'#' * level} `{cmd}`", "", "```text", sub.format_help().rstrip(), "```", ""]
        _walk(sub, cmd, out, level + 1)


def cli_markdown() -> str:
    sys.path.insert(0, str(ROOT / "src"))
    os.environ["COLUMNS"] = "100"
    from ferkit.cli.commands import build_parser
    parser = build_parser()
    out = ["# Command-line reference", "",
           "Generated from the argparse parsers at every docs build.", "",
           "```text", parser.format_help().rstrip(), "```", ""]
    _walk(parser, "ferkit", out, 2)
    return "\n".join(out) + "\n"


def on_pre_build(config, **kwargs) -> None:
    path = Path(config["docs_dir"]) / "reference" / "cli.md"
    path.parent.mkdir(parents=True, exist_ok=True)
    text = cli_markdown()
    if not path.exists() or path.read_text() != text:
        path.write_text(text)
