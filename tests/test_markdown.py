"""Markdown notes: sections, clean text, embedded images (found only inside the notes folder),
fingerprints, and the page view's HTML. Real files in tmp_path; no model, no build."""

from __future__ import annotations

import struct
import time
import zlib
from pathlib import Path

import pytest
from conftest import text_image
from PIL import Image

from notesearch.chunk import chunk_pages
from notesearch.errors import NoteUnreadable
from notesearch.sources import markdown
from notesearch.sources.folder import NotesFolder

NOTE = """\
---
title: "Deep Learning, Week 2"
tags: [dl]
---
Some intro words before any heading.

# Week 2

Opening paragraph.

## Regularization

Setext Dropout
--------------

```python
# a comment, no heading
db = np.sum(dZ, axis=1)
```

### Keep prob
#### Deeper

## Optimisers
"""


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def read(path: Path, root: Path, figures: Path | None = None):
    warnings: list[str] = []
    document = markdown.read(path, NotesFolder(root),
                             figures or root.parent / "index" / "figures", warnings.append)
    return document, warnings


def icon(path: Path) -> Path:
    Image.new("RGB", (12, 12), "red").save(path)
    return path


def bomb_png(path: Path) -> Path:
    """A PNG header claiming 100000 x 100000 pixels: Pillow refuses it as a decompression bomb."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data)))
    header = struct.pack(">IIBBBBB", 100_000, 100_000, 8, 2, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IEND", b""))
    return path


def test_sections_heading_paths_and_file_lines(tmp_path):
    document, warnings = read(write(tmp_path, "week2.md", NOTE), tmp_path)
    assert warnings == []
    assert document.format == "markdown"
    assert document.title == "Deep Learning, Week 2"
    got = [(p.number, p.line, p.section) for p in document.pages]
    assert got == [
        (1, 5, "Deep Learning, Week 2"),  # before the first heading: the note's title
        (2, 7, "Week 2"),  # front matter lines are counted
        (3, 11, "Week 2 > Regularization"),
        (4, 13, "Week 2 > Setext Dropout"),  # a setext h2 on its first line: a sibling
        (5, 21, "Week 2 > Setext Dropout > Keep prob"),
        (6, 22, "Week 2 > Setext Dropout > Keep prob > Deeper"),
        (7, 24, "Week 2 > Optimisers"),  # ancestors by level
    ]
    assert document.pages[0].text == "Some intro words before any heading."
    assert document.pages[3].text == ("Setext Dropout\n# a comment, no heading\n"
                                      "db = np.sum(dZ, axis=1)")
    assert document.pages[6].text == "Optimisers"  # a heading alone is still a section
    assert document.figures == [] and document.scans == []


def test_title_from_an_opening_h1_then_stem_and_no_intro_section(tmp_path):
    document, _ = read(write(tmp_path, "a.md", "# Main *Title*\n\n## Sub\n"), tmp_path)
    assert document.title == "Main Title"
    assert [p.section for p in document.pages] == ["Main Title", "Main Title > Sub"]
    # A later H1 is no title: the text above it is not cited under it.
    document, _ = read(write(tmp_path, "b.md", "Preamble text.\n\n# Later\n"), tmp_path)
    assert document.title == "b"
    assert [p.section for p in document.pages] == ["b", "Later"]
    document, _ = read(write(tmp_path, "plain-note.md", "\n\nJust text.\n"), tmp_path)
    assert document.title == "plain-note"
    assert [(p.number, p.line, p.section) for p in document.pages] == [(1, 3, "plain-note")]


def test_text_is_plain_and_readable(tmp_path):
    note = write(tmp_path, "t.md", """\
# Links & *emphasis*

