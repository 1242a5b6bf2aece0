"""The `ferkit` command: argparse shells over the Python API, one module per command group
(commands: train, evaluate, analyze, audit, ...; semi: pseudo-label; serve: serve and
survey; tools: explain, gan, temporal, quantize)."""
from ferkit.cli.commands import build_parser, main

__all__ = ["build_parser", "main"]
