"""``lgsp-gateway``: serve, check and inspect a configuration, make API keys."""

from __future__ import annotations

import argparse
import asyncio
import gc
import math
import os
import socket
import sys
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Any

import msgspec

from adapters import registry
from gateway import __version__, auth
from gateway.config.loader import ConfigInvalid, LoadedConfig, load_config
from gateway.config.model import GatewayConfig

if TYPE_CHECKING:
    from gateway.store import Store

DEFAULT_CONFIG = os.environ.get("LGSP_CONFIG", "config/gateway.yaml")
DEMO_ISSUER_KEY = "config/demo-identity/issuer-DEMO-ONLY.key"


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
    serve.add_argument(
        "--workers",
        type=_positive,
        default=1,
        metavar="N",
        help="gateway processes on the port, sharing the database (default: 1; use the cores)",
    )
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

    systems = registry.mock_systems()
    mocks_text = ", ".join(f"{name} on {s.default_port}" for name, s in systems.items())
    mock_help = f"run mock national systems ({mocks_text}) for integration tests"
    mock = commands.add_parser("mock", help=mock_help, description=mock_help)
    mock.add_argument("system", choices=[*systems, "all"])
    mock.add_argument("--host", default="127.0.0.1", help="listen address (default: 127.0.0.1)")
    mock.add_argument("--port", type=int, help="listen port of one system (default: its own)")
    mock.add_argument(
        "--option",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="an option of the mock's create_app (VALUE read as JSON if it parses, "
        "else as text), e.g. callback_url=http://127.0.0.1:8080/callback",
    )
    mock.set_defaults(func=cmd_mock)

    keygen = commands.add_parser("keygen", help="make a new API key and the hash to put in YAML")
    keygen.set_defaults(func=cmd_keygen)

    token = commands.add_parser(
        "token",
        help="DEMO: mint a bearer token with the demo issuer's key (never a production issuer)",
    )
    _config_option(token)
    token.add_argument("--client", required=True, help="client id (claims client_id and sub)")
    token.add_argument("--scope", action="append", default=[], help="a scope (repeatable)")
    token.add_argument("--ttl", default="10m", help="lifetime, a duration (default 10m)")
    token.add_argument(
        "--key", default=str(DEMO_ISSUER_KEY), help=f"signing key, PEM (default {DEMO_ISSUER_KEY})"
    )
    token.set_defaults(func=cmd_token)

    adapters = commands.add_parser("adapters", help="list installed adapter types")
    adapters.set_defaults(func=cmd_adapters)

    from gateway.signatures.cli import add_commands as add_signature_commands

    add_signature_commands(commands)  # verify FILE, trust check [CERT]

    from gateway.edxmlcli import add_commands as add_edxml_commands

    add_edxml_commands(commands)  # edxml check FILE...

    db = commands.add_parser("db", help="the database of the message log and delivery queue")
    db_commands = db.add_subparsers(required=True, metavar="ACTION")
    migrate = db_commands.add_parser("migrate", help="bring the schema up to date")
    _config_option(migrate)
    migrate.set_defaults(func=cmd_db_migrate)

    message_log = commands.add_parser("log", help="the tamper-evident message log")
    log_commands = message_log.add_subparsers(required=True, metavar="ACTION")
    verify = log_commands.add_parser("verify", help="check every hash chain; name the first break")
    _config_option(verify)
    verify.set_defaults(func=cmd_log_verify)
    purge = log_commands.add_parser("purge", help="delete (archiving first if set) old records")
    _config_option(purge)
    purge.add_argument("--older-than", required=True, help="a duration, e.g. 365d")
    purge.set_defaults(func=cmd_log_purge)
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


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected 1 or more, not {value}")
    return value


