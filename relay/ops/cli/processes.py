"""Commands that run the relay: serve, web, worker, and database migrations."""

from __future__ import annotations

import os
import sys

import click

from relay import db as database
from relay.ops import fleet, metrics
from relay.ops import serve as supervisor
from relay.ops.cli.common import Fail, configure_logging, load_runtime, load_settings
from relay.ops.serve import check_port, gunicorn_argv
from workers import worker as rq_worker


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=click.IntRange(1, 65535))
@click.option("--workers", default=2, show_default=True, type=click.IntRange(1, 64), help="RQ worker processes")
@click.option("--web-workers", default=2, show_default=True, type=click.IntRange(1, 64))
@click.option("--threads", default=4, show_default=True, type=click.IntRange(1, 64))
def serve(host: str, port: int, workers: int, web_workers: int, threads: int) -> None:
    """Run everything: migrations, web, workers, sweeper, and Redis when RELAY_REDIS_URL is unset."""
    settings = load_settings()
    configure_logging(settings)
    try:
        sys.exit(supervisor.run(settings, host, port, workers, web_workers, threads))
    except RuntimeError as exc:
        raise Fail(str(exc)) from None


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=click.IntRange(1, 65535))
@click.option("--web-workers", default=2, show_default=True, type=click.IntRange(1, 64))
@click.option("--threads", default=4, show_default=True, type=click.IntRange(1, 64))
def web(host: str, port: int, web_workers: int, threads: int) -> None:
    """Run the web process only (gunicorn)."""
    runtime = load_runtime()  # a bad setting is one line here, not a traceback from each gunicorn process
    try:
        check_port(host, port)
    except RuntimeError as exc:
        raise Fail(str(exc)) from None
    join_fleet(runtime)
    argv = gunicorn_argv(host, port, web_workers, threads)
    os.execv(argv[0], argv)


@click.command()
@click.option("--burst", is_flag=True, help="Stop when the queue is empty.")
def worker(burst: bool) -> None:
    """Run one RQ worker: its dispatcher keeps many sends in flight; its sweeper queues due work."""
    runtime = load_runtime()
    configure_logging(runtime.settings, runtime.known_secrets)
    if runtime.settings.metrics_port:  # first: a taken port is the one line, before this host joins anything
        metrics.expose(runtime.settings)
    fleet_id = join_fleet(runtime)
    beating = None if burst else fleet.keep(runtime, fleet_id)  # a burst worker is gone before its first beat
    try:
        rq_worker.run(runtime, burst=burst)
    finally:
        if beating is not None:
            beating.set()


def join_fleet(runtime) -> str:
    """A web or worker process alone needs the fleet's Redis, database and keys; else one line, nothing started."""
    if not runtime.settings.redis_url and not (runtime.settings.data_dir / "redis.sock").exists():
        raise Fail("RELAY_REDIS_URL is not set and no embedded Redis is running in "
                   f"{runtime.settings.data_dir}: set RELAY_REDIS_URL, or use `pact-relay serve`")
    return fleet.check(runtime)


@click.group()
def db() -> None:
    """Database migrations."""


@db.command("upgrade")
def db_upgrade() -> None:
    """Apply every pending migration."""
    database.upgrade(load_settings())
    click.echo("database is up to date")