Some **bold** and _it_, a [link](https://example.com) and `inline code`,
[[Other note|an alias]], [[Plain Note]], <span style="x">raw</span> html<br>.

- first item
- second item
  1. nested

> quoted line

| Col A | Col B |
|-------|-------|
| `x`   | **y** |

    indented   code

![a diagram of gradients](https://remote.example/g.png) after image
""")
    document, warnings = read(note, tmp_path)
    assert warnings == []  # a remote image is ignored, not missing
    assert document.pages[0].text.split("\n") == [
        "Links & emphasis",
        "Some bold and it, a link and inline code, an alias, Plain Note, raw html.",
        "first item", "second item", "nested",
        "quoted line",
        "Col A | Col B", "x | y",
        "indented code",  # clean_page_text collapses spaces
        "after image", "a diagram of gradients",  # alt text kept as its own line
    ]
    assert document.counts.found == 0


def test_images_both_syntaxes_figures_and_counts(tmp_path):
    root = tmp_path / "vault"
    (root / "img").mkdir(parents=True)
    (root / "deep" / "assets").mkdir(parents=True)
    text_image(root / "img" / "slide one.png", ["Quaternion Rotation", "Trick"])
    text_image(root / "deep" / "assets" / "found-by-name.png", ["Velociraptor", "Embedding"])
    text_image(root / "at-root.png", ["Root level", "slide"])
    icon(root / "img" / "icon.png")
    (root / "img" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\nnot really a png")
    bomb_png(root / "img" / "bomb.png")
    note = write(root / "course", "lecture.md", """\
# One

![first slide](../img/slide%20one.png "a title") and ![](<../img/slide one.png>)

# Two

![[found-by-name.png|300]] ![[at-root.png]] ![](../img/icon.png)

# Three

![gone](../img/missing.png) ![](../img/broken.png) ![](../img/bomb.png) ![[missing.png]]
![](https://example.com/remote.png) ![](data:image/png;base64,iVBORw0KGgo=) ![](doc.pdf)
""")
    figures = tmp_path / "index" / "figures"
    document, warnings = read(note, root, figures)
    assert [(f.page, f.width, f.height) for f in document.figures] == [
        (1, 900, 300), (2, 900, 300), (2, 900, 300)]
    for figure in document.figures:
        assert (figures.parent / figure.path).is_file()
    counts = document.counts
    assert (counts.found, counts.kept, counts.duplicates, counts.specks, counts.failed) == (
        9, 3, 1, 1, 2)
    assert warnings[1].startswith(  # OSError or UnidentifiedImageError, by Pillow version
        "lecture.md line 11: image ../img/broken.png not decodable (")
    assert warnings[:1] + warnings[2:] == [
        "lecture.md line 11: image ../img/missing.png not found",
        "lecture.md line 11: image ../img/bomb.png not decodable (DecompressionBombError)",
        "lecture.md line 11: image missing.png not found",
    ]
    assert document.pages[0].text == "One\nand\nfirst slide"


def test_resolution_stays_inside_the_notes_folder(tmp_path):
    root = tmp_path / "notes"
    (root / "a" / "b").mkdir(parents=True)
    (root / ".hidden").mkdir()
    (root / "z-later").mkdir()
    secret = text_image(tmp_path / "secret.png", ["secret"])
    text_image(root / "a" / "b" / "deep.png", ["deep"])
    text_image(root / "z-later" / "deep.png", ["later"])  # sorts after a/b/deep.png
    text_image(root / ".hidden" / "only-hidden.png", ["hidden"])
    text_image(root / "a" / "b" / "sub.png", ["sub"])
    (root / "link.png").symlink_to(secret)
    note = write(root, "n.md", "x")
    def resolve(note, target, root, wiki=False):
        return markdown.resolve_image(note, target, NotesFolder(root), wiki=wiki)

    assert resolve(note, "../secret.png", root) is None  # `..` out of the folder
    assert resolve(note, "../secret.png", root, wiki=True) is None
    assert resolve(note, str(secret), root) is None  # an absolute path outside
    assert resolve(note, "link.png", root) is None  # a symlink pointing out
    assert resolve(note, "https://x.org/deep.png", root, wiki=True) is None
    assert resolve(note, "a/b", root) is None  # a folder, and no image suffix
    assert resolve(note, "deep.png", root) is None  # markdown images: beside the note only
    assert resolve(note, "deep.png", root, wiki=True) == (root / "a/b/deep.png").resolve()
    assert resolve(note, "b/sub.png", root, wiki=True) == (root / "a/b/sub.png").resolve()
    assert resolve(note, "only-hidden.png", root, wiki=True) is None  # hidden folders skipped
    assert resolve(note, ".hidden/only-hidden.png", root, wiki=True) is not None  # named: ok
    inner = write(root / "a", "inner.md", "x")
    assert resolve(inner, "b/deep.png", root) == (root / "a/b/deep.png").resolve()
    assert resolve(inner, "a/b/deep.png", root, wiki=True) == (root / "a/b/deep.png").resolve()

    document, warnings = read(write(root, "escape.md", "![](../secret.png) ![](link.png)"), root)
    assert document.figures == [] and document.counts.found == 2
    assert warnings == ["escape.md line 1: image ../secret.png not found",
                        "escape.md line 1: image link.png not found"]


def test_fingerprint_follows_the_embedded_images(tmp_path):
    root = tmp_path / "notes"
    root.mkdir()
    image = text_image(root / "plot.png", ["Before"])
    note = write(root, "n.md", "# Plot\n\n![[plot.png]]\n")
    plain = write(root, "plain.md", "# Plot\n\nno image\n")
    first = markdown.fingerprint(note, NotesFolder(root))
    untouched = markdown.fingerprint(plain, NotesFolder(root))
    assert first == markdown.fingerprint(note, NotesFolder(root))
    text_image(image, ["After"])
    second = markdown.fingerprint(note, NotesFolder(root))
    assert second != first
    note.write_text("# Plot\n\n![[plot.png]] edited\n", encoding="utf-8")
    assert markdown.fingerprint(note, NotesFolder(root)) != second
    image.unlink()
    assert markdown.fingerprint(plain, NotesFolder(root)) == untouched  # no image of its own
    # a vanished image changes it too
    assert markdown.fingerprint(note, NotesFolder(root)) != second


def test_not_a_text_file_empty_bom_and_crlf(tmp_path):
    binary = tmp_path / "binary.md"
    binary.write_bytes(b"# Title\n\x00\x01\x02")
    with pytest.raises(NoteUnreadable, match="binary.md: not a text file"):
        read(binary, tmp_path)
    # hashed alone; `read` says why it fails
    assert markdown.fingerprint(binary, NotesFolder(tmp_path))

    empty = tmp_path / "empty.md"
    empty.write_bytes(b"")
    document, _ = read(empty, tmp_path)
    assert document.pages == [] and document.title == "empty"

    windows = tmp_path / "windows.md"
    windows.write_bytes(b"\xef\xbb\xbf---\r\ntitle: 'BOM note'\r\n---\r\n# Caf\xc3\xa9\r\n\r\n"
                        b"line one\r\nline \xff two\r\n")
    document, _ = read(windows, tmp_path)
    assert document.title == "BOM note"
    assert [(p.line, p.section, p.text) for p in document.pages] == [
        (4, "Café", "Café\nline one line \ufffd two")]


def test_section_html_is_safe(tmp_path):
    root = tmp_path / "notes"
    root.mkdir()
    text_image(root / "slide.png", ["Slide"])
    note = write(root, "n.md", """\
# Safety

<script>alert("x")</script>

<img src=x onerror="alert(1)">

[click](javascript:alert(1)) and [ok](https://example.com)

![shown](slide.png) ![[slide.png|300]] ![kept alt](missing.png) ![outside](../x.png)
![remote alt](https://tracker.example/p.png)

# Next
""")
    html = markdown.section_html(note, NotesFolder(root), 1, "", "",
                                 lambda p: f"/figure/{p.name}?a=1&b=2")
    assert "<script" not in html and "&lt;script&gt;" in html
    assert "<img src=x" not in html and "javascript:" not in html.replace("(javascript:", "")
    assert 'href="javascript' not in html
    assert '<a href="https://example.com">ok</a>' in html
    assert html.count('<img src="/figure/slide.png?a=1&amp;b=2"') == 2
    assert 'alt="shown"' in html
    assert "kept alt" in html and "outside" in html and "remote alt" in html
    assert "tracker.example" not in html
    assert "Next" not in html  # only the section's own lines
    hidden = markdown.section_html(note, NotesFolder(root), 1, "", "", lambda p: None)
    assert "<img" not in hidden and "shown" in hidden
    assert markdown.section_html(note, NotesFolder(root), 3, "", "", lambda p: None) == ""


def test_section_html_marks_passage_and_answer_blocks(tmp_path):
    long_one = ("Dropout randomly switches off units during training so the network cannot "
                "rely on any single feature and spreads out its weights.")
    note = write(tmp_path, "n.md", f"""\
Intro before headings.

# Week 2

## Dropout

{long_one}

- *Keep* probability is a hyper-parameter
- unrelated bullet about optimisers

| Setting | Value |
|---------|-------|
| keep_prob | 0.8 |

```python
d3 = np.random.rand(a3.shape[0]) < keep_prob
```

Untouched closing paragraph.
""")
    passage = ("Dropout\n" + long_one[40:] + "\nKeep probability is a hyper parameter\n"
               "keep_prob | 0.8\nd3 = np.random.rand(a3.shape[0]) < keep_prob")
    answer = long_one[10:80]  # not the heading's word
    html = markdown.section_html(note, NotesFolder(tmp_path), 3, passage, answer, lambda p: None)
    assert '<h2 class="hit" id="hit">Dropout</h2>' in html  # the link's anchor: first mark
    assert f'<p class="hit answer">{long_one}</p>' in html  # cut mid-paragraph still marks
    assert '<li class="hit"><em>Keep</em> probability' in html  # markup makes no difference
    assert "<li>unrelated bullet" in html
    assert '<tr class="hit">\n<td>keep_prob</td>' in html and "<tr>\n<th>Setting" in html
    assert '<pre class="hit"><code class="language-python">' in html
    assert "<p>Untouched closing paragraph.</p>" in html
    assert "Intro" not in html and "Week 2" not in html
    plain = markdown.section_html(note, NotesFolder(tmp_path), 3, "", "", lambda p: None)
    assert "hit" not in plain
    intro = markdown.section_html(note, NotesFolder(tmp_path), 1, "", "", lambda p: None)
    assert intro == "<p>Intro before headings.</p>\n"


def test_a_long_front_matter_line_is_read_in_linear_time(tmp_path):
    note = write(tmp_path, "long.md", "---\ntitle: x" + " " * 200_000 + "y\n---\n# Body\n\ntext\n")
    started = time.perf_counter()
    document, _ = read(note, tmp_path)
    assert time.perf_counter() - started < 2  # a backtracking pattern took minutes
    assert document.title.startswith("x") and document.title.endswith("y")


def test_tables_of_numbers_and_heading_only_sections(tmp_path):
    """A section is never taken for a table of contents; one holding only its heading gives
    no passage of its own (its heading is in its sub-sections' passages)."""
    rows = "".join(f"| {name} | {value} |\n" for name, value in
                   [("epochs", 20), ("batch", 64), ("lr", 3), ("warmup", 5), ("layers", 6)])
    note = write(tmp_path, "hp.md", "# Training setup\n\n## Hyperparameters\n\n"
                 "| name | value |\n|---|---|\n" + rows + "\nThe wombat configuration.\n")
    document, _ = read(note, tmp_path)
    chunks = chunk_pages(document.pages)
    assert [c.heading for c in chunks] == ["Training setup > Hyperparameters"]
    assert "wombat configuration" in chunks[0].text and "epochs | 20" in chunks[0].text
