"""The viewer's local web server: a fixed set of routes over one ``predict`` output folder.

:class:`Viewer` maps a request path to a response, with no sockets (the tests call it directly);
:func:`serve` puts it behind a :class:`~http.server.ThreadingHTTPServer`, bound to 127.0.0.1 by default.

A URL never becomes a file path. The routes are patterns of digits and fixed names (``/slide/3/image_files/
12/4_7.jpeg``) looked up in the catalog; the page's own files are read into memory at start and found by
exact name; nothing is percent-decoded, so ``..``, ``%2e%2e``, absolute paths and links out of the folder
match no route. The slide itself is never served, only tiles drawn from it. On a loopback address, requests
naming another host (a web page rebinding its domain to 127.0.0.1) are refused.
"""

from __future__ import annotations

import collections
import ipaddress
import json
import re
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from typing import Any
from urllib.parse import parse_qs

from teachseg.errors import ConfigError, DataError
from teachseg.viewer.catalog import Catalog, Entry, is_inside
from teachseg.viewer.tiles import COLOUR_STOPS, ProbabilityTiles, SlideTiles

CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".png": "image/png",
}
JSON = "application/json; charset=utf-8"
#: The page loads only its own files (no inline script, nothing from elsewhere: it works offline).
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data: blob:; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
#: How many slides' tile sources stay open (a cohort can hold hundreds of slides).
OPEN_SOURCES = 8
_ID = r"/slide/(?P<id>\d{1,9})"
_TILE = r"/(?P<level>\d{1,3})/(?P<col>\d{1,9})_(?P<row>\d{1,9})"


@dataclass
class Response:
    """Status, body and content type of one answer; tiles may be cached by the browser."""

    status: int
    body: bytes
    content_type: str = "text/plain; charset=utf-8"
    cacheable: bool = False


def _text(status: int, message: str) -> Response:
    return Response(status, (message + "\n").encode())


def _json(data: Any) -> Response:
    return Response(200, json.dumps(data).encode(), JSON)


NOT_FOUND = "not found (the viewer serves only its page, the folder's slide list, tiles and outlines)"


def load_static() -> dict[str, Response]:
    """The page's files (``static/``, one folder deep), by URL path; ``/`` is ``index.html``."""
    root = resources.files("teachseg.viewer").joinpath("static")
    found: dict[str, Response] = {}

    def add(entry: Any, url: str) -> None:
        suffix = "." + entry.name.rsplit(".", 1)[-1]
        if suffix in CONTENT_TYPES:
            found[url] = Response(200, entry.read_bytes(), CONTENT_TYPES[suffix], cacheable=suffix == ".png")

    for entry in root.iterdir():
        if entry.is_file():
            add(entry, f"/static/{entry.name}")
        elif entry.is_dir():
            for sub in entry.iterdir():
                if sub.is_file():
                    add(sub, f"/static/{entry.name}/{sub.name}")
    found["/"] = found["/static/index.html"]
    return found


