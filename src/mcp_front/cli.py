"""`mcp-front`: serve, validate or start a configuration. Nothing here the library cannot do."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from mcp_front import __version__
from mcp_front.config import ConfigError, GatewayConfig, load_config, starter_config
from mcp_front.config.compatibility import inert_keys
from mcp_front.gateway import Gateway, GatewayError

EXIT_OK = 0
EXIT_INVALID = 1
EXIT_USAGE = 2


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(_accept_go_flags(list(sys.argv[1:] if argv is None else argv)))
    if args.command is None:
        _parser().print_help(sys.stderr)
        return EXIT_USAGE
    handler = {"serve": _serve, "validate": _validate, "init": _init, "keys": _keys}[args.command]
    return handler(args)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mcp-front", description="OAuth 2.1 gateway for MCP servers")
    parser.add_argument("--version", action="version", version=f"mcp-front {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    serve = commands.add_parser("serve", help="run the gateway")
    serve.add_argument("--config", required=True, metavar="PATH", help="the JSON configuration file")
    serve.add_argument("--host", help="address to listen on (default: from proxy.addr)")
    serve.add_argument("--port", type=int, help="port to listen on (default: from proxy.addr)")
    serve.add_argument("--tls-cert", metavar="PATH", help="serve HTTPS with this PEM certificate chain")
    serve.add_argument("--tls-key", metavar="PATH", help="… and this PEM private key (default: proxy.tls)")
    serve.add_argument(
        "--advertise-url",
        metavar="URL",
        help="where other replicas reach this one (default: proxy.advertiseURL, else the listen address)",
    )
    serve.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    serve.add_argument("--log-format", default="text", choices=["text", "json"])

    validate = commands.add_parser("validate", help="check a configuration and print every problem")
    validate.add_argument("--config", required=True, metavar="PATH")

    init = commands.add_parser("init", help="write a starter configuration")
    init.add_argument("path", nargs="?", default="config.json")
    init.add_argument("--force", action="store_true", help="overwrite an existing file")

    keys = commands.add_parser("keys", help="show or rotate the keys that sign access tokens")
    keys.add_argument("action", choices=["show", "rotate"])
    keys.add_argument("--config", required=True, metavar="PATH")
    keys.add_argument("--keep", type=int, default=2, help="previous keys kept for verification (rotate)")
    return parser


def _accept_go_flags(argv: list[str]) -> list[str]:
    """`mcp-front -config PATH` (the Go version's form) means `serve --config PATH`."""
    if argv and (argv[0] in ("-config", "--config") or argv[0].startswith(("-config=", "--config="))):
        value = argv[0].partition("=")[2]
        rest = argv[1:]
        return ["serve", "--config", value, *rest] if value else ["serve", "--config", *rest]
    if argv and argv[0] == "-version":
        return ["--version"]
    return argv


def _load(path: str) -> GatewayConfig | None:
    try:
        return load_config(path)
    except ConfigError as error:
        print(error, file=sys.stderr)
        return None


def _validate(args: argparse.Namespace) -> int:
    import anyio

    config = _load(args.config)
    if config is None:
        return EXIT_INVALID
    try:
        gateway = Gateway(config)
    except GatewayError as error:
        print(f"{args.config}: {error}", file=sys.stderr)
        return EXIT_INVALID
    for issue in [*inert_keys(config), *anyio.run(gateway.sandbox_warnings)]:
        print(f"{args.config}: warning: {issue}", file=sys.stderr)
    print(f"{args.config}: valid ({len(config.mcp_servers)} service(s): {', '.join(config.mcp_servers)})")
    return EXIT_OK


def _init(args: argparse.Namespace) -> int:
    path = Path(args.path)
    if path.exists() and not args.force:
        print(f"{path} already exists; pass --force to overwrite it", file=sys.stderr)
        return EXIT_INVALID
    path.write_text(json.dumps(starter_config(), indent=2) + "\n")
    print(f"wrote {path}; set MCP_FRONT_TOKEN, then run: mcp-front serve --config {path}")
    return EXIT_OK


def _keys(args: argparse.Namespace) -> int:
    """Signing keys live in the store (unless the config names a PEM); show or rotate them there."""
    import anyio

    from mcp_front.auth.signing_keys import load_signing_keys, rotate_signing_keys
    from mcp_front.crypto import Keyring
    from mcp_front.storage import open_store

    config = _load(args.config)
    if config is None:
        return EXIT_INVALID
    auth = config.proxy.auth
    if auth is None:
        print(f"{args.config}: there is no proxy.auth block, so no signing keys", file=sys.stderr)
        return EXIT_INVALID
    if auth.signing_key is not None and args.action == "rotate":
        print("proxy.auth.signingKey names the key: rotate it by changing that PEM", file=sys.stderr)
        return EXIT_INVALID
    keyring = Keyring.from_secret(
        auth.encryption_key.get_secret_value(),
        previous=[k.get_secret_value() for k in auth.previous_encryption_keys],
    )
    pem = auth.signing_key.get_secret_value() if auth.signing_key else None

    async def run() -> None:
        store = open_store(auth.storage)
        try:
            if args.action == "rotate":
                keys = await rotate_signing_keys(store, keyring, keep=args.keep)
            else:
                keys = await load_signing_keys(store, keyring, configured_pem=pem)
        finally:
            await store.aclose()
        print(f"signing: {keys.current.kid} ({keys.current.alg})")
        for key in keys.previous:
            print(f"verifying only: {key.kid} ({key.alg})")

    anyio.run(run)
    return EXIT_OK


def _serve(args: argparse.Namespace) -> int:
    from mcp_front.app import create_app
    from mcp_front.logs import configure_logging
    from mcp_front.serving import (
        GatewayServer,
        TLSFilesError,
        checked_tls_files,
        close_inherited_descriptors_on_exec,
        make_undumpable,
        raise_open_files_limit,
        reap_as_process_one,
        uvicorn_config,
    )

    reap_as_process_one()
    configure_logging(args.log_level, args.log_format)
    if (args.tls_cert is None) != (args.tls_key is None):
        print("mcp-front serve: --tls-cert and --tls-key go together: give both", file=sys.stderr)
        return EXIT_USAGE
    config = _load(args.config)
    if config is None:
        return EXIT_INVALID
    tls: dict[str, str] = {}
    if args.tls_cert is not None:
        tls = {"ssl_certfile": args.tls_cert, "ssl_keyfile": args.tls_key}
        sources = ("--tls-cert", "--tls-key")
    elif config.proxy.tls is not None:
        tls = {"ssl_certfile": config.proxy.tls.cert_file, "ssl_keyfile": config.proxy.tls.key_file}
        sources = ("proxy.tls.certFile", "proxy.tls.keyFile")
    if tls:
        try:
            checked_tls_files(
                tls["ssl_certfile"], tls["ssl_keyfile"], cert_source=sources[0], key_source=sources[1]
            )
        except TLSFilesError as error:
            print(f"{args.config}: {error}", file=sys.stderr)
            return EXIT_INVALID
    host = args.host or config.proxy.listen_host
    port = args.port if args.port is not None else config.proxy.listen_port
    advertised = args.advertise_url or config.proxy.advertise_url
    if advertised is None:
        listening = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        advertised = config.proxy.model_copy(update={"addr": listening}).internal_url
        if tls and advertised.startswith("http://"):
            advertised = "https://" + advertised.removeprefix("http://")
    config = config.model_copy(
        update={"proxy": config.proxy.model_copy(update={"advertise_url": advertised})}
    )
    # Before the gateway starts any process: none of them, nor any other process of this
    # user, reads its environment or memory from then on.
    make_undumpable()
    close_inherited_descriptors_on_exec()
    try:
        app = create_app(config)
    except GatewayError as error:
        print(f"{args.config}: {error}", file=sys.stderr)
        return EXIT_INVALID
    raise_open_files_limit()
    server = GatewayServer(
        app.state.gateway,
        uvicorn_config(
            app,
            host=host,
            port=port,
            request_read_timeout=config.proxy.request_read_timeout.total_seconds(),
            **tls,
        ),
    )
    server.run()
    return EXIT_OK if server.started else EXIT_INVALID


if __name__ == "__main__":
    sys.exit(main())
