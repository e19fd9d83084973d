"""The `tradetalk` command: serve, worker, token, and the engines' models / translate /
transcribe."""

from __future__ import annotations

import argparse
import logging
import os
import sys

from aiohttp import web

from server.config import SettingError, Settings
from server.shutdown import WATCHDOG_EXIT, Stopping, Watchdog, lingering_threads
from server.storage.embedded_redis import EmbeddedRedis
from server.tokens import DEFAULT_TTL, TokenError, check_identity, issue_token
from translation.commands import add_commands, run_command

log = logging.getLogger("tradetalk")


def serve(settings: Settings) -> None:
    """Run the server until SIGTERM or Ctrl-C, with an embedded Redis when REDIS_URL isn't set.

    A stop ends within `settings.stop_timeout_s`: the app ends or moves its calls and tours and
    closes its sockets (`Realtime.shutdown`/`stop`), then the embedded Redis stops (it is never
    restarted once the stop began); a watchdog ends the process if anything hangs past that.
    """
    from server.app import SERVICES, create_app
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
    last_words = (lambda: embedded.stop(timeout=1.0)) if embedded is not None else None
    watchdog = Watchdog(settings.stop_timeout_s, last_words, exit_code=WATCHDOG_EXIT)
    stopping = Stopping(settings.stop_timeout_s)
    try:
        app = create_app(settings, redis_url)
        realtime = app[SERVICES]["realtime"]
        realtime.owns_process = True
        stopping = realtime.stopping
        stopping.hooks.append(watchdog.arm)
        add_provisioning(app, settings)  # after the engines load; never delays serving
        if embedded is not None:
            stopping.hooks.append(embedded.hold)
        print(f"TradeTalk on http://{settings.host}:{settings.port}", flush=True)
        web.run_app(
            app,
            host=settings.host,
            port=settings.port,
            print=None,
            shutdown_timeout=0.5,  # per connection, twice: the sockets were closed already
        )
    finally:
        stopping.begin("the server stopped")
        if embedded is not None:
            embedded.stop(timeout=stopping.left(0.95))
        lingering = lingering_threads(min(0.3, stopping.left(0.95)))
        if lingering:  # the interpreter would wait for them
            log.warning("stopping: threads still running: %s", ", ".join(lingering))
        log.info("stopped in %.2f s", stopping.elapsed())
    # Everything is stored and stopped. Skip the interpreter's teardown: freeing the loaded
    # speech models alone takes seconds, and a thread left running would be waited for.
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `tradetalk` console script."""
    parser = argparse.ArgumentParser(prog="tradetalk", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("serve", help="run the server (PORT, HOST, REDIS_URL, TRADETALK_DATA)")
    worker = commands.add_parser(
        "worker", help="recognize speech for the media nodes on REDIS_URL (TRADETALK_DATA)"
    )
    worker.add_argument("--id", default=None, help="worker id (default: host-pid)")
    worker.add_argument("--slots", type=int, default=8, help="utterances at once (8)")
    worker.add_argument(
        "--languages", default="", help="load only these before joining, e.g. ko,en (all)"
    )
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
    elif args.command == "worker":
        from server.recognition.worker import run_worker

        languages = [x.strip() for x in args.languages.split(",") if x.strip()] or None
        return run_worker(settings, args.id, max(1, args.slots), languages)
    elif args.command == "token":
        try:
            identity = check_identity(args.user, args.name, args.role, args.lang)
            key = settings.token_key()
            print(issue_token(key, identity, args.ttl))
        except TokenError as exc:
            print(f"tradetalk token: {exc}", file=sys.stderr)
            return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
