"""weir servers inside the test process: the app on a fresh SQLite file, served by uvicorn
in a daemon thread (for client and reporter tests that start, stop or delay a server)."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import uvicorn

from weir.testing.server import free_port


def weir_app(tmp_path: Path, **server_settings: Any) -> Any:
    from weir.server.app import create_app
    from weir.settings import Settings

    database_url = f"sqlite+aiosqlite:///{tmp_path / 'weir.db'}"
    settings = Settings(home=tmp_path, server={"database_url": database_url, **server_settings})
    return create_app(settings)


def serve(app: Any, port: int | None = None) -> tuple[uvicorn.Server, str]:
    """Serve an ASGI app with uvicorn in a daemon thread; return the server and its API URL."""
    port = port or free_port()
    server = uvicorn.Server(uvicorn.Config(app, port=port, log_level="warning", lifespan="auto"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.01)
    return server, f"http://127.0.0.1:{port}/api"
