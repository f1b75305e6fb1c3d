"""Running the server process: bind the socket, build the app, serve it with uvicorn.

The socket is bound before anything else, so a port in use is one clear sentence
instead of a uvicorn traceback, and the app (imports, database, migrations) starts
only once the address is ours.
"""

from __future__ import annotations

import errno
import gc
import logging
import socket
import time

from weir.exceptions import ConfigurationError

logger = logging.getLogger("weir.server")


def bind_socket(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # IPPROTO_TCP explicitly: asyncio sets TCP_NODELAY on accepted connections only then,
    # and without it every keep-alive response waits ~40 ms for a delayed ACK
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            raise ConfigurationError(
                f"Port {port} on {host} is already in use; stop the process using it or start "
                "weir on another port with --port (or WEIR_SERVER_PORT)."
            ) from None
        raise ConfigurationError(f"Cannot listen on {host}:{port}: {exc.strerror}.") from None
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def serve(host: str, port: int, *, services: bool = True, log_level: str = "info") -> None:
    """Serve the API on host:port until interrupted (Ctrl-C or SIGTERM)."""
    started = time.monotonic()
    sock = bind_socket(host, port)
    # A request allocates thousands of short-lived objects (rows, models, dicts); with
    # Python's default first-generation threshold (700) the collector ran full passes
    # worth ~20% of the server's CPU on bulk writes. Collect less often, and keep the
    # long-lived objects of start-up out of every pass (frozen once the app is up).
    gc.set_threshold(50_000, 20, 20)
    import uvicorn

    from weir.server.app import create_app
    from weir.server.messaging.broker import check_broker
    from weir.settings import get_settings

    settings = get_settings()
    check_broker(settings)  # a misconfigured broker is one sentence, not a uvicorn traceback
    app = create_app(settings, services=services)
    shown_host = f"[{host}]" if ":" in host else host

    class Server(uvicorn.Server):
        async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
            # long polls (claims, heartbeats) answer now: uvicorn waits for open
            # requests before it stops, and they would hold it for their whole wait
            wakeups = getattr(app.state, "wakeups", None)
            if wakeups is not None:
                wakeups.close()
            await super().shutdown(sockets)

        async def startup(self, sockets: list[socket.socket] | None = None) -> None:
            await super().startup(sockets)
            gc.collect()
            gc.freeze()
            gc.enable()  # `weir server start` turns it off while it imports
            if self.started:
                logger.info(
                    "weir server listening on http://%s:%d (API at /api, docs at /docs); "
                    "ready in %.2f s",
                    shown_host,
                    port,
                    time.monotonic() - started,
                )

    config = uvicorn.Config(
        app, log_level=log_level, access_log=False, lifespan="on", timeout_graceful_shutdown=10
    )
    Server(config).run(sockets=[sock])
