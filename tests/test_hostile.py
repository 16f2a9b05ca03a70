"""Hostile and odd PDFs, all generated here: each is indexed or skipped with a one-line reason,
the rest of the folder is indexed, nothing crashes, and memory stays bounded.

Run with `-s` to see the table of what happened to each input.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import textwrap
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from conftest import make_pdf, seeded_index, text_image

from notesearch import NoteIndex

DEJAVU = Path("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf")
UNICODE_NAME = "Notes – Überblick (v2) 日本語.pdf"
AS_ROOT = os.geteuid() == 0


# ------------------------------------------------------------------------------ the inputs


def truncated(path: Path) -> None:
    """A real PDF cut in half, as an interrupted download leaves it."""
    whole = make_pdf(path.with_suffix(".whole"), ["Truncated text, page one."] * 3)
    path.write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])
    whole.unlink()


def random_bytes(path: Path) -> None:
    path.write_bytes(random.Random(6).randbytes(20_000))


def empty_file(path: Path) -> None:
    path.write_bytes(b"")


def encrypted(password: str, text: str) -> Callable[[Path], None]:
    def write(path: Path) -> None:
        from pypdf import PdfWriter

        plain = make_pdf(path.with_suffix(".plain"), [text])
        writer = PdfWriter(clone_from=plain)
        writer.encrypt(user_password=password, owner_password="owner", algorithm="AES-256")
        writer.write(path)
        plain.unlink()
    return write


def broken_stream(path: Path) -> None:
    """Page 1's content stream claims Flate compression but holds garbage; page 2 is fine."""
    from pypdf import PdfWriter
    from pypdf.generic import NameObject, StreamObject

    plain = make_pdf(path.with_suffix(".plain"),
                     ["This page will be broken.", "The numbat page survives its broken sibling."])
    writer = PdfWriter(clone_from=plain)
    garbage = StreamObject()
    garbage._data = b"\x00\xffnot zlib at all" * 20
    garbage[NameObject("/Filter")] = NameObject("/FlateDecode")
    writer.pages[0][NameObject("/Contents")] = writer._add_object(garbage)
    writer.write(path)
    plain.unlink()


def decompression_bomb(path: Path) -> None:
    """Page 1's content stream is 300 kB on disk and 150 MB inflated; page 2 is fine."""
    import zlib

    from pypdf import PdfWriter
    from pypdf.generic import NameObject, StreamObject

    plain = make_pdf(path.with_suffix(".plain"),
                     ["This page will explode.", "The bandicoot page survives the bomb."])
    packer, block = zlib.compressobj(9), b"0 0 m " * 1_000_000
    bomb = StreamObject()
    bomb._data = b"".join(packer.compress(block) for _ in range(25)) + packer.flush()
    bomb[NameObject("/Filter")] = NameObject("/FlateDecode")
    writer = PdfWriter(clone_from=plain)
    writer.pages[0][NameObject("/Contents")] = writer._add_object(bomb)
    writer.write(path)
    plain.unlink()


def page_tree_cycle(path: Path) -> None:
    """The page tree lists itself as its own second page (offsets kept, so xref stays valid)."""
    plain = make_pdf(path.with_suffix(".plain"), ["First page.", "Second page."])
    data = plain.read_bytes()
    path.write_bytes(data.replace(b"/Kids [3 0 R\n5 0 R]", b"/Kids [3 0 R\n1 0 R]"))
    assert path.read_bytes() != data, "fpdf2 changed its page tree layout"
    plain.unlink()


def ligatures(path: Path) -> None:
    """Text typeset with ligature glyphs and non-Latin symbols in a real TrueType font."""
    from fpdf import FPDF

    pdf = FPDF()
    pdf.add_font("DejaVu", fname=str(DEJAVU))
    pdf.set_font("DejaVu", size=14)
    pdf.add_page()
    pdf.multi_cell(0, 8, "The ﬁnal ﬂow of eﬃcient oﬄine ﬁtting: naïve café, Ångström, "
                         "Straße, ∑ ∂x → λ·β ≤ ½, “quoted” — ﬁn.")
    pdf.output(str(path))


