"""Mutation fuzzing of PDF reading: whatever a damaged PDF holds, a build finishes, indexes it
or skips it with a one-line reason, and the untouched PDFs beside it still answer.

Seeds are small valid PDFs made here (text pages, a slide PNG with text drawn by Pillow, a
page holding only a JPEG, RC4 and AES-256 encrypted copies) and, when the shared notes sit
beside the project, the first pages of one real notes PDF cut out with pypdf and a whole real
notes PDF as published (object streams, xref stream). Each mutant is named
`m<seed>-<mutation>-<source>.pdf`: `random.Random(<seed>)` drives every choice, and every seed
PDF is deterministic (fixed dates, seeded salts), so `write_mutant(seed_pdfs(tmp), <seed>,
path)` rebuilds the very file that failed.

The default run indexes one batch of 40 mutants twice and runs the CLI once (under a minute);
the long run indexes 900 mutants over six seeds (each batch twice), then 30 image mutants with
OCR on (a few minutes on 2 cores):

    .venv/bin/python -m pytest -m fuzz tests/test_fuzz.py
"""

from __future__ import annotations

import json
import random
import re
import secrets
import signal
import subprocess
import sys
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache
from pathlib import Path

import pytest
from conftest import NOTES, seeded_index, text_image

from notesearch import NoteIndex
from notesearch.errors import NoteUnreadable
from notesearch.extract import extract_figures, iter_pages, open_pdf
from notesearch.records import FigureCounts

SKIPPED_FILES_EXIT = 3  # the index finished, some files were skipped (1: user error, 2: usage)
BUILD_DEADLINE_S = 240  # one build of a batch; a hang on one mutant fails the test, not CI
REAL_NOTES = NOTES / "Course 2 - Improving Deep Learning Networks.pdf"
# Mutated whole: 270 kB, 10 pages, compressed object streams and an xref stream.
REAL_NOTES_RAW = NOTES / "Convolutional Neural Network.pdf"
REAL_PAGES = 3
FIXED_DATE = datetime(2024, 1, 1, tzinfo=UTC)

GOOD = {"good-quokka.pdf": "Quokka gradients descend the loss surface.",
        "good-bilby.pdf": "Bilby batch normalisation keeps activations steady."}
ENCRYPTED = {"aes-empty-password.pdf": "Wombat momentum, readable by anyone.",
             "aes-user-password.pdf": "Wallaby secrets behind a password."}

Source = dict[str, bytes]
Mutation = Callable[[bytes, random.Random], bytes]


# ------------------------------------------------------------------------------ seed PDFs

@contextmanager
def seeded_salts(seed: int) -> Iterator[None]:
    """pypdf draws encryption salts, IVs and file IDs from `secrets`: make them repeatable."""
    rng = random.Random(seed)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(secrets, "token_bytes", lambda n=32: rng.randbytes(n))
        yield


def fpdf_bytes(pages: list[str], image: Path | None = None, image_page: int = 0) -> bytes:
    from fpdf import FPDF

    pdf = FPDF()
    pdf.set_creation_date(FIXED_DATE)
    pdf.set_font("helvetica", size=12)
    for number, text in enumerate(pages):
        pdf.add_page()
        if text:
            pdf.multi_cell(0, 6, text)
        if image is not None and number == image_page:
            pdf.image(str(image), x=10, y=120, w=180)
    return bytes(pdf.output())


def encrypt(plain: bytes, user_password: str, algorithm: str, seed: int) -> bytes:
    import io

    from pypdf import PdfReader, PdfWriter

    with seeded_salts(seed):
        writer = PdfWriter(clone_from=PdfReader(io.BytesIO(plain)))
        writer.encrypt(user_password=user_password, owner_password="owner", algorithm=algorithm)
        out = io.BytesIO()
        writer.write(out)
    return out.getvalue()


def real_notes_pages() -> bytes:
    """The first pages of one real notes PDF, cut out with pypdf (object streams undone)."""
    import io

    from pypdf import PdfReader, PdfWriter

    reader = PdfReader(REAL_NOTES)
    with seeded_salts(7):
        writer = PdfWriter()
        for page in reader.pages[:REAL_PAGES]:
            writer.add_page(page)
        out = io.BytesIO()
        writer.write(out)
    return out.getvalue()