class Viewer:
    """The routes over one :class:`~teachseg.viewer.catalog.Catalog`: request target in, :class:`Response` out.

    Args:
        log: receives one line per problem found while serving (a slide that will not open, a failed tile).
    """

    def __init__(self, catalog: Catalog, log: Callable[[str], None] = lambda s: None):
        self.catalog = catalog
        self.log = log
        self.static = load_static()
        #: Host headers accepted (None: any); set by :func:`serve` for a loopback address.
        self.allowed_hosts: set[str] | None = None
        self._sources: collections.OrderedDict[tuple[str, int], Any] = collections.OrderedDict()
        self._lock = threading.Lock()
        self._logged: set[str] = set()
        # each route gets the pattern's numbers (id, level, col, row) and the query string
        routes: list[tuple[str, Callable[[dict[str, int], str], Response]]] = [
            (r"/api/folder\.json", lambda a, q: self._folder()),
            (_ID + r"/info\.json", lambda a, q: self._info(a["id"])),
            (_ID + r"/image\.dzi", lambda a, q: self._dzi("image", a["id"])),
            (_ID + r"/image_files" + _TILE + r"\.jpeg", lambda a, q: self._tile("image", **a)),
            (_ID + r"/probability\.dzi", lambda a, q: self._dzi("probability", a["id"])),
            (_ID + r"/probability_files" + _TILE + r"\.png", lambda a, q: self._tile("probability", **a)),
            (_ID + r"/outlines\.geojson", lambda a, q: self._outlines(a["id"])),
            (_ID + r"/value\.json", lambda a, q: self._value(a["id"], q)),
        ]
        self.routes = [(re.compile(p), f) for p, f in routes]

    def handle(self, target: str, host: str | None = None) -> Response:
        """The response to ``GET target`` (a request target as sent: path and query, not decoded)."""
        if self.allowed_hosts is not None and (host or "").lower() not in self.allowed_hosts:
            return _text(403, "refused: this viewer answers only requests addressed to its own host and port")
        if not target.startswith("/") or target.startswith("//"):
            return _text(400, "bad request target")
        path, _, query = target.partition("?")
        if path in self.static:
            return self.static[path]
        for pattern, route in self.routes:
            m = pattern.fullmatch(path)
            if m:
                try:
                    return route({k: int(v) for k, v in m.groupdict().items()}, query)
                except _Missing as exc:
                    return _text(404, str(exc))
                except Exception as exc:  # a slide that breaks mid-read must not stop the server
                    self._report(f"{path}: {type(exc).__name__}: {exc}")
                    return _text(500, f"{type(exc).__name__}: {exc}")
        return _text(404, NOT_FOUND)

    # ------------------------------------------------------------------ routes

    def _folder(self) -> Response:
        return _json(
            {
                "folder": str(self.catalog.folder),
                "slides": [e.to_json() for e in self.catalog.entries],
                "failures": self.catalog.failures,
                "colours": [[p, list(c)] for p, c in COLOUR_STOPS],
            }
        )

    def _info(self, id: int) -> Response:
        entry = self._entry(id)
        image, prob = self._source("image", entry), self._source("probability", entry)
        data = entry.to_json()  # after opening: problems found on the way are in it
        data["layers"] = {
            "image": image is not None,
            "probability": prob is not None,
            "outlines": entry.outlines is not None,
        }
        return _json(data)

    def _dzi(self, kind: str, id: int) -> Response:
        source = self._need(kind, self._entry(id))
        return Response(200, source.dzi().encode(), "application/xml; charset=utf-8")

    def _tile(self, kind: str, id: int, level: int, col: int, row: int) -> Response:
        source = self._need(kind, self._entry(id))
        try:
            body = source.tile(level, col, row)
        except ValueError:
            raise _Missing(f"no tile {col}_{row} at level {level}") from None
        return Response(200, body, "image/jpeg" if kind == "image" else "image/png", cacheable=True)

    def _outlines(self, id: int) -> Response:
        entry = self._entry(id)
        if entry.outlines is None or not is_inside(self.catalog.folder, entry.outlines):
            raise _Missing(f"{entry.name} has no outlines in {self.catalog.folder}")
        return Response(200, entry.outlines.read_bytes(), "application/geo+json; charset=utf-8")

    def _value(self, id: int, query: str) -> Response:
        source = self._need("probability", self._entry(id))
        q = parse_qs(query)
        try:
            x, y = float(q["x"][0]), float(q["y"][0])
        except (KeyError, ValueError):
            return _text(400, "give x and y (level-0 pixels)")
        return _json({"x": x, "y": y, "probability": source.value(x, y)})

    # ------------------------------------------------------------------ sources

    def _entry(self, id: int) -> Entry:
        if id >= len(self.catalog.entries):
            raise _Missing(f"no slide {id}")
        return self.catalog.entries[id]

    def _need(self, kind: str, entry: Entry) -> Any:
        source = self._source(kind, entry)
        if source is None:
            raise _Missing(f"{entry.name}: no {kind} to show ({'; '.join(entry.problems) or 'none'})")
        return source

    def _source(self, kind: str, entry: Entry) -> SlideTiles | ProbabilityTiles | None:
        """The entry's open tile source of ``kind`` (None, with a problem recorded, when it cannot open)."""
        key = (kind, entry.id)
        with self._lock:
            if key in self._sources:
                self._sources.move_to_end(key)
                return self._sources[key]
        source = self._open(kind, entry)
        with self._lock:
            self._sources[key] = source
            while len(self._sources) > OPEN_SOURCES:
                # a dropped source closes once the requests still reading it are done (OpenSlide frees
                # its handle on garbage collection)
                self._sources.popitem(last=False)
        return source

    def _open(self, kind: str, entry: Entry) -> SlideTiles | ProbabilityTiles | None:
        s = entry.summary
        path = entry.slide if kind == "image" else entry.probability
        if s is None or path is None:
            return None
        if kind == "probability" and not is_inside(self.catalog.folder, path):
            self._problem(
                entry, f"the probability map {path.name} is no longer a file in the folder; not shown"
            )
            return None
        try:
            if kind == "probability":
                return ProbabilityTiles(path, s.width, s.height)
            tiles = SlideTiles(path)
        except DataError as exc:
            self._problem(entry, f"cannot open the {kind}: {exc}")
            return None
        if tiles.dimensions != (s.width, s.height):
            w, h = tiles.dimensions
            self._problem(
                entry,
                f"the slide at {path} is {w}x{h} px but was {s.width}x{s.height} px when predicted: not the same "
                "file, so it is not shown under the prediction. Fix: put the predicted slide back, or predict "
                "this one again",
            )
            return None
        return tiles

    def _problem(self, entry: Entry, message: str) -> None:
        with self._lock:
            if message not in entry.problems:
                entry.problems.append(message)
        self._report(f"{entry.name}: {message}")

    def _report(self, line: str) -> None:
        with self._lock:
            if line in self._logged:
                return
            self._logged.add(line)
        self.log(line)


