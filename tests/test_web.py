"""The web app through FastAPI's TestClient, over real indexes of small generated PDFs."""

from __future__ import annotations

import asyncio
import io
import json
import re
import shutil
from pathlib import Path

import pytest
from conftest import make_pdf, seeded_index, text_image
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from notesearch import NoteIndex
from notesearch.cli import app as cli
from notesearch.web import create_app

C1 = "Course 1 - Neural Networks and Deep Learning.pdf"
C5 = "Course 5 - Sequence Models.pdf"
SIGMOID = ("The sigmoid function squashes any real number between zero and one, which is why "
           "logistic regression reads its output as a probability. ")
ZEBRA = "Zebra initialisation paints the weight matrix with alternating stripes of noise. "
SLIDE = ["Quaternion Rotation Trick", "Velociraptor Embedding Layer"]
LINKED = "Okapi lecture notes kept in another folder, linked into the notes. "


def make_notes(root: Path) -> Path:
    """Two course PDFs (the second with a figure), plus a PDF linked in from elsewhere."""
    slide = text_image(root / "slide.png", SLIDE)
    notes = root / "notes"
    make_pdf(notes / C1, [SIGMOID * 3, ZEBRA * 3])
    make_pdf(notes / C5, ["Recurrent networks read a sequence one token at a time. " * 3,
                          "The slide below sums up the lecture."], images={1: slide})
    make_pdf(root / "outside" / "okapi.pdf", [LINKED * 3])
    (notes / "linked.pdf").symlink_to(root / "outside" / "okapi.pdf")
    return notes


@pytest.fixture(scope="module")
def small_index(tmp_path_factory, onnx_models) -> Path:
    root = tmp_path_factory.mktemp("web")
    NoteIndex.build(make_notes(root), seeded_index(onnx_models, root / "index"), ocr=False)
    return root / "index"


@pytest.fixture(scope="module")
def client(small_index) -> TestClient:
    return TestClient(create_app(small_index))


def first_hit(client: TestClient, query: str, **params) -> dict:
    hits = client.get("/api/search", params={"q": query, **params}).json()
    assert hits, query
    return hits[0]


def boxes(html: str) -> list[tuple[float, float, float, float]]:
    """(left, top, width, height) in % of every highlight box on a page view."""
    found = re.findall(r'class="hl[^"]*"[^>]*style="left:([\d.]+)%;top:([\d.]+)%;'
                       r'width:([\d.]+)%;height:([\d.]+)%"', html)
    return [tuple(float(v) for v in box) for box in found]


# ----------------------------------------------------------------------------- search page

def test_search_page_lists_the_hit_with_its_words_marked(client):
    page = client.get("/", params={"q": "sigmoid squashes", "mode": "hybrid"})
    assert page.status_code == 200
    html = page.text
    assert 'id="results"' in html
    first = html.index('class="hit')
    assert C1 in html[first:first + 1200] and "p. 1" in html[first:first + 1200]
    assert "C1 Neural Networks and Deep Learning" in html
    assert "<mark>sigmoid</mark>" in html and "<mark>squashes</mark>" in html
    assert 'value="sigmoid squashes"' in html  # the query stays in the box


@pytest.mark.parametrize("course", ["5", "C5", "sequence"])
def test_course_filter_keeps_only_that_course(client, course):
    """The filter stays chosen however the URL names it ("C5" showed "All courses"), and the
    list offers only the courses the index holds (it offered all five)."""
    html = client.get("/", params={"q": "sigmoid squashes", "course": course}).text
    assert C5 in html and C1 not in html.split('id="results"')[1]
    assert '<option value="5" selected>' in html
    assert '<option value="1">' in html and '<option value="2"' not in html


