"""A model catalogue served on loopback for the download and provisioning tests.

`serve_catalogue()` starts a threaded HTTP server answering GET for the paths in its `files`
(404 otherwise) and counting every request in `requests`; `stop()` ends it. Clearing `open`
holds every answer but the index until the test sets it again.
"""

from __future__ import annotations

import http.server
import threading
from dataclasses import dataclass, field


@dataclass
class Catalogue:
    """A running loopback catalogue: its base URL, the files it serves, the paths asked for."""

    base: str
    files: dict[str, bytes]
    requests: list[str] = field(default_factory=list)
    open: threading.Event = field(default_factory=threading.Event)
    server: http.server.ThreadingHTTPServer | None = None

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()


def serve_catalogue(files: dict[str, bytes] | None = None) -> Catalogue:
    """Serve `files` (path -> body) on 127.0.0.1 at a free port."""
    catalogue = Catalogue("", dict(files or {}))
    catalogue.open.set()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            catalogue.requests.append(self.path)
            if not self.path.endswith("/index.json"):
                catalogue.open.wait(120)
            body = catalogue.files.get(self.path)
            self.send_response(200 if body is not None else 404)
            self.send_header("Content-Length", str(len(body or b"")))
            self.end_headers()
            self.wfile.write(body or b"")

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    catalogue.server = server
    catalogue.base = f"http://127.0.0.1:{server.server_address[1]}"
    return catalogue
