"""The `alloy` command. Each subcommand imports its component lazily, so `alloy list` needs no torch."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from typing import Any

Command = Callable[[argparse.Namespace], int]


def _runtime(args: argparse.Namespace) -> int:
    from alloy.runtime.serve import serve
    from alloy.runtime.settings import RuntimeSettings

    flags = {
        name: getattr(args, name)
        for name in (
            "model_id",
            "source",
            "task",
            "pipeline_class",
            "dtype",
            "device",
            "host",
            "port",
            "max_queue",
            "log_level",
        )
    }
    settings = RuntimeSettings(**{name: value for name, value in flags.items() if value is not None})
    return serve(settings)


def _add_runtime(commands: Any) -> None:
    parser = commands.add_parser(
        "runtime",
        help="serve one model (what a model pod runs)",
        description="Load one pipeline and serve it. Flags override ALLOY_* variables.",
    )
    parser.add_argument(
        "--model", dest="model_id", help="model id clients use (e.g. alloy-tiny, z-image-turbo)"
    )
    parser.add_argument("--source", help="model directory, Hub repo (org/name[@revision]) or builtin:<name>")
    parser.add_argument("--task", choices=["text-to-image", "chat", "vision-chat"])
    parser.add_argument("--pipeline-class", help="diffusers pipeline class; detected when omitted")
    parser.add_argument("--dtype", help="torch dtype (default: bfloat16 on GPU, float32 on CPU)")
    parser.add_argument("--device", help="auto (default), cuda, cuda:N or cpu")
    parser.add_argument("--host", help="address to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, help="port to bind (default 8080)")
    parser.add_argument("--max-queue", type=int, help="requests that may wait (default 16)")
    parser.add_argument("--log-level", help="debug, info (default), warning, error")
    parser.set_defaults(command=_runtime)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="alloy", description="Serve generative models, scaled from zero.")
    commands = parser.add_subparsers(title="commands", required=True)
    _add_runtime(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    command: Command = args.command
    return command(args)


if __name__ == "__main__":
    sys.exit(main())