def test_a_hit_over_two_pages_opens_on_the_page_of_its_answer(tmp_path, onnx_models):
    """A passage running over two short pages opened on the first, its answer on the second."""
    notes = tmp_path / "notes"
    make_pdf(notes / "short.pdf", ["Gradient clipping caps the norm of the gradient.",
                                   "Beam search keeps the best partial sentences at each step."])
    NoteIndex.build(notes, seeded_index(onnx_models, tmp_path / "index"), ocr=False)
    client = TestClient(create_app(tmp_path / "index"))
    hit = first_hit(client, "what does beam search keep at each step")
    assert (hit["page"], hit["page_end"]) == (1, 2) and "Beam search" in hit["answer"]
    html = client.get("/", params={"q": "what does beam search keep at each step"}).text
    assert f'href="/page/{hit["doc_id"]}/2?' in html


def test_weak_matches_are_labelled(client):
    html = client.get("/", params={"q": "chocolate cake recipe with buttercream"}).text
    assert "No confident match in your notes; closest passages:" in html
    assert "weak match" in html


def test_empty_query_shows_the_form_only(client):
    page = client.get("/")
    assert page.status_code == 200
    assert 'name="q"' in page.text and 'id="results"' not in page.text


def test_head_requests_are_answered(client):
    """`curl -I` got 405."""
    hit = first_hit(client, "sigmoid squashes")
    for path in ("/", f"/pdf/{hit['doc_id']}", f"/render/{hit['doc_id']}/1.png"):
        assert client.head(path).status_code == 200, path


def test_bad_course_on_the_page_is_a_message_not_a_traceback(client):
    page = client.get("/", params={"q": "sigmoid", "course": "9"})
    assert page.status_code == 400
    assert "course must be one of 1-5" in page.text


def test_figure_thumbnails_are_served_by_hash(client, small_index):
    hit = first_hit(client, "recurrent networks read a sequence", course=5)
    assert hit["figures"], "the slide on p. 2 should come with the hit"
    html = client.get("/", params={"q": "slide below sums up the lecture", "course": "5"}).text
    sources = re.findall(r'<img class="thumb" src="(/figure/[0-9a-f]{64}\.png)"', html)
    assert sources
    image = client.get(sources[0])
    assert image.status_code == 200 and image.headers["content-type"] == "image/png"
    sha = sources[0].split("/")[-1][:-4]
    assert image.content == (small_index / "figures" / sha[:2] / f"{sha}.png").read_bytes()
    assert str(small_index) not in html  # no file system path leaks into the page


# ----------------------------------------------------------------------------- JSON API

def test_api_search_is_the_cli_json(client, small_index):
    run = CliRunner().invoke(cli, ["search", "zebra stripes of noise", "--json", "-k", "3",
                                   "--index", str(small_index)], catch_exceptions=False)
    assert run.exit_code == 0
    api = client.get("/api/search", params={"q": "zebra stripes of noise", "k": "3"})
    assert api.status_code == 200
    assert api.json() == json.loads(run.stdout)
    assert api.json()[0]["file"] == C1 and api.json()[0]["page"] == 2


def test_api_status_is_the_index_status(client, small_index):
    status = client.get("/api/status")
    assert status.status_code == 200
    with NoteIndex.open(small_index) as notes:
        assert status.json() == json.loads(json.dumps(notes.status()))
    assert {d["file"] for d in status.json()["documents"]} >= {C1, C5}


@pytest.mark.parametrize(("params", "message"), [
    ({"q": ""}, "query is empty"),
    ({"q": "   "}, "query is empty"),
    ({"q": "sigmoid", "k": "0"}, "k must be at least 1"),
    ({"q": "sigmoid", "k": "many"}, "k must be a whole number"),
    ({"q": "sigmoid", "course": "9"}, "course must be one of 1-5"),
    ({"q": "sigmoid", "course": "two"}, "course must be one of 1-5"),
    ({"q": "sigmoid", "mode": "psychic"}, "mode must be one of"),
])
def test_api_bad_input_is_400_with_a_message(client, params, message):
    answer = client.get("/api/search", params=params)
    assert answer.status_code == 400
    assert message in answer.json()["error"]


# ----------------------------------------------------------------------------- page view