def symlink_loops(path: Path) -> None:
    """`path` links to itself, and a subfolder links back up to the notes folder."""
    os.symlink(path.name, path)
    (path.parent / "loop-dir").mkdir()
    os.symlink("..", path.parent / "loop-dir" / "up")


def unreadable(path: Path) -> None:
    make_pdf(path, ["Echidna notes that only the owner may read."])
    path.chmod(0)


def named_pipe(path: Path) -> None:
    """A FIFO named .pdf: opening it would block forever, so it must never be opened."""
    os.mkfifo(path)


def binary_note(path: Path) -> None:
    """A file named .md that is not text (an image saved under the wrong name)."""
    path.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)) * 20)


def latin1_note(path: Path) -> None:
    """A note saved in Latin-1 by an old editor: not valid UTF-8."""
    path.write_bytes("# Caf\u00e9 notes\n\nWallaroo r\u00e9gularisation, na\u00efve.\n"
                     .encode("latin-1"))


def deep_note(path: Path) -> None:
    """Blockquotes and lists nested thousands deep: a parser's recursion trap."""
    path.write_text("> " * 5000 + "- " * 5000 + "quoll\n\nDibbler dropout survives.\n")


def huge_line_note(path: Path) -> None:
    """200 kB on one line (a pattern that backtracks would take minutes on it), then a heading
    every two lines."""
    path.write_text("kowari " + "word " * 40_000 + "\n" + "# h\ntext\n" * 300)


def escaping_note(path: Path) -> None:
    """Images that point outside the notes folder, by `..`, by an absolute path, by a link."""
    outside = path.parents[2] / "outside.png"  # beside the notes folder
    text_image(outside, ["Stolen slide"])
    (path.parent / "inside-link.png").symlink_to(outside)
    path.write_text("# Bettong\n\nBettong notes.\n\n![](../../outside.png)\n"
                    f"![[{outside}]]\n![](inside-link.png)\n![](https://example.com/x.png)\n")


def bad_images_note(path: Path) -> None:
    """A note whose images are corrupt, missing or a decompression bomb: the note stays."""
    from PIL import Image

    (path.parent / "corrupt.png").write_bytes(b"\x89PNG\r\n\x1a\nnot really")
    Image.new("L", (14_000, 14_000)).save(path.parent / "bomb.png")  # over Pillow's limit
    text_image(path.parent / "good.png", ["Potoroo slide"])
    path.write_text("# Potoroo\n\nPotoroo pooling.\n\n![](corrupt.png) ![](missing.png)\n"
                    "![[bomb.png]] ![](good.png)\n")


@dataclass
class Case:
    """One hostile input and what must become of it."""

    file: str
    make: Callable[[Path], None]
    expect: str  # "indexed", "failed" or "skipped" (left out with a warning)
    reason: str = ""  # words the one-line reason must contain
    word: str = ""  # a word only this file holds, to find it by search


CASES = [
    Case("truncated.pdf", truncated, "failed", "not a readable PDF"),
    Case("random-bytes.pdf", random_bytes, "failed", "not a readable PDF"),
    Case("empty.pdf", empty_file, "failed", "empty file"),
    Case("encrypted-password.pdf", encrypted("secret", "Wallaby secrets."), "failed",
         "encrypted with a password"),
    Case("encrypted-empty-password.pdf", encrypted("", "Wombat momentum, readable by all."),
         "indexed", word="wombat"),
    Case("broken-content-stream.pdf", broken_stream, "indexed", word="numbat"),
    Case("decompression-bomb.pdf", decompression_bomb, "indexed", word="bandicoot"),
    Case("page-tree-cycle.pdf", page_tree_cycle, "failed", "cyclic page references"),
    Case("ligatures-unicode.pdf", ligatures, "indexed", word="efficient offline"),
    Case(UNICODE_NAME, lambda p: make_pdf(p, ["Platypus pooling."]), "indexed",
         word="platypus"),
    Case("symlink-loop.pdf", symlink_loops, "failed", "link loop"),
    Case("named-pipe.pdf", named_pipe, "failed", "not a regular file"),
    # root reads a chmod 000 file anyway, so in CI (root) it is indexed, elsewhere it fails
    Case("unreadable.pdf", unreadable, "indexed" if AS_ROOT else "failed",
         "" if AS_ROOT else "Permission denied", word="echidna"),
    # Markdown notes
    Case("binary.md", binary_note, "failed", "not a text file"),
    Case("latin1.md", latin1_note, "indexed", word="wallaroo"),
    Case("deep.md", deep_note, "indexed", word="dibbler"),
    Case("huge-line.md", huge_line_note, "indexed", word="kowari"),
    Case("md/escaping.md", escaping_note, "indexed", word="bettong"),
    Case("md/bad-images.md", bad_images_note, "indexed", word="potoroo"),
    Case("broken-link.md", lambda p: p.symlink_to(p.parent / "nowhere.md"), "failed",
         "broken link"),
    Case("empty.md", lambda p: p.write_text(""), "indexed"),
]
GOOD = {"good.pdf": "Quokka gradients descend the loss surface.",
        "sub/more.pdf": "Bilby batch normalisation keeps activations steady."}