@cache
def _seed_pdfs(workdir: Path, with_real_notes: bool) -> tuple[tuple[str, bytes], ...]:
    from PIL import Image

    workdir.mkdir(parents=True, exist_ok=True)
    slide = text_image(workdir / "slide.png", ["Gradient clipping", "keeps updates bounded"])
    photo = workdir / "scan.jpg"
    Image.open(text_image(workdir / "scan.png", ["A scanned page", "without a text layer"],
                          size=(600, 400))).convert("RGB").save(photo, quality=80)
    text = fpdf_bytes(["Dropout drops units at random during training. " * 12,
                       "Batch normalisation rescales activations per mini-batch. " * 10,
                       "Momentum averages past gradients to damp oscillation. " * 8])
    seeds = {
        "text": text,
        "slide": fpdf_bytes(["Slide: regularisation by weight decay."], slide),
        "scan": fpdf_bytes([""], photo),
        "rc4": encrypt(text, "", "RC4-128", 1),
        "aes": encrypt(text, "", "AES-256", 2),
    }
    if with_real_notes:
        seeds["notes"] = real_notes_pages()
        seeds["notes-raw"] = REAL_NOTES_RAW.read_bytes()
    return tuple(seeds.items())


def seed_pdfs(workdir: Path, with_real_notes: bool = False) -> Source:
    """The seed PDFs by short name; the real notes' pages only when asked for and present."""
    present = REAL_NOTES.exists() and REAL_NOTES_RAW.exists()
    return dict(_seed_pdfs(workdir, with_real_notes and present))


# ------------------------------------------------------------------------------ PDF surgery

OBJECT = re.compile(rb"(?m)^(\d+) (\d+) obj\b")
STREAM = re.compile(rb"stream\r?\n")


@dataclass
class Obj:
    """One `N G obj ... endobj` span of a classic (uncompressed) PDF."""

    number: int
    start: int
    end: int  # just past `endobj`

    def header_end(self, data: bytes) -> int:
        """Where the dictionary ends: at `stream` for a stream object, else at `endobj`."""
        found = STREAM.search(data, self.start, self.end)
        return found.start() if found else self.end

    def stream(self, data: bytes) -> tuple[int, int] | None:
        found = STREAM.search(data, self.start, self.end)
        if not found:
            return None
        stop = data.rfind(b"endstream", found.end(), self.end)
        return (found.end(), stop) if stop > found.end() else None


def objects(data: bytes) -> list[Obj]:
    found = []
    for match in OBJECT.finditer(data):
        end = data.find(b"endobj", match.end())
        if end < 0:
            break
        found.append(Obj(int(match.group(1)), match.start(), end + len(b"endobj")))
    return found


def image_objects(data: bytes) -> list[Obj]:
    return [o for o in objects(data) if b"/Subtype /Image" in data[o.start:o.header_end(data)]]


def fix_xref(data: bytes) -> bytes:
    """Rewrite the last xref table so every offset is right again: a mutation then reaches
    the parser's deeper paths instead of its xref recovery."""
    found = {o.number: o.start for o in objects(data)}
    xref = data.rfind(b"\nxref")
    trailer = re.search(rb"trailer\s*(<<.*?>>)\s*startxref", data[xref:], re.S) if xref > 0 \
        else None
    if not found or trailer is None:
        return data
    size = max(found) + 1
    table = [b"xref\n0 %d\n0000000000 65535 f \n" % size]
    table += [b"%010d 00000 n \n" % found[n] if n in found else b"0000000000 65535 f \n"
              for n in range(1, size)]
    head = re.sub(rb"/Size \d+", b"/Size %d" % size, trailer.group(1))
    return (data[:xref + 1] + b"".join(table) + b"trailer\n" + head
            + b"\nstartxref\n%d\n%%%%EOF\n" % (xref + 1))


def replace_stream(data: bytes, obj: Obj, payload: bytes, header: bytes | None = None) -> bytes:
    """Give a stream object new content and a /Length that tells the truth about it."""
    span = obj.stream(data)
    assert span is not None
    head = header if header is not None else data[obj.start:obj.header_end(data)]
    head = re.sub(rb"/Length \d+( 0 R)?", b"/Length %d" % len(payload), head, count=1)
    return (data[:obj.start] + head + b"stream\n" + payload + b"\nendstream\nendobj"
            + data[obj.end:])