def test_hits_carry_their_answer_and_the_page_view_marks_it(client):
    hit = first_hit(client, "what does zebra initialisation paint")
    assert hit["answer"].startswith("Zebra initialisation paints the weight matrix")
    assert list(hit)[-4:] == ["answer", "format", "section", "line"]  # the shape only grows
    view = client.get(f"/page/{hit['doc_id']}/{hit['page']}",
                      params={"q": "what does zebra initialisation paint",
                              "chunk": hit["chunk_id"]})
    answer = re.findall(r'class="hl hl-answer"[^>]*style="left:([\d.]+)%;top:([\d.]+)%', view.text)
    assert answer and 'id="answer"' in view.text
    passage = boxes(view.text.split('class="hl hl-answer"')[0])
    assert min(b[1] for b in passage) <= float(answer[0][1]) <= max(b[1] + b[3] for b in passage)
    assert "<mark>Zebra</mark> <mark>initialisation</mark> <mark>paints</mark>" in view.text


def test_page_view_shows_the_page_with_the_passage_boxed(client, small_index):
    hit = first_hit(client, "zebra initialisation stripes")
    view = client.get(f"/page/{hit['doc_id']}/{hit['page']}",
                      params={"q": "zebra", "chunk": hit["chunk_id"]})
    assert view.status_code == 200
    found = boxes(view.text)
    assert found, "the passage should be boxed"
    left, top, width, height = found[0]
    assert 3 < left < 10 and 1 < top < 15 and width > 50 and 0.5 < height < 5  # fpdf margins
    assert 'id="hit"' in view.text and "<mark>Zebra</mark>" in view.text
    assert f'href="/pdf/{hit["doc_id"]}#page={hit["page"]}"' in view.text

    src = re.search(r'<img id="page-image" src="([^"]+)" width="(\d+)" height="(\d+)"',
                    view.text)
    image = client.get(src.group(1))
    assert image.status_code == 200 and image.headers["content-type"] == "image/png"
    from PIL import Image

    assert Image.open(io.BytesIO(image.content)).size == (int(src.group(2)), int(src.group(3)))


def test_rendered_pages_are_cached_whole(client, small_index):
    hit = first_hit(client, "sigmoid squashes")
    url = f"/render/{hit['doc_id']}/{hit['page']}.png"
    first = client.get(url).content
    cached = list((small_index / "renders").rglob("*.png"))
    assert cached and not list((small_index / "renders").rglob("*.part"))
    assert client.get(url).content == first
    assert any(path.read_bytes() == first for path in cached)


def test_page_view_links_to_neighbouring_pages(client):
    hit = first_hit(client, "sigmoid squashes")
    html = client.get(f"/page/{hit['doc_id']}/1", params={"q": "sigmoid"}).text
    assert f'href="/page/{hit["doc_id"]}/2?q=sigmoid' in html and 'rel="prev"' not in html
    html = client.get(f"/page/{hit['doc_id']}/2").text
    assert f'href="/page/{hit["doc_id"]}/1"' in html and 'rel="next"' not in html


def test_original_pdf_is_served_by_id(client):
    hit = first_hit(client, "sigmoid squashes")
    pdf = client.get(f"/pdf/{hit['doc_id']}")
    assert pdf.status_code == 200 and pdf.headers["content-type"] == "application/pdf"
    assert pdf.content.startswith(b"%PDF")


@pytest.fixture(scope="module")
def figure_index(tmp_path_factory, onnx_models) -> Path:
    """One slide in one PDF, indexed with OCR so that a hit is the figure's own text."""
    root = tmp_path_factory.mktemp("web-ocr")
    slide = text_image(root / "slide.png", SLIDE)
    make_pdf(root / "notes" / "lecture.pdf", ["Plain prose about optimisers. " * 8,
                                               "See the slide below."], images={1: slide})
    NoteIndex.build(root / "notes", seeded_index(onnx_models, root / "index"), ocr=True)
    return root / "index"


