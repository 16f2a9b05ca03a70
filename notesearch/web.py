"""`notesearch serve`: a local web page to search the notes and see each hit on its page.

    /                          search box, course and mode filters, ranked results
    /page/<doc_id>/<n>         page n rendered (a Markdown note: section n as HTML), the hit's
                               passage (or figure) highlighted and its answer marked more strongly
    /render/<doc_id>/<n>.png   the rendered page itself, cached under index/renders/
    /pdf/<doc_id>              the original PDF (append #page=N to open it at a page)
    /note-image/<doc_id>/<p>   an image that Markdown note embeds, p relative to the notes folder
    /figure/<sha256>.png       a figure extracted at index time
    /api/search, /api/status   the CLI's `--json` output, over HTTP

URLs name documents by their id in the index and figures by their hash, so the app can only
ever read the notes files and figures the index lists, and the images those notes embed.
Only FastAPI and Jinja2 load at import; the index (numpy, FAISS, ONNX Runtime) opens on the
first request and pdfium on the first page view.
"""

from __future__ import annotations

import dataclasses
import errno
import os
import re
import socket
import sys
import threading
import time
import webbrowser
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager, suppress
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlencode

import jinja2
from fastapi import FastAPI, Request
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from starlette.exceptions import HTTPException
from starlette.middleware.trustedhost import TrustedHostMiddleware

from . import hints
from .courses import COURSES, course_label, parse_course
from .errors import BadQuery, NotesearchError, NoteUnreadable
from .rank import MODES
from .records import pages_cited
from .snippet import shown

if TYPE_CHECKING:
    from .embed import Embedder
    from .index import NoteIndex
    from .records import Hit, StoredDocument, StoredPassage