class _Missing(Exception):
    """A route's target does not exist (answered 404)."""


# ---------------------------------------------------------------------- HTTP


class _Handler(BaseHTTPRequestHandler):
    server: ViewerServer
    protocol_version = "HTTP/1.1"  # keep-alive: a screenful of tiles over a few connections

    def do_GET(self) -> None:
        self._answer(head=False)

    def do_HEAD(self) -> None:
        self._answer(head=True)

    def _answer(self, head: bool) -> None:
        resp = self.server.viewer.handle(self.path, self.headers.get("Host"))
        self.send_response(resp.status)
        self.send_header("Content-Type", resp.content_type)
        self.send_header("Content-Length", str(len(resp.body)))
        self.send_header("Cache-Control", "private, max-age=600" if resp.cacheable else "no-store")
        self.send_header("X-Content-Type-Options", "nosniff")
        self.send_header("Referrer-Policy", "no-referrer")
        if resp.content_type.startswith("text/html"):
            self.send_header("Content-Security-Policy", CSP)
        self.end_headers()
        if not head:
            self.wfile.write(resp.body)

    def log_message(self, format: str, *args: Any) -> None:
        pass  # one line per tile would drown the problems, which the viewer logs itself


class ViewerServer(ThreadingHTTPServer):
    """A threading HTTP server answering with a :class:`Viewer`; ``url`` is where it listens."""

    daemon_threads = True

    def __init__(self, address: tuple[str, int], viewer: Viewer, family: socket.AddressFamily):
        self.address_family = family
        self.viewer = viewer
        super().__init__(address, _Handler)

    @property
    def bound(self) -> tuple[str, int]:
        """The address and port listened on."""
        host, port = self.server_address[:2]
        return host.decode() if isinstance(host, bytes) else str(host), int(port)

    @property
    def url(self) -> str:
        host, port = self.bound
        return f"http://{f'[{host}]' if ':' in host else host}:{port}/"

    def handle_error(self, request: Any, client_address: Any) -> None:
        import sys

        exc = sys.exc_info()[1]
        if isinstance(exc, ConnectionError):  # the page moved on and dropped a tile it had asked for
            return
        super().handle_error(request, client_address)


def serve(viewer: Viewer, host: str = "127.0.0.1", port: int = 0) -> ViewerServer:
    """Bind a :class:`ViewerServer` to ``host:port`` (port 0: a free one); call ``serve_forever`` on it.

    Raises:
        ConfigError: when the address cannot be listened on (in use, not this machine's).
    """
    try:
        family, _, _, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
        server = ViewerServer((str(address[0]), int(address[1])), viewer, family)
    except OSError as exc:
        raise ConfigError(
            f"cannot listen on {host}:{port} ({exc.strerror or exc})",
            fix="give another --port (0 picks a free one), or a --host of this machine (default 127.0.0.1)",
        ) from None
    bound_host, bound_port = server.bound
    if _is_loopback(bound_host):
        names = {"127.0.0.1", "localhost", "[::1]", host.lower(), f"[{bound_host}]", bound_host}
        viewer.allowed_hosts = {f"{n}:{bound_port}" for n in names}
    return server


def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