def test_figure_hit_boxes_the_figure_on_its_page(figure_index):
    client = TestClient(create_app(figure_index))
    # lexical: this test is about the page view, not about how hybrid weighs OCR text
    hit = first_hit(client, "quaternion rotation trick velociraptor", mode="lexical")
    assert hit["kind"] == "figure" and hit["page"] == 2
    view = client.get(f"/page/{hit['doc_id']}/2", params={"chunk": hit["chunk_id"]})
    assert 'class="hl hl-figure"' in view.text
    [(left, top, width, height)] = boxes(view.text)
    # make_pdf places the image at x=10 mm, y=120 mm, 180 mm wide, on a 210 x 297 mm page
    assert left == pytest.approx(100 * 10 / 210, abs=0.5)
    assert top == pytest.approx(100 * 120 / 297, abs=0.5)
    assert width == pytest.approx(100 * 180 / 210, abs=0.5)
    assert height == pytest.approx(100 * 60 / 297, abs=0.5)  # 900 x 300 px -> 180 x 60 mm


# ----------------------------------------------------------------------------- safety

def raw_status(app, raw_path: bytes) -> int:
    """Status of a request sent with its path exactly as given.

    httpx (under TestClient) removes `..` segments before sending; a hostile client does not.
    """
    from urllib.parse import unquote

    sent: list[dict] = []

    async def receive() -> dict:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict) -> None:
        sent.append(message)

    path, _, query = raw_path.partition(b"?")
    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1",
             "method": "GET", "scheme": "http", "path": unquote(path.decode()),
             "raw_path": path, "query_string": query, "root_path": "",
             "headers": [(b"host", b"127.0.0.1")], "client": ("127.0.0.1", 5000),
             "server": ("127.0.0.1", 8765)}
    asyncio.run(app(scope, receive, send))
    return next(m["status"] for m in sent if m["type"] == "http.response.start")


TRAVERSALS = [
    "/page/../../etc/passwd", "/page/%2e%2e/%2e%2e/etc/passwd", "/page/1/..%2f..%2fnotes.db",
    "/pdf/../../etc/passwd", "/pdf/%2e%2e%2fnotes.db", "/pdf//etc/passwd", "/pdf/-1",
    "/render/1/../../notes.db", "/figure/..%2f..%2fCURRENT.png", "/figure/../../CURRENT",
    "/static/../web.py", "/static/%2e%2e/web.py", "/static/..%2fweb.py",
]


@pytest.mark.parametrize("path", TRAVERSALS)
def test_paths_in_urls_are_never_followed(client, path):
    assert raw_status(client.app, path.encode()) == 404
    answer = client.get(path)
    assert answer.status_code == 404 and "root:" not in answer.text


@pytest.mark.parametrize("path", [
    "/pdf/999", "/page/999/1", "/page/1/9999", "/page/1/0", "/render/1/9999.png",
    "/render/999/1.png", "/page/99999999999999999999999/1",
    "/figure/" + "0" * 64 + ".png", "/figure/notes.png",
])
def test_unknown_ids_and_pages_are_404(client, path):
    assert client.get(path).status_code == 404


def test_a_pdf_linked_in_from_elsewhere_is_shown_as_it_is_found(client):
    """The build reads a PDF linked into the notes folder, so its page view shows it (it was
    refused as lying outside the folder while its hits were listed)."""
    hit = first_hit(client, "okapi lecture notes another folder")
    assert hit["file"] == "linked.pdf"
    for path in (f"/pdf/{hit['doc_id']}", f"/page/{hit['doc_id']}/1",
                 f"/render/{hit['doc_id']}/1.png"):
        answer = client.get(path)
        assert answer.status_code == 200, (path, answer.text)


def test_query_text_is_escaped(client):
    attack = "<script>alert(1)</script>"
    for path in ("/", "/page/1/1"):
        html = client.get(path, params={"q": attack, "chunk": "1"}).text
        assert attack not in html
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html


def test_pages_forbid_scripts_and_foreign_hosts(client):
    page = client.get("/")
    assert "default-src 'none'" in page.headers["content-security-policy"]
    assert page.headers["x-content-type-options"] == "nosniff"
    assert client.get("/", headers={"host": "evil.example"}).status_code == 400


def own_copy(small_index: Path, tmp_path: Path) -> tuple[Path, Path]:
    """A copy of the module's index and its notes, built from the copied folder: a test may
    change these notes without touching the other tests'."""
    index, notes = tmp_path / "index", tmp_path / "notes"
    shutil.copytree(small_index, index)
    shutil.copytree(small_index.parent / "notes", notes, symlinks=True)
    NoteIndex.build(notes, index, ocr=False)
    return index, notes