@dataclass
class Built:
    notes: Path
    index: Path
    report: object
    warnings: list[str]


@pytest.fixture(scope="module")
def hostile(tmp_path_factory, onnx_models) -> Built:
    """A folder of good PDFs and every hostile input, indexed once (in process, OCR off)."""
    root = tmp_path_factory.mktemp("hostile")
    notes = root / "notes"
    for name, text in GOOD.items():
        make_pdf(notes / name, [text])
    for case in CASES:
        if case.make is ligatures and not DEJAVU.exists():
            continue
        (notes / case.file).parent.mkdir(parents=True, exist_ok=True)
        case.make(notes / case.file)
    warnings: list[str] = []
    index = seeded_index(onnx_models, root / "index")
    report = NoteIndex.build(notes, index, ocr=False, warn=warnings.append)
    return Built(notes, index, report, warnings)


def outcome(built: Built, file: str) -> tuple[str, str]:
    """What the build did with `file`: indexed (with any warnings), failed (its reason) or
    skipped (the warning)."""
    notes = [w for w in built.warnings if Path(file).name in w]
    if file in built.report.added:
        return "indexed", "; ".join(notes)
    if file in built.report.failed:
        return "failed", built.report.failed[file]
    return ("skipped", notes[0]) if notes else ("missing", "")


def found(index: Path, words: str) -> set[str]:
    with NoteIndex.open(index) as notes:
        return {hit.file for hit in notes.search(words, k=10, mode="lexical")}


@pytest.mark.parametrize("case", CASES, ids=[c.file for c in CASES])
def test_each_input_is_indexed_or_skipped_with_a_reason(hostile, case):
    if case.make is ligatures and not DEJAVU.exists():
        pytest.skip(f"no font with ligature glyphs ({DEJAVU} is absent)")
    what, why = outcome(hostile, case.file)
    assert what == case.expect, f"{case.file}: {what} {why}"
    assert case.reason in why
    assert "\n" not in why, "a reason is one line"
    if case.word:
        assert case.file in found(hostile.index, case.word)


def test_no_image_is_read_from_outside_the_notes_folder(hostile):
    with NoteIndex.open(hostile.index) as notes:
        counts = {d["file"]: d["figures"] for d in notes.status()["documents"]}
    assert counts["md/escaping.md"] == 0 and counts["md/bad-images.md"] == 1  # good.png
    assert any("bad-images.md" in w and "corrupt.png" in w for w in hostile.warnings)
    assert any("bad-images.md" in w and "missing.png" in w for w in hostile.warnings)
    assert any("bad-images.md" in w and "bomb.png" in w for w in hostile.warnings)


def test_the_good_pdfs_are_all_indexed(hostile):
    assert set(GOOD) <= set(hostile.report.added)
    assert found(hostile.index, "quokka") == {"good.pdf"}
    assert found(hostile.index, "bilby") == {"sub/more.pdf"}
    assert not any(name.startswith("loop-dir/") for name in hostile.report.added), \
        "a symlinked folder was followed"
    assert any(w.startswith("skipped loop-dir/up/: a linked folder is not followed")
               for w in hostile.warnings), "a symlinked folder was left out silently"


