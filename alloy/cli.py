"""The `alloy` command. Each subcommand imports its component lazily, so `alloy list` needs no torch."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
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


def _serve(args: argparse.Namespace) -> int:
    from alloy.router.config import ConfigError, load_config
    from alloy.router.serve import serve

    try:
        config = load_config(
            args.config,
            host=args.host,
            port=args.port,
            backend=args.backend,
            namespace=args.namespace,
            api_keys=args.api_key or None,
            log_level=args.log_level,
        )
    except ConfigError as error:
        print(f"alloy serve: {error}", file=sys.stderr)
        return 2
    return serve(config)


def _add_serve(commands: Any) -> None:
    parser = commands.add_parser(
        "serve",
        help="run the router: one URL for every model, woken on demand",
        description="Start the router. With no --config it serves the default catalog "
        "and the alloy-tiny demo models with the local backend.",
    )
    parser.add_argument("--config", type=Path, help="alloy.yaml with models and router settings")
    parser.add_argument("--host", help="address to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, help="port to bind (default 8000)")
    parser.add_argument("--backend", choices=["local", "kubernetes"], help="where models run (default local)")
    parser.add_argument(
        "--namespace", help="kubernetes backend: serve the AlloyModels of one namespace (default all)"
    )
    parser.add_argument("--api-key", action="append", help="require this Bearer key (repeatable)")
    parser.add_argument("--log-level", help="debug, info (default), warning, error")
    parser.set_defaults(command=_serve)


def _list(args: argparse.Namespace) -> int:
    from alloy.client import AlloyClient
    from alloy.tables import format_table

    with AlloyClient(args.url) as client:
        listing = client.models()
    rows = [
        (
            m["model_id"],
            m["task"],
            m["allocation_status"],
            m["active_requests"],
            m["replicas"],
            "yes" if m["is_supported"] else "no",
            _short(m.get("message")),
        )
        for group in ("image", "audio", "video", "text")
        for m in listing.get(group, [])
    ]
    print(format_table(["MODEL", "TASK", "STATUS", "ACTIVE", "REPLICAS", "SUPPORTED", "MESSAGE"], rows))
    return 0


def _ps(args: argparse.Namespace) -> int:
    from alloy.client import AlloyClient
    from alloy.tables import format_table, gib

    with AlloyClient(args.url) as client:
        ps = client.ps()
    rows = [
        (
            m["model_id"],
            m["replica"],
            m["state"],
            ",".join(m["devices"]),
            gib(m["memory_reserved_bytes"]),
            gib(m.get("memory_used_bytes")),
            m["active_requests"],
            m.get("expires_at") or "never",
        )
        for m in ps["models"]
    ]
    print(
        format_table(["MODEL", "REPLICA", "STATE", "DEVICES", "RESERVED", "USED", "ACTIVE", "EXPIRES"], rows)
    )
    print()
    devices = [
        (d["id"], d["kind"], d["name"], gib(d["memory_reserved_bytes"]), gib(d["memory_total_bytes"]))
        for d in ps["devices"]
    ]
    print(format_table(["DEVICE", "KIND", "NAME", "RESERVED", "TOTAL"], devices))
    return 0


def _short(text: str | None, width: int = 60) -> str | None:
    if text is None:
        return None
    line = text.splitlines()[0] if text else text
    return line if len(line) <= width else line[: width - 1] + "…"


def _add_client_commands(commands: Any) -> None:
    for name, handler, summary in (
        ("list", _list, "list the router's models"),
        ("ps", _ps, "show resident models and devices"),
    ):
        parser = commands.add_parser(name, help=summary, description=summary)
        parser.add_argument("--url", help="router URL (default: ALLOY_URL, else http://127.0.0.1:8000)")
        parser.set_defaults(command=handler)


def _operator(args: argparse.Namespace) -> int:
    from alloy.operator.config import OperatorConfigError
    from alloy.operator.run import run

    try:
        return run(namespace=args.namespace, config_path=args.config)
    except OperatorConfigError as error:
        print(f"alloy operator: {error}", file=sys.stderr)
        return 2


def _add_operator(commands: Any) -> None:
    parser = commands.add_parser(
        "operator",
        help="run the Kubernetes operator for AlloyModels",
        description="Turn AlloyModels into Deployments and Services and keep their status.",
    )
    parser.add_argument("--namespace", help="watch one namespace (default: all)")
    parser.add_argument(
        "--config", type=Path, help="node pools and pod defaults (default: $ALLOY_OPERATOR_CONFIG)"
    )
    parser.set_defaults(command=_operator)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="alloy", description="Serve generative models, scaled from zero.")
    commands = parser.add_subparsers(title="commands", required=True)
    _add_serve(commands)
    _add_client_commands(commands)
    _add_runtime(commands)
    _add_operator(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    command: Command = args.command
    try:
        return command(args)
    except _client_errors() as error:
        print(f"alloy {sys.argv[1] if len(sys.argv) > 1 else ''}: {error}", file=sys.stderr)
        return 1


def _client_errors() -> tuple[type[Exception], ...]:
    import httpx

    from alloy.client import AlloyError

    return (AlloyError, httpx.TransportError)


if __name__ == "__main__":
    sys.exit(main())