def test_a_moved_notes_folder_is_followed_and_a_lost_note_names_the_fix(small_index, tmp_path):
    index, first = own_copy(small_index, tmp_path)
    moved = tmp_path / "moved"
    first.rename(moved)  # the learner moves the folder and indexes it where it is now
    report = NoteIndex.build(moved, index, ocr=False)
    assert not report.added and not report.updated and not report.removed
    client = TestClient(create_app(index))
    hit = first_hit(client, "zebra initialisation stripes")
    assert client.get(f"/pdf/{hit['doc_id']}").status_code == 200
    (moved / C1).rename(tmp_path / "elsewhere.pdf")
    page = client.get(f"/pdf/{hit['doc_id']}")
    assert page.status_code == 404
    assert f"notesearch index {moved} --index {index}" in page.text



def test_a_note_that_became_unreadable_is_a_404_that_names_the_fix(small_index, tmp_path):
    """A PDF overwritten by a broken copy since it was indexed (which `index` skips, keeping
    its old passages) made the page view and its image a 500."""
    index, notes = own_copy(small_index, tmp_path)
    client = TestClient(create_app(index))
    hit = first_hit(client, "zebra initialisation stripes")
    (notes / C1).write_bytes((notes / C1).read_bytes()[:300])
    for path in (f"/page/{hit['doc_id']}/{hit['page']}?chunk={hit['chunk_id']}",
                 f"/render/{hit['doc_id']}/{hit['page']}.png"):
        page = client.get(path)
        assert page.status_code == 404, path
        assert f"{C1} can no longer be read" in page.text
        assert f"notesearch index {notes} --index {index}" in page.text


def test_a_note_edited_since_it_was_indexed_says_so_on_its_page(small_index, tmp_path):
    """A PDF replaced by another since it was indexed showed the indexed passage above a
    render of the new file, with only "could not be located" to say something was off."""
    index, notes = own_copy(small_index, tmp_path)
    client = TestClient(create_app(index))
    hit = first_hit(client, "zebra initialisation stripes")
    url = f"/page/{hit['doc_id']}/{hit['page']}?chunk={hit['chunk_id']}"
    assert 'id="changed"' not in client.get(url).text
    make_pdf(notes / C1, ["A new first page about something else entirely. " * 4, "Two."])
    page = client.get(url)
    assert page.status_code == 200 and 'id="changed"' in page.text
    assert f"notesearch index {notes} --index {index}" in page.text
    assert "could not be located" not in page.text


# ----------------------------------------------------------------------------- no index

def test_missing_index_says_what_to_run(tmp_path):
    client = TestClient(create_app(tmp_path / "never-built"), raise_server_exceptions=True)
    for path in ("/", "/?q=sigmoid", "/page/1/1"):
        page = client.get(path)
        assert page.status_code == 503
        assert "notesearch index NOTES_DIR" in page.text and "Traceback" not in page.text
    answer = client.get("/api/search", params={"q": "sigmoid"})
    assert answer.status_code == 503 and "notesearch index" in answer.json()["error"]


def test_a_rebuild_is_picked_up_without_restarting(small_index, tmp_path):
    index = tmp_path / "index"
    shutil.copytree(small_index, index)
    client = TestClient(create_app(index))
    assert client.get("/api/search", params={"q": "sigmoid"}).json()[0]["file"] == C1
    notes = tmp_path / "notes"
    make_pdf(notes / "Course 3 - Structuring.pdf", ["Orthogonalisation means one knob "
                                                    "tunes one thing. " * 4])
    NoteIndex.build(notes, index, ocr=False, rebuild=True)  # only this PDF from now on
    hits = client.get("/api/search", params={"q": "orthogonalisation knob"}).json()
    assert hits[0]["file"] == "Course 3 - Structuring.pdf"
    assert {h["file"] for h in hits} == {"Course 3 - Structuring.pdf"}