@pytest.mark.parametrize("file", ["broken-content-stream.pdf", "decompression-bomb.pdf"])
def test_a_broken_page_costs_that_page_only(hostile, file):
    with NoteIndex.open(hostile.index) as notes:
        pages = notes.db.execute(
            "SELECT p.number, p.text FROM pages p JOIN documents d ON d.id = p.doc_id "
            "WHERE d.name = ? ORDER BY p.number", (file,)).fetchall()
    assert [(p["number"], bool(p["text"])) for p in pages] == [(1, False), (2, True)]


def test_ligatures_are_searchable_as_plain_letters(hostile):
    if not DEJAVU.exists():
        pytest.skip(f"no font with ligature glyphs ({DEJAVU} is absent)")
    hits = NoteIndex.open(hostile.index).search("final flow", k=1, mode="lexical")
    assert hits[0].file == "ligatures-unicode.pdf"
    assert "efficient offline fitting" in hits[0].text
    assert "naïve café" in hits[0].text


def test_cli_exits_3_and_names_each_failure(hostile):
    done = subprocess.run(
        [sys.executable, "-m", "notesearch", "index", str(hostile.notes), "--index",
         str(hostile.index), "--no-ocr", "--json"], capture_output=True, text=True, timeout=300)
    assert done.returncode == 3, done.stderr  # built, but files were skipped
    report = json.loads(done.stdout.strip().splitlines()[-1])
    expected = {c.file for c in CASES if c.expect == "failed"}
    assert set(report["failed"]) == expected
    assert set(report["unchanged"]) >= set(GOOD)
    for name in expected:
        assert sum(name in line for line in done.stderr.splitlines()) == 1, done.stderr


# ------------------------------------------------------------------------------ no text at all


def zero_pages(path: Path) -> None:
    from pypdf import PdfWriter

    PdfWriter().write(path)


def image_only(path: Path) -> None:
    picture = text_image(path.with_suffix(".png"), ["A scanned slide", "with no text layer"])
    make_pdf(path, [""], images={0: picture})
    picture.unlink()


def test_pdfs_without_any_text_are_indexed_with_no_passages(tmp_path, onnx_models):
    """A page-less PDF and a scan (OCR off) hold no passage; they must not break the build."""
    notes = tmp_path / "notes"
    make_pdf(notes / "good.pdf", ["Quokka gradients descend the loss surface."])
    zero_pages(notes / "zero-pages.pdf")
    image_only(notes / "image-only.pdf")
    index = seeded_index(onnx_models, tmp_path / "index")
    report = NoteIndex.build(notes, index, ocr=False, warn=lambda _m: None)
    assert sorted(report.added) == ["good.pdf", "image-only.pdf", "zero-pages.pdf"]
    assert not report.failed
    with NoteIndex.open(index) as opened:
        docs = {d["file"]: d for d in opened.status()["documents"]}
    assert (docs["zero-pages.pdf"]["pages"], docs["zero-pages.pdf"]["passages"]) == (0, 0)
    assert (docs["image-only.pdf"]["pages"], docs["image-only.pdf"]["passages"]) == (1, 0)
    assert found(index, "quokka") == {"good.pdf"}


# ------------------------------------------------------------------------------ 1,000 pages

# Peak RSS is read from VmHWM, not getrusage: Linux carries ru_maxrss over fork + exec, so a
# child of this (PyTorch-sized) test process would report the parent's size as its own.
PEAK_RSS = textwrap.dedent("""
    import json, sys
    from notesearch import NoteIndex
    report = NoteIndex.build(sys.argv[1], sys.argv[2], ocr=False, warn=lambda _m: None)
    hwm = next(line for line in open("/proc/self/status") if line.startswith("VmHWM"))
    print(json.dumps({"added": report.added, "failed": report.failed,
                      "peak_mb": int(hwm.split()[1]) / 1024}))
""")
MAX_GROWTH_MB = 300  # a 1,000-page PDF may cost this much more than a 1-page one, no more


def long_pdf(path: Path, pages: int) -> Path:
    from fpdf import FPDF

    pdf = FPDF()
    pdf.set_font("helvetica", size=12)
    for number in range(1, pages + 1):
        pdf.add_page()
        pdf.cell(0, 10, f"Page {number}: topic {number % 97} revisited.")
    path.parent.mkdir(parents=True, exist_ok=True)
    pdf.output(str(path))
    return path