def raw_pdf(bodies: list[bytes], trailer: bytes = b"") -> bytes:
    """A PDF from object bodies (object n is bodies[n - 1], the catalog is 1) with a correct
    xref table."""
    out = bytearray(b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for number, body in enumerate(bodies, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n%s\nendobj\n" % (number, body)
    start = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(bodies) + 1)
    out += b"".join(b"%010d 00000 n \n" % o for o in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R %s>>\nstartxref\n%d\n%%%%EOF\n" % (
        len(bodies) + 1, trailer, start)
    return bytes(out)


# ------------------------------------------------------------------------------ mutations
# Each takes a seed PDF and the mutant's Random and returns the mutant's bytes.


def maybe_fix(data: bytes, rng: random.Random) -> bytes:
    return fix_xref(data) if rng.random() < 0.5 else data


def flip_stream_bytes(data: bytes, rng: random.Random) -> bytes:
    spans = [s for o in objects(data) if (s := o.stream(data)) and s[1] > s[0]]
    return _flip_span(data, *rng.choice(spans), rng)


def _flip_span(data: bytes, start: int, stop: int, rng: random.Random) -> bytes:
    out = bytearray(data)
    for _ in range(rng.choice([1, 2, 8, 64])):
        out[rng.randrange(start, stop)] ^= rng.randrange(1, 256)
    return bytes(out)


def truncate(data: bytes, rng: random.Random) -> bytes:
    return data[:rng.randrange(1, len(data))]


def delete_object(data: bytes, rng: random.Random) -> bytes:
    victim = rng.choice(objects(data))
    return maybe_fix(data[:victim.start] + data[victim.end:], rng)


def duplicate_object(data: bytes, rng: random.Random) -> bytes:
    """A second definition of an object, as is or with its body from another object."""
    found = objects(data)
    twin, body_from, where = rng.choice(found), rng.choice(found), rng.choice(found)
    copy = data[twin.start:twin.end]
    if rng.random() < 0.5:
        copy = b"%d 0 obj" % twin.number + data[body_from.start:body_from.end].split(b"obj", 1)[1]
    return maybe_fix(data[:where.end] + b"\n" + copy + data[where.end:], rng)


def corrupt_xref(data: bytes, rng: random.Random) -> bytes:
    xref = data.rfind(b"\nxref")
    kind = rng.choice(["offsets", "startxref", "drop", "swap"])
    if kind == "startxref":
        return re.sub(rb"startxref\s*\d+", b"startxref\n%d" % rng.randrange(0, 10 * len(data)),
                      data)
    if kind == "drop":
        stop = data.find(b"trailer", xref)
        return data[:xref + 1] + data[stop:]
    entries = list(re.finditer(rb"(\d{10}) (\d{5}) ([nf])", data[xref:]))
    out = bytearray(data)
    if kind == "swap" and len(entries) > 2:
        a, b = rng.sample(entries, 2)
        out[xref + a.start():xref + a.start() + 10] = b.group(1)
        out[xref + b.start():xref + b.start() + 10] = a.group(1)
        return bytes(out)
    for entry in rng.sample(entries, min(len(entries), rng.choice([1, 3, 100]))):
        offset = rng.choice([0, 1, len(data) - 1, rng.randrange(0, len(data)), 9_999_999_999])
        out[xref + entry.start():xref + entry.start() + 10] = b"%010d" % offset
    return bytes(out)


def length_lie(data: bytes, rng: random.Random) -> bytes:
    spans = [(o, s) for o in objects(data) if (s := o.stream(data))]
    obj, (start, stop) = rng.choice(spans)
    true = stop - start
    lie = rng.choice([b"0", b"%d" % (true // 2), b"%d" % (true + 7), b"%d" % (true * 50),
                      b"99999999999", b"-5", b"3.5", b"999 0 R", b"/Name", b"(text)"])
    head = re.sub(rb"/Length [^/>]+", b"/Length " + lie + b" ", data[obj.start:start], count=1)
    return maybe_fix(data[:obj.start] + head + data[start:], rng)


FILTERS = [b"/Bogus", b"/DCTDecode", b"/JPXDecode", b"/JBIG2Decode", b"/CCITTFaxDecode",
           b"/LZWDecode", b"/RunLengthDecode", b"/ASCII85Decode", b"/ASCIIHexDecode", b"/Crypt",
           b"[/FlateDecode /FlateDecode]", b"[/Bogus /FlateDecode]", b"[]", b"42", b"(Flate)",
           b"[" + b"/FlateDecode " * 40 + b"]"]


def bogus_filter(data: bytes, rng: random.Random) -> bytes:
    spans = [o for o in objects(data) if o.stream(data)]
    obj = rng.choice(spans)
    head = data[obj.start:obj.header_end(data)]
    name = rng.choice(FILTERS)
    if b"/Filter" in head:
        head = re.sub(rb"/Filter\s*(/\w+|\[[^\]]*\])", b"/Filter " + name, head, count=1)
    else:
        head = head.replace(b"<<", b"<< /Filter " + name + b" ", 1)
    return maybe_fix(data[:obj.start] + head + data[obj.header_end(data):], rng)


SIZES = [b"0", b"-1", b"1", b"3", b"65535", b"100000", b"2147483647", b"4294967297",
         b"1.5e9", b"/Big", b"99999999999999999999"]


def huge_image(data: bytes, rng: random.Random) -> bytes:
    obj = rng.choice(image_objects(data))
    head = data[obj.start:obj.header_end(data)]
    for key in rng.choice([[b"Width"], [b"Height"], [b"Width", b"Height"]]):
        head = re.sub(rb"/%s \d+" % key, b"/%s %s" % (key, rng.choice(SIZES)), head, count=1)
    if rng.random() < 0.3:
        head = re.sub(rb"/BitsPerComponent \d+",
                      b"/BitsPerComponent %d" % rng.choice([0, 3, 16, 32, 255]), head, count=1)
    return maybe_fix(data[:obj.start] + head + data[obj.header_end(data):], rng)


def bad_image_data(data: bytes, rng: random.Random) -> bytes:
    """An image stream that decodes to something that is no valid PNG or JPEG."""
    obj = rng.choice(image_objects(data))
    start, stop = obj.stream(data)
    original = data[start:stop]
    kind = rng.choice(["random", "cut", "jpeg-header", "png-header", "empty", "flate-garbage"])
    payload = {
        "random": rng.randbytes(rng.choice([1, 100, 5000])),
        "cut": original[:rng.randrange(0, max(1, len(original)))],
        "jpeg-header": b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + rng.randbytes(300),
        "png-header": b"\x89PNG\r\n\x1a\n" + rng.randbytes(300),
        "empty": b"",
        "flate-garbage": zlib.compress(rng.randbytes(rng.choice([10, 1000]))),
    }[kind]
    head = data[obj.start:obj.header_end(data)]
    if rng.random() < 0.3:
        head = re.sub(rb"/Filter\s*(/\w+|\[[^\]]*\])",
                      rng.choice([b"/Filter /DCTDecode", b"/Filter /FlateDecode",
                                  b"/Filter /JPXDecode"]), head, count=1)
    return fix_xref(replace_stream(data, obj, payload, head))


ENCRYPT_EDITS = [
    (rb"/V \d+", [b"/V 0", b"/V 3", b"/V 99", b"/V -1", b"/V /Five"]),
    (rb"/R \d+", [b"/R 1", b"/R 5", b"/R 7", b"/R 99"]),
    (rb"/Length \d+", [b"/Length 0", b"/Length 13", b"/Length 4096"]),
    (rb"/Filter /Standard", [b"/Filter /Adobe.PubSec", b"/Filter /Bogus", b""]),
    (rb"/P -?\d+", [b"/P /Nope", b"/P 99999999999999999999", b""]),
    (rb"/(CFM|StmF|StrF) /\w+", [b"/CFM /AESV9", b"/StmF /Missing", b"/StrF /Identity",
                                   b"/CFM /None"]),
    (rb"/(O|U|OE|UE|Perms) (<[0-9a-fA-F]*>|\((\\.|[^\\)])*\))",
     [b"/O <00>", b"/U <>", b"/UE <41414141>", b"/Perms (x)", b"/O 5"]),
]


def broken_encrypt(data: bytes, rng: random.Random) -> bytes:
    """An /Encrypt dictionary with a wrong or missing entry, or one where none belongs."""
    if b"/Encrypt" not in data:
        junk = rng.choice([b"<< /Filter /Standard /V 2 /R 3 /O <00> /U <00> /P -1 >>",
                           b"999 0 R", b"/Name", b"<< >>"])
        return data.replace(b"trailer\n<<", b"trailer\n<< /Encrypt " + junk, 1)
    if rng.random() < 0.15:  # the /Encrypt reference points nowhere
        return re.sub(rb"/Encrypt \d+ 0 R", b"/Encrypt 987 0 R", data)
    match = re.search(rb"/Encrypt (\d+) 0 R", data)
    obj = next(o for o in objects(data) if o.number == int(match.group(1)))
    head = data[obj.start:obj.end]
    for _ in range(rng.choice([1, 2])):
        pattern, values = rng.choice(ENCRYPT_EDITS)
        head = re.sub(pattern, rng.choice(values), head, count=1)
    return fix_xref(data[:obj.start] + head + data[obj.end:])


FONT = b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>"


def page_body(parent: int, content: int, font: int) -> bytes:
    return (b"<< /Type /Page /Parent %d 0 R /MediaBox [0 0 612 792] /Contents %d 0 R "
            b"/Resources << /Font << /F1 %d 0 R >> >> >>" % (parent, content, font))


def content(text: bytes) -> bytes:
    stream = b"BT /F1 12 Tf 72 720 Td (" + text + b") Tj ET"
    return b"<< /Length %d >>\nstream\n%s\nendstream" % (len(stream), stream)


def nested_pages(depth: int) -> bytes:
    """One page under `depth` nested /Pages nodes."""
    # 1 catalog, 2..depth+1 nested /Pages, depth+2 the page, then its content and font
    stream, font = depth + 3, depth + 4
    bodies = [b"<< /Type /Catalog /Pages 2 0 R >>"]
    for n in range(2, depth + 2):
        parent = b"/Parent %d 0 R " % (n - 1) if n > 2 else b""
        bodies.append(b"<< /Type /Pages %s/Kids [%d 0 R] /Count 1 >>" % (parent, n + 1))
    bodies += [page_body(depth + 1, stream, font), content(b"Kiwi deep page"), FONT]
    return raw_pdf(bodies)


def deep_kids(_data: bytes, rng: random.Random) -> bytes:
    """A page tree nested thousands deep, a /Kids cycle, or one page listed many times."""
    kind = rng.choice(["deep", "deep", "cycle", "repeat", "not-a-dict"])
    if kind == "deep":
        return nested_pages(rng.choice([50, 101, 400, 5000, 40000]))
    if kind == "cycle":  # two /Pages nodes, each the other's kid, beside a real page
        return raw_pdf([b"<< /Type /Catalog /Pages 2 0 R >>",
                        b"<< /Type /Pages /Kids [3 0 R 4 0 R] /Count 2 >>",
                        b"<< /Type /Pages /Parent 2 0 R /Kids [2 0 R] /Count 1 >>",
                        page_body(2, 5, 6), content(b"Kiwi cycle page"), FONT])
    if kind == "repeat":
        times = rng.choice([2, 300, 3000])
        kids = b" ".join([b"3 0 R"] * times)
        return raw_pdf([b"<< /Type /Catalog /Pages 2 0 R >>",
                        b"<< /Type /Pages /Kids [%s] /Count %d >>" % (kids, times),
                        page_body(2, 4, 5), content(b"Kiwi repeated page"), FONT])
    return raw_pdf([b"<< /Type /Catalog /Pages 2 0 R >>",
                    b"<< /Type /Pages /Kids [3 0 R 42 (x) null 1 0 R] /Count 999999999 >>",
                    page_body(2, 4, 5), content(b"Kiwi odd kids"), FONT])


def corrupt_object_stream(data: bytes, rng: random.Random) -> bytes:
    """Damage a compressed object stream or the xref stream: its bytes, its header numbers
    (/N, /First, /W, /Index) or the offsets inside it."""
    packed = [o for o in objects(data) if re.search(rb"/Type\s*/(ObjStm|XRef)",
                                                    data[o.start:o.header_end(data)])]
    if not packed:
        return flip_stream_bytes(data, rng)
    obj = rng.choice(packed)
    head = data[obj.start:obj.header_end(data)]
    start, stop = obj.stream(data)
    kind = rng.choice(["flip", "header", "offsets"])
    if kind == "header":
        key = rng.choice([rb"/N \d+", rb"/First \d+", rb"/W\s*\[[^\]]*\]", rb"/Index\s*\[[^\]]*\]",
                          rb"/Size \d+"])
        value = rng.choice([b"0", b"-1", b"999999", b"[0 0 0]", b"[9 9 9]", b"[1 2]", b"/X"])
        name = re.match(rb"/\w+", key).group()
        head = re.sub(key, name + b" " + value, head, count=1)
        return data[:obj.start] + head + data[obj.header_end(data):]
    if kind == "flip":
        return _flip_span(data, start, stop, rng)
    try:
        plain = zlib.decompress(data[start:stop])
    except zlib.error:
        return _flip_span(data, start, stop, rng)
    numbers = list(re.finditer(rb"\d+", plain[:400]))
    out = bytearray(plain)
    for match in reversed(rng.sample(numbers, min(len(numbers), rng.choice([1, 4, 20])))):
        out[match.start():match.end()] = b"%d" % rng.choice([0, 7, 65535, 10**9])
    return replace_stream(data, obj, zlib.compress(bytes(out)), head)


@dataclass(frozen=True)
class Kind:
    """A mutation and the seed PDFs it applies to (any seed, when none of those is at hand)."""

    name: str
    mutate: Mutation
    sources: tuple[str, ...]


PLAIN = ("text", "slide", "scan", "notes")
WHOLE = PLAIN + ("notes-raw",)
WITH_IMAGES = ("slide", "scan", "notes")
KINDS = [
    Kind("flip", flip_stream_bytes, WHOLE + ("aes",)),
    Kind("truncate", truncate, WHOLE + ("rc4", "aes")),
    Kind("delete-obj", delete_object, WHOLE),
    Kind("dup-obj", duplicate_object, WHOLE),
    Kind("xref", corrupt_xref, PLAIN),
    Kind("length", length_lie, WHOLE),
    Kind("filter", bogus_filter, WHOLE),
    Kind("huge-image", huge_image, WITH_IMAGES),
    Kind("bad-image", bad_image_data, WITH_IMAGES),
    Kind("encrypt", broken_encrypt, ("rc4", "aes", "aes", "text")),
    Kind("kids", deep_kids, ("text",)),
    Kind("objstm", corrupt_object_stream, ("notes-raw",)),
]


def write_mutant(seeds: Source, seed: int, folder: Path) -> Path:
    """Mutant number `seed`: its mutation is `KINDS[seed % len(KINDS)]` (so a batch of
    consecutive seeds covers every kind) and `random.Random(seed)` makes every other choice."""
    rng = random.Random(seed)
    kind = KINDS[seed % len(KINDS)]
    source = rng.choice([s for s in kind.sources if s in seeds] or sorted(seeds))
    path = folder / f"m{seed:06d}-{kind.name}-{source}.pdf"
    path.write_bytes(kind.mutate(seeds[source], rng))
    return path


# ------------------------------------------------------------------------------ the property


class Hung(BaseException):
    """Raised by the alarm: a BaseException, so no per-file barrier can swallow a hang."""


@contextmanager
def deadline(seconds: int) -> Iterator[None]:
    def expire(_signum, _frame):
        raise Hung(f"no result after {seconds} s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def make_batch(seeds: Source, numbers: range | list[int], folder: Path) -> list[str]:
    """The mutants of these seed numbers, the good PDFs and the encrypted ones, in `folder`;
    returns the mutants' names."""
    folder.mkdir(parents=True)
    for name, text in GOOD.items():
        (folder / name).write_bytes(fpdf_bytes([text]))
    (folder / "aes-empty-password.pdf").write_bytes(
        encrypt(fpdf_bytes([ENCRYPTED["aes-empty-password.pdf"]]), "", "AES-256", 3))
    (folder / "aes-user-password.pdf").write_bytes(
        encrypt(fpdf_bytes([ENCRYPTED["aes-user-password.pdf"]]), "secret", "AES-256", 4))
    return [write_mutant(seeds, seed, folder).name for seed in numbers]


def found(index: Path, words: str) -> set[str]:
    with NoteIndex.open(index) as notes:
        return {hit.file for hit in notes.search(words, k=10, mode="lexical")}


def build(notes: Path, index: Path, warnings: list[str], ocr: bool = False):
    with deadline(BUILD_DEADLINE_S * (3 if ocr else 1)):
        return NoteIndex.build(notes, index, ocr=ocr, warn=warnings.append)


def check_batch(notes: Path, index: Path, mutants: list[str], ocr: bool = False) -> None:
    """The property: two builds finish, every file is indexed or failed with a one-line
    reason, the good and the readable encrypted PDFs answer, the second build is a no-op."""
    warnings: list[str] = []
    first = build(notes, index, warnings, ocr)
    done = set(first.added) | set(first.failed)
    assert set(mutants) <= done, f"neither indexed nor failed: {sorted(set(mutants) - done)}"
    for name, reason in first.failed.items():
        assert reason.strip() and "\n" not in reason and "Traceback" not in reason, \
            f"{name}: reason {reason!r}"
    for message in warnings:
        assert "\n" not in message and "Traceback" not in message, message
    assert {*GOOD, "aes-empty-password.pdf"} <= set(first.added), first.failed
    assert "password" in first.failed.get("aes-user-password.pdf", "")
    assert found(index, "quokka") == {"good-quokka.pdf"}
    assert found(index, "bilby") == {"good-bilby.pdf"}
    assert found(index, "wombat") == {"aes-empty-password.pdf"}

    second = build(notes, index, [], ocr)
    assert not (second.added or second.updated or second.removed), vars(second)
    assert set(second.unchanged) == set(first.added)
    assert set(second.failed) == set(first.failed)
    assert found(index, "quokka") == {"good-quokka.pdf"}


@pytest.fixture(scope="module")
def seeds(tmp_path_factory) -> Source:
    return seed_pdfs(tmp_path_factory.mktemp("seeds"))


@pytest.mark.parametrize("first", [0], ids=lambda s: f"seed{s}")
def test_a_batch_of_mutants_is_indexed_or_skipped(seeds, first, tmp_path, onnx_models):
    mutants = make_batch(seeds, range(first, first + 40), tmp_path / "notes")
    check_batch(tmp_path / "notes", seeded_index(onnx_models, tmp_path / "index"), mutants)


@pytest.mark.parametrize("first", [50_000], ids=lambda s: f"seed{s}")
def test_real_notes_mutants_are_indexed_or_skipped(first, tmp_path, onnx_models):
    for path in (REAL_NOTES, REAL_NOTES_RAW):
        if not path.exists():
            pytest.skip(f"{path} is absent: the real-notes seeds come from it")
    every = seed_pdfs(tmp_path / "seeds", with_real_notes=True)
    seeds = {name: every[name] for name in ("notes", "notes-raw")}
    mutants = make_batch(seeds, range(first, first + len(KINDS)), tmp_path / "notes")
    check_batch(tmp_path / "notes", seeded_index(onnx_models, tmp_path / "index"), mutants)


def check_build_log(index: Path, report: dict) -> None:
    """Files skipped by the fault barrier (an exception no reader check expected) have their
    traceback in `build.log` inside the index folder, and only skipped files are there.
    A file skipped with a known reason (NoteUnreadable) needs no traceback."""
    log = index / "build.log"
    if not log.exists():
        assert not report["log"], report["log"]
        return
    text = log.read_text(encoding="utf-8")
    logged = re.findall(r"(?m)^--- \S+ (.+)$", text)
    assert logged and set(logged) <= set(report["failed"]), logged
    assert text.count("Traceback (most recent call last)") >= len(logged), text
    assert Path(report["log"]) == log


@pytest.mark.parametrize("first", [90_000], ids=lambda s: f"seed{s}")
def test_cli_over_mutants_prints_no_traceback(seeds, first, tmp_path, onnx_models):
    mutants = make_batch(seeds, range(first, first + 22), tmp_path / "notes")
    index = seeded_index(onnx_models, tmp_path / "index")
    done = subprocess.run(
        [sys.executable, "-m", "notesearch", "index", str(tmp_path / "notes"), "--index",
         str(index), "--no-ocr", "--json"],
        capture_output=True, text=True, timeout=BUILD_DEADLINE_S)
    assert "Traceback" not in done.stderr, done.stderr
    assert done.returncode in (0, SKIPPED_FILES_EXIT), done.stderr
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert set(mutants) <= set(report["added"]) | set(report["failed"])
    assert (done.returncode == 0) == (not report["failed"])
    for name in report["failed"]:
        assert sum(name in line for line in done.stderr.splitlines()) == 1, done.stderr
    check_build_log(index, report)
    files = len(mutants) + len(GOOD) + len(ENCRYPTED)
    assert len(done.stderr.splitlines()) <= 2 * files + 10, f"stderr flooded:\n{done.stderr}"


@pytest.mark.fuzz
@pytest.mark.parametrize("first", [100_000, 200_000, 300_000, 400_000, 500_000, 600_000],
                         ids=lambda s: f"seed{s}")
def test_long_run(first, tmp_path, onnx_models):
    seeds = seed_pdfs(tmp_path / "seeds", with_real_notes=True)
    mutants = make_batch(seeds, range(first, first + 150), tmp_path / "notes")
    check_batch(tmp_path / "notes", seeded_index(onnx_models, tmp_path / "index"), mutants)


IMAGE_KINDS = {n for n, kind in enumerate(KINDS)
               if kind.name in ("flip", "huge-image", "bad-image")}


@pytest.mark.fuzz
@pytest.mark.parametrize("first", [700_000], ids=lambda s: f"seed{s}")
def test_long_run_with_ocr(first, tmp_path, onnx_models):
    """Mutants whose figures survive decoding go on to OCR: it must skip or read them too."""
    seeds = seed_pdfs(tmp_path / "seeds", with_real_notes=True)
    numbers = [n for n in range(first, first + 150) if n % len(KINDS) in IMAGE_KINDS][:30]
    mutants = make_batch(seeds, numbers, tmp_path / "notes")
    check_batch(tmp_path / "notes", seeded_index(onnx_models, tmp_path / "index"), mutants,
                ocr=True)


# ------------------------------------------------------------------------------ open_pdf


def edited(data: bytes, pattern: bytes, value: bytes) -> bytes:
    return fix_xref(re.sub(pattern, value, data, count=1))


# Inputs on which pypdf raises outside PdfReadError; found by this suite (issue 13).
REFUSALS: dict[str, tuple[Callable[[Source], bytes], str]] = {
    "page-tree-101-deep": (lambda s: nested_pages(101), "too deeply nested"),
    "unknown-security-handler": (
        lambda s: edited(s["aes"], rb"/Filter /Standard", b"/Filter /Bogus"), "pypdf cannot read"),
    "encryption-version-99": (
        lambda s: edited(s["aes"], rb"/V \d+", b"/V 99"), "pypdf cannot read"),
    "crypt-method-none": (
        lambda s: edited(s["aes"], rb"/CFM /\w+", b"/CFM /None"), "pypdf cannot read"),
}


@pytest.mark.parametrize("name", list(REFUSALS))
def test_open_pdf_gives_a_reason_for_what_pypdf_refuses(seeds, name, tmp_path):
    """pypdf's LimitReachedError and NotImplementedError are no PdfReadError: open_pdf must
    still turn them into a one-line reason, not let them reach the build."""
    make, words = REFUSALS[name]
    path = tmp_path / f"{name}.pdf"
    path.write_bytes(make(seeds))
    with pytest.raises(NoteUnreadable) as caught:
        open_pdf(path)
    reason = str(caught.value)
    assert reason.startswith(f"{name}.pdf: ") and words in reason and "\n" not in reason


def test_a_damaged_fax_image_prints_nothing_on_stderr(seeds, tmp_path, capfd):
    """libtiff writes one stderr line per bad code word of a CCITT image, past Python (330
    lines for this one page); a build must not flood the terminal with them."""
    path = tmp_path / "fax.pdf"
    scan = seeds["scan"]
    image = image_objects(scan)[0]
    head = re.sub(rb"/Filter\s*/\w+", b"/Filter /CCITTFaxDecode",
                  scan[image.start:image.header_end(scan)])
    path.write_bytes(fix_xref(scan[:image.start] + head + scan[image.header_end(scan):]))
    warnings: list[str] = []
    for page, pdf_page in iter_pages(open_pdf(path), path, warnings.append):
        extract_figures(pdf_page, page.number, path, tmp_path / "figures", set(),
                        FigureCounts(), warnings.append)
    assert capfd.readouterr().err == ""