def cmd_serve(args: argparse.Namespace) -> int:
    import uvicorn

    from adapters.units import seconds
    from gateway import banner, edge, logs, metrics, tracing, workers
    from gateway.app import create_app
    from gateway.identity import certificates

    loaded = _load_or_report(args.config)
    if loaded is None:
        return 1
    server = loaded.config.server
    host, port = args.host or server.host, args.port or server.port
    several = args.workers > 1
    if several and server.metrics_listen and not metrics.MULTIPROCESS_DIR:
        print(
            "--workers with server.metrics_listen needs PROMETHEUS_MULTIPROC_DIR (an empty "
            "directory), or the listener would show one process's metrics",
            file=sys.stderr,
        )
        return 2
    logs.configure(loaded.config.logging)
    # With several workers the parent runs the mocks, once (gateway.workers).
    app = create_app(args.config, loaded=loaded, handle_sighup=True, run_mocks=not several)
    console = logs.console_wanted(loaded.config.logging, None)
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        access_log=False,  # the gateway writes its own line per request
        server_header=False,
        proxy_headers=False,  # X-Forwarded-* would stand for the peer's address: not trusted
        log_config=None,  # uvicorn's loggers go through gateway.logs (JSON, masked)
        # SIGTERM: stop accepting, let requests in flight finish, then shut down
        timeout_graceful_shutdown=math.ceil(seconds(server.shutdown_grace)),
        **edge.uvicorn_options(server),  # limits; the peer's certificate recorded
        **certificates.uvicorn_tls_options(server.tls, os.path.dirname(loaded.path)),
    )

    def serve(index: int, sock: socket.socket | None = None) -> None:
        """One gateway process; the first announces the gateway and serves ``metrics_listen``
        (the sum of all workers' metrics, through PROMETHEUS_MULTIPROC_DIR)."""
        tracing.configure(loaded.config.tracing)
        stop_metrics = None

        async def started() -> None:
            if index == 0:
                banner.announce(loaded, host, port, console=console)
            gc.freeze()  # what startup built lives as long as the process: no collection scans it

        app.on_startup.append(started)
        if index == 0 and server.metrics_listen:
            stop_metrics = metrics.start_listener(server.metrics_listen)
        runner = uvicorn.Server(config)
        try:
            runner.run(sockets=None if sock is None else [sock])
        except KeyboardInterrupt:  # uvicorn re-raises the SIGINT it stopped for
            pass
        finally:
            if stop_metrics is not None:
                stop_metrics()
            tracing.shutdown()
            metrics.process_exited()
        if not runner.started:  # as uvicorn.run: the app or the socket did not start
            raise SystemExit(workers.STARTUP_FAILURE)

    if not several:
        serve(0)
        return 0

    async def migrate(store: Store) -> int:  # once, before the workers open the database
        await store.migrate()
        return 0

    if _with_store(args, migrate) != 0:
        return 1
    try:
        listening = config.bind_socket()
    except OSError as exc:
        print(f"lgsp-gateway serve: {host}:{port}: {exc}", file=sys.stderr)
        return 1
    try:
        return workers.supervise(args.workers, listening, serve, loaded.config.mocks)
    except RuntimeError as exc:  # the mocks did not start (a port taken, a bad option)
        print(f"lgsp-gateway serve: {exc}", file=sys.stderr)
        return 1


def cmd_mock(args: argparse.Namespace) -> int:
    from adapters.mockkit import serve
    from gateway import mockrunner
    from gateway.config.model import MockSettings

    names = list(registry.mock_systems()) if args.system == "all" else [args.system]
    if args.port is not None and len(names) > 1:
        print("--port names the port of one system; `all` uses each one's own", file=sys.stderr)
        return 2
    try:
        options = dict(_option(text) for text in args.option)
        servers = [
            mockrunner.build(name, MockSettings(host=args.host, port=args.port, options=options))
            for name in names
        ]
    except ValueError as exc:
        print(f"lgsp-gateway mock: {exc}", file=sys.stderr)
        return 2

    async def started() -> None:
        for server in mockrunner.describe(servers):
            print(f"{server['mock']}: {server['url']}", flush=True)

    try:
        asyncio.run(serve(servers, started))
    except KeyboardInterrupt:
        pass
    except OSError as exc:
        print(f"lgsp-gateway mock: {exc}", file=sys.stderr)
        return 1
    return 0