def build_in_child(notes: Path, index: Path) -> dict:
    done = subprocess.run([sys.executable, "-c", PEAK_RSS, str(notes), str(index)],
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_a_1000_page_pdf_is_indexed_in_bounded_memory(tmp_path, onnx_models):
    one = build_in_child(long_pdf(tmp_path / "short" / "one.pdf", 1).parent,
                         seeded_index(onnx_models, tmp_path / "index-short"))
    many = build_in_child(long_pdf(tmp_path / "long" / "thousand.pdf", 1000).parent,
                          seeded_index(onnx_models, tmp_path / "index-long"))
    print(f"\npeak RSS: 1-page build {one['peak_mb']:.0f} MB, "
          f"1,000-page build {many['peak_mb']:.0f} MB")
    assert many["added"] == ["thousand.pdf"] and not many["failed"]
    assert many["peak_mb"] - one["peak_mb"] < MAX_GROWTH_MB
    with NoteIndex.open(tmp_path / "index-long") as notes:
        assert notes.status()["documents"][0]["pages"] == 1000
        hits = notes.search("page 999", k=3, mode="lexical")
    assert any(h.page <= 999 <= h.page_end for h in hits)


# ------------------------------------------------------------------------------ the table


def test_outcome_table(hostile):
    """Print what happened to each input (pytest -s); every one was accounted for."""
    rows = [(case.file, *outcome(hostile, case.file)) for case in CASES
            if case.make is not ligatures or DEJAVU.exists()]
    print("\n| input | outcome | reason |\n|---|---|---|")
    for file, what, why in rows:
        print(f"| {file} | {what} | {why} |")
    assert all(what != "missing" for _f, what, _w in rows)


def glyph_by_glyph_pdf(path: Path) -> Path:
    """Page 1: a sentence, then a code line drawn one glyph per text object in a flipped text
    matrix, as Evernote exports code blocks (pypdf's default mode reads a glyph per line).
    Page 2: two columns side by side, which layout mode would run together line by line."""
    from pypdf import PdfWriter
    from pypdf.generic import DecodedStreamObject, DictionaryObject, NameObject

    writer = PdfWriter()
    font = writer._add_object(DictionaryObject({
        NameObject("/Type"): NameObject("/Font"), NameObject("/Subtype"): NameObject("/Type1"),
        NameObject("/BaseFont"): NameObject("/Courier")}))
    code = "keep_prob = 0.8 # chance of keeping a hidden unit"
    glyphs = [f"BT /F1 12 Tf 1 0 0 -1 0 0 Tm {72 + n * 7.2:.1f} -690 Td ({ch}) Tj ET"
              for n, ch in enumerate(code) if ch != " "]
    left = ["Momentum averages past", "gradients so steps", "stop oscillating."]
    right = ["Dropout switches off", "random hidden units", "while training."]
    columns = [f"BT /F1 11 Tf {x} {700 - 14 * n} Td ({line}) Tj ET"
               for x, lines in ((72, left), (330, right)) for n, line in enumerate(lines)]
    for ops in (["BT /F1 12 Tf 72 720 Td (Inverted dropout scales what it keeps.) Tj ET",
                 *glyphs], columns):
        page = writer.add_blank_page(612, 792)
        page[NameObject("/Resources")] = DictionaryObject(
            {NameObject("/Font"): DictionaryObject({NameObject("/F1"): font})})
        content = DecodedStreamObject()
        content.set_data("\n".join(ops).encode())
        page[NameObject("/Contents")] = writer._add_object(content)
    writer.write(path)
    return path


def test_glyph_by_glyph_code_reads_as_words_and_columns_stay_apart(tmp_path):
    from notesearch.extract import iter_pages, open_pdf

    pdf = glyph_by_glyph_pdf(tmp_path / "code.pdf")
    code, columns = (page.text for page, _ in iter_pages(open_pdf(pdf), pdf, print))
    assert "keep_prob = 0.8 # chance of keeping a hidden unit" in code
    assert "Momentum averages past\ngradients so steps" in columns
    assert "Dropout switches off\nrandom hidden units" in columns
