"""The `tradetalk` command: serve, token, and the engines' models / translate / transcribe."""

from __future__ import annotations

import argparse
import logging
import sys

from aiohttp import web

from server.config import SettingError, Settings
from server.storage.embedded_redis import EmbeddedRedis
from server.tokens import DEFAULT_TTL, TokenError, TokenKey, check_identity, issue_token
from translation.commands import add_commands, run_command


def serve(settings: Settings) -> None:
    """Run the server until Ctrl-C, with an embedded Redis when REDIS_URL isn't set."""
    from server.app import create_app
    from server.provisioning import add_provisioning

    embedded = None
    redis_url = settings.redis_url
    if redis_url is None:
        embedded = EmbeddedRedis(settings.data_dir / "redis")
        redis_url = embedded.start()
        embedded.supervise()
        print(f"embedded redis-server on 127.0.0.1:{embedded.port}, data in {embedded.data_dir}")
    if settings.metrics_port:
        from prometheus_client import start_http_server

        start_http_server(settings.metrics_port, addr="127.0.0.1")
        print(f"metrics on http://127.0.0.1:{settings.metrics_port}/metrics")
    try:
        app = create_app(settings, redis_url)
        add_provisioning(app, settings)  # after the engines load; never delays serving
        print(f"TradeTalk on http://{settings.host}:{settings.port}", flush=True)
        web.run_app(app, host=settings.host, port=settings.port, print=None, shutdown_timeout=5)
    finally:
        if embedded is not None:
            embedded.stop()


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `tradetalk` console script."""
    parser = argparse.ArgumentParser(prog="tradetalk", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("serve", help="run the server (PORT, HOST, REDIS_URL, TRADETALK_DATA)")
    token = commands.add_parser("token", help="print a signed token for a user")
    token.add_argument("--user", required=True, help="user id")
    token.add_argument("--name", required=True, help="display name")
    token.add_argument("--role", required=True, choices=["buyer", "supplier", "agent"])
    token.add_argument("--lang", required=True, help="language code, e.g. en, es, zh")
    token.add_argument("--ttl", type=int, default=DEFAULT_TTL, help="lifetime in seconds")
    add_commands(commands)
    args = parser.parse_args(argv)

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    logging.getLogger("aioice").setLevel(logging.WARNING)  # one line per ICE check otherwise
    try:
        settings = Settings.from_env()
    except SettingError as exc:
        print(f"tradetalk: {exc}", file=sys.stderr)
        return 2
    handled = run_command(args, settings.data_dir)
    if handled is not None:
        return handled
    if args.command == "serve":
        serve(settings)
    elif args.command == "token":
        try:
            identity = check_identity(args.user, args.name, args.role, args.lang)
            key = TokenKey.of(settings.secret, settings.token_issuer, settings.token_audience)
            print(issue_token(key, identity, args.ttl))
        except TokenError as exc:
            print(f"tradetalk token: {exc}", file=sys.stderr)
            return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
