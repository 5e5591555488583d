"""The ``minprune compress`` subcommand's options (`minprune.commands.compress` runs it)."""

from __future__ import annotations

import argparse
from pathlib import Path

__all__ = ["add_compress_parser"]


def run_compress(args) -> int:
    """``minprune compress``: see `minprune.commands.compress`."""
    from minprune.commands.compress import main_command

    return main_command(args)


def add_compress_parser(commands) -> argparse.ArgumentParser:
    compress = commands.add_parser(
        "compress", help="Deep Compression's quantization and Huffman coding after pruning")
    compress.add_argument("model", choices=["lenet-300-100", "lenet5"])
    compress.add_argument("--checkpoint", type=Path, default=None,
                          help="a pruned model's checkpoint to start from (default: prune one "
                               "on 55,000 training images, reproduce's stages)")
    compress.add_argument("--data", type=Path, default=None, help="MNIST (default "
                                                                 "$MINPRUNE_DATA)")
    compress.add_argument("--tolerance", type=float, default=None,
                          help="bits: the fewest whose validation error stays within this of "
                               "the pruned model's (a fraction; default 0.002)")
    compress.add_argument("--results", type=Path, default=Path("results"))
    compress.add_argument("--work", type=Path, default=None,
                          help="where checkpoints go (default runs/compress-MODEL)")
    compress.add_argument("--fast", action="store_true",
                          help="minutes-long smoke run on a subset (not the results); "
                               "MINPRUNE_FAST=1 does the same")
    compress.add_argument("--no-progress", action="store_true")
    compress.set_defaults(run=run_compress)
    return compress
