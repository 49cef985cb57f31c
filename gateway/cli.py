"""``lgsp-gateway``: serve, check and inspect a configuration, make API keys."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Sequence
from typing import Any

import msgspec

from gateway import __version__, auth
from gateway.config import ConfigInvalid, LoadedConfig, load_config
from gateway.config.model import GatewayConfig

DEFAULT_CONFIG = os.environ.get("LGSP_CONFIG", "config/gateway.yaml")


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    result: int = args.func(args)
    return result


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="lgsp-gateway", description=__doc__)
    parser.add_argument("--version", action="version", version=__version__)
    commands = parser.add_subparsers(required=True, metavar="COMMAND")

    serve = commands.add_parser("serve", help="run the gateway")
    _config_option(serve)
    serve.add_argument("--host", help="listen address (default: server.host in the config)")
    serve.add_argument("--port", type=int, help="listen port (default: server.port)")
    serve.set_defaults(func=cmd_serve)

    config = commands.add_parser("config", help="check a config or print its JSON Schema")
    config_commands = config.add_subparsers(required=True, metavar="ACTION")
    check = config_commands.add_parser(
        "check", help="validate; every error as FILE:LINE: key: message"
    )
    _config_option(check)
    check.set_defaults(func=cmd_config_check)
    schema = config_commands.add_parser(
        "schema", help="JSON Schema of the config file, for editors"
    )
    schema.set_defaults(func=cmd_config_schema)

    routes = commands.add_parser("routes", help="table of the configured routes")
    _config_option(routes)
    routes.set_defaults(func=cmd_routes)

    keygen = commands.add_parser("keygen", help="make a new API key and the hash to put in YAML")
    keygen.set_defaults(func=cmd_keygen)

    adapters = commands.add_parser("adapters", help="list installed adapter types")
    adapters.set_defaults(func=cmd_adapters)
    return parser


def _config_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--config", default=DEFAULT_CONFIG, help=f"config file (default: {DEFAULT_CONFIG})"
    )


def _load_or_report(path: str) -> LoadedConfig | None:
    try:
        return load_config(path)
    except ConfigInvalid as exc:
        for issue in exc.issues:
            print(issue, file=sys.stderr)
        print(f"{path}: {len(exc.issues)} error(s)", file=sys.stderr)
        return None


def cmd_serve(args: argparse.Namespace) -> int:
    import uvicorn

    from gateway import logs
    from gateway.app import create_app

    loaded = _load_or_report(args.config)
    if loaded is None:
        return 1
    server = loaded.config.server
    logs.configure(loaded.config.logging)
    app = create_app(args.config, loaded=loaded, handle_sighup=True)
    uvicorn.run(
        app,
        host=args.host or server.host,
        port=args.port or server.port,
        access_log=False,  # the gateway writes its own line per request
        server_header=False,
        log_config=None,  # uvicorn's loggers go through gateway.logs (JSON, masked)
    )
    return 0


def cmd_config_check(args: argparse.Namespace) -> int:
    from gateway.runtime import build_runtime

    loaded = _load_or_report(args.config)
    if loaded is None:
        return 1
    try:  # adapters get their say too: a missing WSDL is a config error
        runtime = build_runtime(loaded)
    except ConfigInvalid as exc:
        for issue in exc.issues:
            print(issue, file=sys.stderr)
        return 1
    asyncio.run(runtime.close())
    config = loaded.config
    print(
        f"{args.config}: OK ({len(config.clients)} clients, {len(config.upstreams)} upstreams, "
        f"{len(config.routes)} routes; digest {loaded.digest[:12]})"
    )
    return 0


def cmd_config_schema(_: argparse.Namespace) -> int:
    sys.stdout.write(
        msgspec.json.format(msgspec.json.encode(config_json_schema()), indent=2).decode()
    )
    sys.stdout.write("\n")
    return 0


def config_json_schema() -> dict[str, Any]:
    """GatewayConfig's schema, with each upstream typed by its adapter's settings."""
    from adapters import registry

    adapters = registry.available()
    settings = [factory.Settings for factory in adapters.values()]
    (root, *per_adapter), components = msgspec.json.schema_components(
        [GatewayConfig, *settings], ref_template="#/$defs/{name}"
    )
    variants = []
    for name, schema in zip(adapters, per_adapter, strict=True):
        definition = components[schema["$ref"].rsplit("/", 1)[1]]
        definition["properties"] = {"type": {"const": name}, **definition["properties"]}
        definition["required"] = ["type", *definition.get("required", [])]
        variants.append(schema)
    components["GatewayConfig"]["properties"]["upstreams"]["additionalProperties"] = {
        "oneOf": variants
    }
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "LGSP gateway configuration",
        **root,
        "$defs": components,
    }


def cmd_routes(args: argparse.Namespace) -> int:
    loaded = _load_or_report(args.config)
    if loaded is None:
        return 1
    header = ("ID", "METHOD", "PATH", "CLIENTS", "UPSTREAM", "SCHEMA")
    rows = [header]
    for route in loaded.config.routes:
        upstream = route.upstream + (f" ({route.operation})" if route.operation else "")
        schema = route.request.schema if route.request else "-"
        rows.append(
            (
                route.id,
                route.match.method,
                route.match.path,
                ",".join(route.clients),
                upstream,
                schema,
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    for row in rows:
        print(
            "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        )
    return 0


def cmd_keygen(_: argparse.Namespace) -> int:
    key = auth.new_key()
    print(f"key:  {key}\nhash: {auth.hash_key(key)}")
    print(
        "Give the key to the agency; put only the hash in the config (api_keys).", file=sys.stderr
    )
    return 0


def cmd_adapters(_: argparse.Namespace) -> int:
    from adapters import registry

    for name, factory in registry.available().items():
        print(f"{name:10} {factory.__module__}.{getattr(factory, '__qualname__', factory)}")
    return 0