def _option(text: str) -> tuple[str, Any]:
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise ValueError(f"--option {text!r}: expected KEY=VALUE")
    try:
        return key, msgspec.json.decode(value)
    except msgspec.DecodeError:
        return key, value


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
    for owner, specs in [("admin", config.admin.api_keys)] + [
        (f"client {c.id}", c.api_keys) for c in config.clients
    ]:
        for digest, end in auth.expiring_keys(specs):
            print(f"warning: {owner}: key {digest[:19]}... expires {end}", file=sys.stderr)
    print(
        f"{args.config}: OK ({len(config.clients)} clients, {len(config.upstreams)} upstreams, "
        f"{len(config.routes)} routes, {len(config.services)} services; "
        f"digest {loaded.digest[:12]})"
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

    from gateway.config.model import UpstreamTraffic

    adapters = registry.available()
    settings = [factory.Settings for factory in adapters.values()]
    (root, traffic, *per_adapter), components = msgspec.json.schema_components(
        [GatewayConfig, UpstreamTraffic, *settings], ref_template="#/$defs/{name}"
    )
    gateway_keys = components[traffic["$ref"].rsplit("/", 1)[1]]["properties"]
    variants = []
    for name, schema in zip(adapters, per_adapter, strict=True):
        definition = components[schema["$ref"].rsplit("/", 1)[1]]
        definition["properties"] = {
            "type": {"const": name},
            **definition["properties"],
            **gateway_keys,  # circuit_breaker, max_in_flight: the gateway's, on every upstream
        }
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
    """The routes, their service, and who may call them: the YAML's ``clients`` and, after a
    ``+``, the clients whose access agreement is in force (read from the database)."""
    loaded = _load_or_report(args.config)
    if loaded is None:
        return 1
    agreed = _agreements(loaded)
    service_of = {route: s.id for s in loaded.config.services for route in s.routes}
    header = ("ID", "METHOD", "PATH", "SERVICE", "CLIENTS", "UPSTREAM", "SCHEMA")
    rows = [header]
    for route in loaded.config.routes:
        upstream = route.upstream + (f" ({route.operation})" if route.operation else "")
        schema = route.request.schema if route.request else "-"
        service = service_of.get(route.id, "-")
        clients = ",".join(route.clients)
        extra = sorted(c for c in agreed.get(service, ()) if c not in route.clients)
        if extra:
            clients += " +" + ",".join(extra)
        rows.append(
            (route.id, route.match.method, route.match.path, service, clients, upstream, schema)
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    for row in rows:
        print(
            "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        )
    if agreed:
        print("(+ client: access agreement approved, see /admin/access-requests)")
    return 0


def _agreements(loaded: LoadedConfig) -> dict[str, set[str]]:
    """Service -> clients with an approval in force; none if the database cannot be read."""
    from gateway.catalogue.access import AccessAgreements, Filter
    from gateway.store import open_store

    async def read() -> dict[str, set[str]]:
        store = await open_store(loaded.config.storage.url, os.path.dirname(loaded.path))
        try:
            approved = await AccessAgreements(store, None).list(Filter(state="approved"))
        finally:
            await store.close()
        found: dict[str, set[str]] = {}
        for item in approved:
            found.setdefault(item["service"], set()).add(item["client"])
        return found

    try:
        return asyncio.run(read())
    except Exception as exc:  # the table of routes is still worth printing
        print(f"access agreements not shown: {type(exc).__name__}: {exc}", file=sys.stderr)
        return {}


def cmd_keygen(_: argparse.Namespace) -> int:
    key = auth.new_key()
    print(f"key:  {key}\nhash: {auth.hash_key(key)}")
    print(
        "Give the key to the agency; put only the hash in the config (api_keys).", file=sys.stderr
    )
    return 0


def cmd_token(args: argparse.Namespace) -> int:
    import re

    from adapters.units import DURATION_PATTERN, seconds
    from gateway.identity.demo import mint

    loaded = _load_or_report(args.config)
    if loaded is None:
        return 1
    tokens = loaded.config.identity.tokens
    if tokens is None:
        print(f"{args.config}: no identity.tokens section: no issuer to mint for", file=sys.stderr)
        return 1
    if not re.match(DURATION_PATTERN, args.ttl):
        print(f"--ttl: expected a duration such as 10m, not {args.ttl!r}", file=sys.stderr)
        return 2
    try:
        with open(args.key, "rb") as handle:
            key = handle.read()
    except OSError as exc:
        print(f"--key: {exc}", file=sys.stderr)
        return 1
    print(mint(key, tokens, args.client, args.scope, seconds(args.ttl)))
    return 0


def _with_store(args: argparse.Namespace, work: Callable[[Store], Awaitable[int]]) -> int:
    """Open the configured database, run ``work`` on it, close it."""
    from gateway.store import open_store

    loaded = _load_or_report(args.config)
    if loaded is None:
        return 1

    async def run() -> int:
        store = await open_store(loaded.config.storage.url, os.path.dirname(loaded.path))
        try:
            return await work(store)
        finally:
            await store.close()

    return asyncio.run(run())


def cmd_db_migrate(args: argparse.Namespace) -> int:
    from gateway.store.migrations import LATEST

    async def work(store: Store) -> int:
        applied = await store.migrate()  # open_store has migrated already; this reports it
        print(f"schema at version {LATEST}" + (f" (applied {applied})" if applied else ""))
        return 0

    return _with_store(args, work)


def cmd_log_verify(args: argparse.Namespace) -> int:
    from gateway.messagelog import verify_chains

    async def work(store: Store) -> int:
        reports = await verify_chains(store)
        for report in reports:
            if report.ok:
                print(f"{report.log_id}: OK ({report.records} records from {report.first_seq})")
            else:
                print(f"{report.log_id}: BROKEN at record {report.broken_at}: {report.reason}")
        if not reports:
            print("the message log is empty")
        return 0 if all(r.ok for r in reports) else 1

    return _with_store(args, work)


def cmd_log_purge(args: argparse.Namespace) -> int:
    import re
    import time

    from adapters.units import DURATION_PATTERN, seconds
    from gateway.messagelog import purge

    if not re.match(DURATION_PATTERN, args.older_than):
        print(f"--older-than: expected a duration such as 365d, not {args.older_than!r}")
        return 2
    loaded = _load_or_report(args.config)
    if loaded is None:
        return 1
    archive = loaded.config.message_log.archive_dir
    archive_dir = os.path.join(os.path.dirname(loaded.path), archive) if archive else None

    async def work(store: Store) -> int:
        purged = await purge(store, time.time() - seconds(args.older_than), archive_dir)
        print(f"purged {purged} records" + (f", archived in {archive_dir}" if archive_dir else ""))
        return 0

    return _with_store(args, work)


def cmd_adapters(_: argparse.Namespace) -> int:
    for name, factory in registry.available().items():
        print(f"{name:10} {factory.__module__}.{getattr(factory, '__qualname__', factory)}")
    return 0
