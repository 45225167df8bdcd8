"""`connect-dynamics serve | socket | worker | demo | rotate-key | probe`."""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import shutil
import sys
import tempfile
from collections.abc import Iterator

from pydantic import ValidationError
from pydantic_settings import SettingsError
from starlette.applications import Starlette

from bot import logging_setup
from bot.config import SOCKET_REQUIRED, WEB_REQUIRED, WORKER_REQUIRED, Settings

# prometheus_client's multiprocess mode (bot.metrics): read when its first metric is made, so set early
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"


def _settings(required: tuple[str, ...]) -> Settings:
    try:
        settings = Settings()
    except ValidationError as exc:
        error = exc.errors()[0]
        name = ".".join(str(part) for part in error["loc"])
        raise SystemExit(f"connect-dynamics: invalid setting {name}: {error['msg']}.") from None
    except SettingsError as exc:
        raise SystemExit(f"connect-dynamics: invalid settings: {exc}.") from None
    settings.require(required)
    from bot.crypto import InvalidEncryptionKey, parse_keys

    try:
        parse_keys(settings.secret("ENCRYPTION_KEY"))
    except InvalidEncryptionKey as exc:
        raise SystemExit(f"connect-dynamics: invalid setting ENCRYPTION_KEY: {exc}.") from None
    return settings


def _log_format() -> str:
    """LOG_FORMAT before the command reads its settings; an invalid setting is named by that check."""
    try:
        return Settings().LOG_FORMAT
    except (ValidationError, SettingsError):
        return "text"


def web_factory() -> Starlette:
    """The web app, built in each uvicorn worker process."""
    from bot.app import build_app
    from bot.container import Container
    from bot.web import create_web_app

    settings = _settings(WEB_REQUIRED)
    logging_setup.configure(settings.LOG_FORMAT)  # a uvicorn worker process starts with no logging set up
    container = Container(settings)
    return create_web_app(build_app(container), container)


@contextlib.contextmanager
def multiprocess_metrics(settings: Settings) -> Iterator[None]:
    """With several uvicorn workers, each keeps its metrics in files under `PROMETHEUS_MULTIPROC_DIR`
    and a scrape of any worker sums them. The directory (a temporary one unless set, removed at the
    end) is made and emptied of an earlier run's files, and the variable set, before any worker starts."""
    given = os.environ.get(MULTIPROC_ENV)
    if not given and settings.WEB_CONCURRENCY == 1:
        yield
        return
    path = given or tempfile.mkdtemp(prefix="connect-dynamics-metrics-")
    os.makedirs(path, exist_ok=True)
    for name in os.listdir(path):
        if name.endswith(".db"):
            os.unlink(os.path.join(path, name))
    os.environ[MULTIPROC_ENV] = path
    try:
        yield
    finally:
        if not given:
            shutil.rmtree(path, ignore_errors=True)


def serve() -> None:
    import uvicorn

    settings = _settings(WEB_REQUIRED)
    with multiprocess_metrics(settings):
        uvicorn.run(
            "bot.cli:web_factory",
            factory=True,
            host=settings.HOST,
            port=settings.PORT,
            workers=settings.WEB_CONCURRENCY,
            log_level="info",
            log_config=None,  # uvicorn's loggers go to the root handler, in LOG_FORMAT
            access_log=False,
        )


def socket() -> None:
    from slack_bolt.adapter.socket_mode import SocketModeHandler

    from bot.app import build_app
    from bot.container import Container

    settings = _settings(SOCKET_REQUIRED)
    container = Container(settings)
    app = build_app(container)
    SocketModeHandler(app, settings.secret("SLACK_APP_TOKEN"), web_client=container.slack).start()


def worker() -> None:
    from bot.container import Container
    from bot.worker import run_worker

    run_worker(Container(_settings(WORKER_REQUIRED)))


ROTATE_KEY_REQUIRED = ("REDIS_URL", "ENCRYPTION_KEY")


def rotate_key() -> None:
    """Re-seal every stored secret with the newest key of ENCRYPTION_KEY; exits 1 when some could not be read."""
    from bot.crypto import SecretBox
    from bot.store import Store, connect

    settings = _settings(ROTATE_KEY_REQUIRED)
    store = Store(connect(settings.required("REDIS_URL")), SecretBox(settings.secret("ENCRYPTION_KEY")),
                  prefix=settings.REDIS_KEY_PREFIX)
    report = store.rotate_secrets()
    print(f"connect-dynamics: {report.rotated} secret(s) now sealed with the newest key.")
    if report.unreadable:
        print(f"connect-dynamics: {len(report.unreadable)} secret(s) could not be read with any configured key "
              f"(sealed with a key no longer in ENCRYPTION_KEY): {', '.join(report.unreadable)}. "
              "Put that key back and run rotate-key again, or have those connections' credentials entered again.")
        sys.exit(1)


def demo(args: argparse.Namespace) -> None:
    try:
        from sandbox.demo import run_demo
    except ModuleNotFoundError as exc:
        if exc.name not in ("sandbox", "sandbox.demo"):
            raise
        raise SystemExit(
            "connect-dynamics: the demo needs the emulators, which are not installed: "
            "run `pip install ./sandbox` from the repository (or `make demo`)."
        ) from None

    sys.exit(run_demo(leads=args.leads, contacts=args.contacts, accounts=args.accounts))


def probe(args: argparse.Namespace) -> None:
    """A container probe: one line, exit 0 when this container's process is healthy, 1 otherwise."""
    from bot.probes import probe as run_probe

    healthy, said = run_probe(args.target)
    print(f"connect-dynamics probe {args.target}: {said}")
    sys.exit(0 if healthy else 1)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="connect-dynamics", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("serve", help="the web process: Slack requests over HTTP, /livez, /readyz, /metrics")
    sub.add_parser("socket", help="the same app over Socket Mode (no public URL needed)")
    sub.add_parser("worker", help="an RQ worker running sync jobs")
    demo_parser = sub.add_parser("demo", help="the whole flow against the built-in emulators, in one process")
    demo_parser.add_argument("--leads", type=int, default=1200)
    demo_parser.add_argument("--contacts", type=int, default=600)
    demo_parser.add_argument("--accounts", type=int, default=150)
    sub.add_parser("rotate-key", help="re-encrypt every stored secret with the newest key of ENCRYPTION_KEY")
    probe_parser = sub.add_parser("probe", help="exit 0 when this container's web or worker process is healthy")
    probe_parser.add_argument("target", choices=["web", "worker", "auto"])
    args = parser.parse_args(argv)
    quiet = args.command == "demo"  # the demo prints a transcript; logs would drown it
    logging_setup.configure(_log_format(), level=logging.WARNING if quiet else logging.INFO)
    {"serve": serve, "socket": socket, "worker": worker, "rotate-key": rotate_key,
     "probe": lambda: probe(args)}.get(args.command, lambda: demo(args))()


if __name__ == "__main__":
    main()