HERE = Path(__file__).parent
PAGE_RESULTS = 10
WORKERS = os.cpu_count() or 1  # `serve` processes: one per core (see `serve`)
POOL_SIZE = 4  # requests searching at once in one process; the rest wait their turn
SERVE_INDEX, SERVE_ANY_HOST = "NOTESEARCH_SERVE_INDEX", "NOTESEARCH_SERVE_ANY_HOST"
LOCAL_HOSTS = ["127.0.0.1", "localhost", "::1", "testserver"]  # testserver: TestClient's host
_SHA256 = re.compile(r"[0-9a-f]{64}")
SECURITY_HEADERS = {
    # No script runs on these pages; inline style attributes place the highlight boxes.
    "Content-Security-Policy": "default-src 'none'; img-src 'self'; style-src 'self' "
                               "'unsafe-inline'; form-action 'self'; frame-ancestors 'none'; "
                               "base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}


class IndexHolder:
    """Open `NoteIndex`es of the live generation, lent out one per request.

    A `NoteIndex` holds one SQLite connection, which two threads must not use at once, so each
    concurrent request borrows its own; the ONNX query model (a thread-safe session, 90 MB) is
    loaded once and shared by them all. At most `size` requests search at a time: more would
    only contend for the cores. When a rebuild swaps generations, new requests get indexes of
    the new one and an old index is closed when its request gives it back, never under it.
    """

    def __init__(self, root: Path, size: int = POOL_SIZE) -> None:
        self.root = Path(root)
        self._slots = threading.BoundedSemaphore(size)
        self._lock = threading.Lock()  # guards the two fields below
        self._idle: list[NoteIndex] = []  # all of one generation
        self._embedder: Embedder | None = None

    @contextmanager
    def use(self) -> Iterator[NoteIndex]:
        """An index of the live generation, this request's alone for the block; raises
        NotesearchError when there is none."""
        with self._slots:
            index = self._borrow()
            try:
                yield index
            finally:
                self._give_back(index)

    def _borrow(self) -> NoteIndex:
        from .index import NoteIndex

        with self._lock:
            if self._idle and not self._idle[0].is_live():
                stale, self._idle = self._idle, []
                for index in stale:  # idle: no request holds them
                    index.close()
            if self._idle:
                return self._idle.pop()
            shared = self._embedder
        index = NoteIndex.open(self.root, queries="concurrent", embedder=shared)
        with self._lock:  # the first index loads the model; later ones reuse it
            self._embedder = index.embedder
        return index

    def _give_back(self, index: NoteIndex) -> None:
        if index.is_live():
            with self._lock:
                if not self._idle or self._idle[0].generation == index.generation:
                    self._idle.append(index)
                    return
        index.close()  # a rebuild swapped generations while it was lent out


# ----------------------------------------------------------------------------- the app

def create_app(index_dir: Path, *, allowed_hosts: list[str] | None = None) -> FastAPI:
    """The web app over the index at `index_dir` (which need not exist yet).

    Args:
        index_dir: the index folder, as given to `notesearch index --index`.
        allowed_hosts: Host header values to answer; by default only the loopback names, so a
            web page elsewhere cannot reach the notes through DNS rebinding. ["*"] allows all.

    Returns:
        The FastAPI application; `serve` runs it with uvicorn, tests with TestClient.
    """
    app = FastAPI(title="notesearch", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.notes = IndexHolder(Path(index_dir))
    app.add_middleware(TrustedHostMiddleware, allowed_hosts=allowed_hosts or LOCAL_HOSTS)

    @app.middleware("http")
    async def security_headers(request: Request,
                               call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        """Defence in depth: even a missed escape could not run a script or load a resource."""
        response = await call_next(request)
        response.headers.update(SECURITY_HEADERS)
        return response

    app.add_exception_handler(HTTPException, _http_error)
    app.add_exception_handler(NotesearchError, _notesearch_error)
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")
    for path, endpoint in [
        ("/", search_page),
        ("/page/{doc_id:int}/{number:int}", page_view),
        ("/render/{doc_id:int}/{number:int}.png", page_image),
        ("/pdf/{doc_id:int}", original_pdf),
        ("/note-image/{doc_id:int}/{relative:path}", note_image),
        ("/figure/{sha}.png", figure_image),
        ("/api/search", api_search),
        ("/api/status", api_status),
    ]:
        # HEAD too: `curl -I` and link checkers got 405
        app.add_api_route(path, endpoint, methods=["GET", "HEAD"], include_in_schema=False)
    return app


def _templates() -> Jinja2Templates:
    """Templates with autoescaping on for every file: query text is never markup."""
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(HERE / "templates"),
                             autoescape=True, trim_blocks=True, lstrip_blocks=True)
    env.globals.update(courses=COURSES, modes=MODES)
    return Jinja2Templates(env=env)


TEMPLATES = _templates()


def _holder(request: Request) -> IndexHolder:
    """The app's index holder (one per app, so tests can run several apps side by side)."""
    return request.app.state.notes


def _wants_json(request: Request) -> bool:
    """API callers get errors as JSON; people get a page."""
    return request.url.path.startswith("/api/")


async def _http_error(request: Request, exc: HTTPException) -> Response:
    """404s and friends: JSON under /api/, else a short page that says what was not found."""
    detail = exc.detail if isinstance(exc.detail, str) else "not found"
    if _wants_json(request):
        return JSONResponse({"error": detail}, status_code=exc.status_code)
    return TEMPLATES.TemplateResponse(
        request, "message.html", {"title": "Not found" if exc.status_code == 404 else "Error",
                                  "message": detail, "command": None},
        status_code=exc.status_code)


async def _notesearch_error(request: Request, exc: NotesearchError) -> Response:
    """No index, or one this version cannot read: say what to run instead of a traceback."""
    status = 400 if isinstance(exc, BadQuery) else 503
    if _wants_json(request):
        return JSONResponse({"error": str(exc)}, status_code=status)
    holder = _holder(request)
    return TEMPLATES.TemplateResponse(
        request, "message.html",
        {"title": "No index to search" if status == 503 else "Bad request", "message": str(exc),
         "command": hints.index_command(holder.root, None) if status == 503 else None},
        status_code=status)


# ----------------------------------------------------------------------------- search

def parse_search(q: str, k: str, course: str, mode: str) -> tuple[str, int, int | None, str]:
    """Query-string values -> `NoteIndex.search` arguments, or BadQuery naming the bad one.

    Parsed by hand rather than by FastAPI's validation so that every mistake gets the same
    {"error": message} answer (status 400) as the CLI's one-line errors.
    """
    if not q.strip():
        raise BadQuery("the query is empty; type what you are looking for")
    try:
        top = int(k)
    except ValueError:
        raise BadQuery(f"k must be a whole number, not {k!r}") from None
    if top < 1:
        raise BadQuery(f"k must be at least 1, not {top}")
    try:
        chosen = parse_course(course)
    except ValueError as error:
        raise BadQuery(str(error)) from None
    if mode not in MODES:
        raise BadQuery(f"mode must be one of {', '.join(MODES)}, not {mode!r}")
    return q, top, chosen, mode


def api_search(request: Request, q: str = "", k: str = "5", course: str = "",
               mode: str = "hybrid") -> JSONResponse:
    """`notesearch search --json` over HTTP: the same list of `asdict(Hit)`."""
    query, top, chosen, mode = parse_search(q, k, course, mode)
    with _holder(request).use() as index:
        hits = index.search(query, k=top, course=chosen, mode=mode)
    return JSONResponse([dataclasses.asdict(h) for h in hits])


def api_status(request: Request) -> JSONResponse:
    """`notesearch status --json` over HTTP."""
    with _holder(request).use() as index:
        return JSONResponse(index.status())


def search_page(request: Request, q: str = "", course: str = "", mode: str = "hybrid",
                k: str = str(PAGE_RESULTS)) -> Response:
    """The search form and, when the URL holds a query, its ranked results."""
    form = {"q": q, "course": course, "mode": mode if mode in MODES else "hybrid", "k": k}
    with suppress(ValueError):  # "C2", "improving": the filter stays chosen in the form
        form["course"] = str(parse_course(course) or "")
    context: dict[str, Any] = {"form": form, "hits": None, "error": None, "seconds": None}
    if not q.strip():
        with _holder(request).use() as index:  # no index -> the page that says what to run
            context["courses"] = index.courses()
        return TEMPLATES.TemplateResponse(request, "search.html", context)
    try:
        query, top, chosen, mode = parse_search(q, k, course, mode)
        started = time.perf_counter()
        with _holder(request).use() as index:
            hits = index.search(query, k=top, course=chosen, mode=mode)
            context["courses"] = index.courses()
            opens = [index.answer_page(h, query) for h in hits]
        context["seconds"] = time.perf_counter() - started
    except BadQuery as exc:
        context["error"] = str(exc)
        return TEMPLATES.TemplateResponse(request, "search.html", context, status_code=400)
    context["hits"] = [hit_view(h, q, course, form["mode"], page)
                       for h, page in zip(hits, opens, strict=True)]
    context["confident"] = any(h.confident for h in hits)
    return TEMPLATES.TemplateResponse(request, "search.html", context)


def hit_view(hit: Hit, query: str, course: str, mode: str, opens: int) -> dict[str, Any]:
    """What the results list shows of one hit; the template only lays it out. `opens`: the
    page its link opens (`NoteIndex.answer_page`)."""
    return {
        "rank": hit.rank, "score": hit.score, "file": hit.file, "kind": hit.kind,
        "label": course_label(hit.course, hit.course_title), "confident": hit.confident,
        "pages": pages_cited(hit.page, hit.page_end, hit.section, hit.line),
        "href": _url(f"/page/{hit.doc_id}/{opens}", q=query, chunk=hit.chunk_id,
                     course=course, mode=mode) + "#hit",
        "snippet": shown(hit.text, hit.answer, query),
        "figures": [{"src": f"/figure/{f['sha256']}.png", "page": f["page"]}
                    for f in hit.figures],
    }


def _url(path: str, **params: object) -> str:
    """`path` with the query-string values that differ from the defaults, so URLs stay short."""
    kept = {key: value for key, value in params.items()
            if value not in ("", None) and not (key == "mode" and value == "hybrid")}
    return f"{path}?{urlencode(kept)}" if kept else path


# ----------------------------------------------------------------------------- documents

def _document(index: NoteIndex, doc_id: int) -> StoredDocument:
    """The document `doc_id` names, or 404: the id is the only way a URL names a notes file."""
    doc = index.document(doc_id)
    if doc is None:
        raise HTTPException(404, f"no document {doc_id} in the index")
    return doc


def _passage_on(index: NoteIndex, chunk: str, doc_id: int, page: int) -> StoredPassage | None:
    """The passage a URL names, if it lies on this document's page."""
    passage = index.passage(int(chunk)) if chunk.isdigit() else None
    if passage is None or passage.doc_id != doc_id or \
            not passage.page <= page <= passage.page_end:
        return None
    return passage


def _notes_root(index: NoteIndex, what: str) -> Path:
    if index.notes_dir is None:
        raise HTTPException(404, f"{what} has no readable path in the index")
    return index.notes_dir.resolve()


def notes_file(index: NoteIndex, doc: StoredDocument) -> Path:
    """The document's file, only if it lies inside the notes folder.

    The path comes from the index, never from the URL. A PDF linked into the notes folder is
    shown wherever the link leads, as the build read it (its page view was refused while its
    hits were listed); any other path out of the folder, or a file since moved away, is
    refused like an unknown id.
    """
    root = _notes_root(index, doc.name)
    path = Path(doc.path)
    if not path.is_absolute():
        raise HTTPException(404, f"{doc.name} has no readable path in the index")
    real = path.resolve()
    if not real.is_relative_to(root) and (root / doc.name).resolve() != real:
        raise HTTPException(404, f"{doc.name} lies outside the notes folder")
    if not real.is_file():
        raise HTTPException(404, f"{doc.name} is no longer at {path}; run "
                                 f"`{_update_command(index)}` to bring the index up to date")
    return real


def _page_of(index: NoteIndex, doc_id: int, number: int) -> tuple[StoredDocument, Path]:
    """The document and its file for a page URL, or 404 for an unknown id or page."""
    doc = _document(index, doc_id)
    unit = "pages" if doc.format == "pdf" else "sections"
    if not 1 <= number <= doc.pages:
        raise HTTPException(404, f"{doc.name} has {unit} 1-{doc.pages}, not {number}")
    return doc, notes_file(index, doc)


def _changed(doc: StoredDocument, path: Path) -> bool:
    """Whether the note's file was edited or replaced since it was indexed (by its size, as
    `status` tells)."""
    return path.stat().st_size != doc.size


def _render_cache(index: NoteIndex, doc: StoredDocument, path: Path) -> Path | None:
    """Where rendered pages of `doc` are kept; None when the file changed since indexing."""
    return None if _changed(doc, path) else index.dir.renders_dir


# ----------------------------------------------------------------------------- page view

def page_view(request: Request, doc_id: int, number: int, q: str = "", chunk: str = "",
              course: str = "", mode: str = "hybrid") -> Response:
    """Page `number` of a document with the chosen passage (or figure) boxed on it; for a
    Markdown note, section `number` as HTML with the passage's blocks marked."""
    from .render_page import figure_boxes, line_boxes, passage_boxes, rendered_size

    with _holder(request).use() as index:
        doc, path = _page_of(index, doc_id, number)
        fix = _update_command(index)
        changed = _changed(doc, path)
        passage = _passage_on(index, chunk, doc_id, number)
        answer = index.answers(q, [passage])[0] if passage is not None and q.strip() else ""
        if doc.format == "pdf":
            lines = index.page_lines(doc_id, number)  # a scanned page's OCR lines, if it is one
        else:
            root = _notes_root(index, doc.name)

            def image_url(image: Path) -> str:
                return f"/note-image/{doc_id}/{quote(image.relative_to(root).as_posix())}"

            with _unreadable(doc.name, fix):
                html = index.section_html(doc, path, number, passage.text if passage else "",
                                          answer, image_url)

    def link(to: int) -> str:
        return _url(f"/page/{doc_id}/{to}", q=q, chunk=chunk, course=course, mode=mode)

    context: dict[str, Any] = {
        "doc": {"id": doc_id, "name": doc.name, "pages": doc.pages,
                "label": course_label(doc.course, doc.title)},
        "number": number, "passage": passage, "q": q,
        "snippet": shown(passage.text, answer, q) if passage is not None else None,
        "previous": link(number - 1) if number > 1 else None,
        "next": link(number + 1) if number < doc.pages else None,
        "back": _url("/", q=q, course=course, mode=mode),
        # What is shown is not what was indexed: say so, with the command that catches up.
        "changed": fix if changed else None,
    }
    if doc.format != "pdf":
        context["html"] = html
        return TEMPLATES.TemplateResponse(request, "section.html", context)
    boxes, answer_boxes = [], []
    with _unreadable(doc.name, fix):
        if passage is not None and passage.kind == "figure" and passage.width:
            boxes = figure_boxes(path, number, (passage.width, passage.height))
        elif passage is not None and lines:
            boxes = line_boxes(lines, passage.text)
            answer_boxes = line_boxes(lines, answer) if answer else []
        elif passage is not None:
            boxes = passage_boxes(path, number, passage.text)
            # The answer is marked more strongly, inside the passage's box when it lies there.
            answer_boxes = passage_boxes(path, number, answer) if answer else []
        size = rendered_size(path, number)
    context.update({
        "size": size, "boxes": boxes, "answer_boxes": answer_boxes,
        "image": f"/render/{doc_id}/{number}.png", "pdf": f"/pdf/{doc_id}#page={number}",
    })
    return TEMPLATES.TemplateResponse(request, "page.html", context)


def page_image(request: Request, doc_id: int, number: int) -> Response:
    """The page as PNG, rendered on first request and then served from index/renders/."""
    from .render_page import render_png

    with _holder(request).use() as index:
        doc, path = _page_of(index, doc_id, number)
        cache = _render_cache(index, doc, path)
        fix = _update_command(index)
    if doc.format != "pdf":
        raise HTTPException(404, f"{doc.name} is not a PDF; its sections are shown as text")
    with _unreadable(doc.name, fix):
        data = render_png(path, number, cache, doc.sha256)
    return Response(data, media_type="image/png",
                    headers={"Cache-Control": "private, max-age=600"})


def original_pdf(request: Request, doc_id: int) -> Response:
    """The indexed PDF itself, shown inline so the browser's viewer honours #page=N."""
    with _holder(request).use() as index:
        doc = _document(index, doc_id)
        if doc.format != "pdf":
            raise HTTPException(404, f"{doc.name} is not a PDF")
        path = notes_file(index, doc)
    return FileResponse(path, media_type="application/pdf", filename=path.name,
                        content_disposition_type="inline")


def note_image(request: Request, doc_id: int, relative: str) -> Response:
    """An image a Markdown note embeds, for its section view: only the images that note
    shows (which all lie inside the notes folder, after following links)."""
    with _holder(request).use() as index:
        doc = _document(index, doc_id)
        if doc.format == "pdf":
            raise HTTPException(404, "no such image")
        root = _notes_root(index, doc.name)
        path = notes_file(index, doc)
        with _unreadable(doc.name, _update_command(index)):
            shown = index.embedded_images(doc, path)
    try:
        file = (root / relative).resolve()
    except (OSError, RuntimeError, ValueError):  # a NUL byte, a link loop
        raise HTTPException(404, "no such image") from None
    if file not in shown:  # only what the note itself shows: images, by their suffix
        raise HTTPException(404, "no such image")
    return FileResponse(file, headers={"Cache-Control": "private, max-age=600"})


@contextmanager
def _unreadable(name: str, fix: str) -> Iterator[None]:
    """A note that changed into something unreadable since it was indexed (or vanished) is a
    404 that says what to run (`fix`, from `_update_command`), not an error page."""
    try:
        yield
    except (NoteUnreadable, OSError) as exc:
        raise HTTPException(404, f"{name} can no longer be read ({exc}); run `{fix}` to bring "
                                 "the index up to date") from None


def _update_command(index: NoteIndex) -> str:
    """The command that brings this index up to date with its notes folder."""
    return hints.index_command(index.dir.root, index.notes_dir)


def figure_image(request: Request, sha: str) -> Response:
    """A figure PNG by its hash, read only from the index's figures folder."""
    if not _SHA256.fullmatch(sha):
        raise HTTPException(404, "no such figure")
    with _holder(request).use() as index:
        stored = index.figure_file(sha)
        root = index.dir.figures_dir.resolve()
        file = stored.resolve() if stored else None
    if file is None or not file.is_relative_to(root) or not file.is_file():
        raise HTTPException(404, "no such figure")
    return FileResponse(file, media_type="image/png",
                        headers={"Cache-Control": "private, max-age=86400"})


# ----------------------------------------------------------------------------- serving

def serve(index_dir: Path, host: str = "127.0.0.1", port: int = 8765,
          open_browser: bool = False, workers: int = WORKERS) -> None:
    """Run the web app until Ctrl-C, printing its URL first.

    Args:
        index_dir: the index folder to search.
        host: address to listen on; the default keeps the notes on this machine.
        port: port to listen on; 0 picks a free one (the printed URL has it).
        open_browser: open the URL in the default browser once listening.
        workers: processes answering requests. Ranking and HTTP are Python, which runs one
            thread at a time per process, so one process per core is what uses every core.
    """
    import uvicorn

    from .index import NoteIndex

    sock = _listen(host, port)
    url = f"http://{_url_host(host)}:{sock.getsockname()[1]}/"
    local = host in ("127.0.0.1", "localhost", "::1")
    print(f"notesearch: searching {index_dir} at {url} (Ctrl-C to stop)", flush=True)
    if not local:
        print(f"warning: listening on {host}: anyone who can reach this machine can read "
              "your notes", file=sys.stderr, flush=True)
    try:
        NoteIndex.open(index_dir).close()
    except NotesearchError as exc:  # said once here, not by every worker
        print(f"warning: {exc}; the page answers once it is built", file=sys.stderr, flush=True)
    if open_browser:
        threading.Timer(0.5, webbrowser.open, args=(url,)).start()
    # Each worker process builds its own app from these (uvicorn starts workers by import).
    os.environ[SERVE_INDEX] = str(Path(index_dir).resolve())
    os.environ[SERVE_ANY_HOST] = "" if local else "1"
    config = uvicorn.Config(f"{__name__}:worker_app", factory=True, workers=workers,
                            log_level="warning", access_log=False)
    try:
        if workers > 1:
            from uvicorn.supervisors import Multiprocess

            Multiprocess(config, sockets=[sock]).run()
        else:
            uvicorn.Server(config).run(sockets=[sock])
    except KeyboardInterrupt:
        return  # Ctrl-C is how a user stops the server; uvicorn, shut down cleanly, re-raises it



def worker_app() -> FastAPI:
    """The app of one `serve` worker process, with its index opening and model loading now."""
    app = create_app(Path(os.environ[SERVE_INDEX]),
                     allowed_hosts=["*"] if os.environ.get(SERVE_ANY_HOST) else None)
    warming = threading.Thread(target=_warm_up, args=(app.state.notes,), daemon=True)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        warming.start()
        yield
        # Ctrl-C just after start: a worker that exits while this thread loads the model in
        # native code ended with "terminate called without an active exception"
        warming.join(30)

    app.router.lifespan_context = lifespan
    return app


def _listen(host: str, port: int) -> socket.socket:
    """Bind the socket ourselves, so a busy port is one clear error and port 0 works."""
    try:
        family, kind, proto, _, address = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM)[0]
    except OSError as exc:  # socket.gaierror: no such address
        raise NotesearchError(f"cannot listen on {host} ({exc.strerror or exc}); pass --host "
                              "an address of this machine, such as 127.0.0.1") from None
    try:
        sock = socket.socket(family, kind, proto)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
    except OSError as exc:
        fix = ("pass --host an address of this machine, such as 127.0.0.1"
               if exc.errno == errno.EADDRNOTAVAIL else "pass another --port")
        raise NotesearchError(f"cannot listen on {host}:{port} ({exc.strerror or exc}); "
                              f"{fix}") from None
    sock.listen(128)
    sock.set_inheritable(True)
    return sock


def _url_host(host: str) -> str:
    """The host to print in the URL: a wildcard address is not one a browser can open."""
    if host in ("0.0.0.0", "::"):
        return "127.0.0.1"
    return f"[{host}]" if ":" in host else host


def _warm_up(holder: IndexHolder) -> None:
    """Open the index and load the query model now, so the first search is as fast as any."""
    try:
        with holder.use() as index:
            index.embedder.encode(["warm up"])
    except NotesearchError:
        pass  # `serve` said so once at start; the page says it too
    except Exception as exc:  # the page will show the problem; the server keeps running
        print(f"warning: could not load the index ({type(exc).__name__}: {exc})",
              file=sys.stderr, flush=True)
