"""Markdown notes: a section (from one heading to the next) is the unit of citation.

Structure comes from markdown-it-py's tokens and their source lines (`.map`), never from
regexes over the text, so a `# comment` inside a code fence is no heading. Section text is
plain and readable: markup removed, code kept verbatim (people search for
`np.sum(dZ, axis=1)`), raw HTML dropped. Embedded images (`![alt](x.png)` and Obsidian's
`![[x.png]]`) are figures of their section, and only ever read from inside the notes folder.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote, urlsplit

from markdown_it import MarkdownIt
from markdown_it.common.utils import escapeHtml, unescapeAll
from markdown_it.renderer import RendererHTML
from markdown_it.rules_inline import StateInline
from markdown_it.token import Token
from markdown_it.utils import OptionsDict

from ..errors import NoteUnreadable
from ..extract import Warn, save_image
from ..hashing import file_sha256, files_sha256
from ..layout import index_fault
from ..records import Document, FigureCounts, Page
from ..textnorm import clean_page_text, letters
from .folder import NotesFolder

FORMAT = "markdown"
NAME = "Markdown"
SUFFIXES = (".md", ".markdown")
# The images a note may embed: the other files it is read from (what the watcher watches).
ASSET_SUFFIXES = (".png", ".jpg", ".jpeg", ".gif", ".webp", ".bmp", ".tif", ".tiff")
# A block is marked when this many of its letters in a row occur in the passage (or answer):
# a passage cut mid-paragraph still marks that paragraph, a common word does not.
MARK_PIECE = 40

_IMAGE_SIZE = re.compile(r"\d+(x\d+)?")  # ![[x.png|300]], ![[x.png|300x200]]
_MARKED = ("paragraph_open", "list_item_open", "heading_open", "tr_open", "fence", "code_block")


def _wiki_rule(state: StateInline, silent: bool) -> bool:
    """Obsidian's `[[Note|alias]]` links and `![[x.png|300]]` embeds, as single tokens (run
    before markdown links, so `[[...]]` never half-parses as one)."""
    embed = state.src.startswith("![[", state.pos)
    if not embed and not state.src.startswith("[[", state.pos):
        return False
    start = state.pos + (3 if embed else 2)
    end = state.src.find("]]", start, state.posMax)
    inner = state.src[start:end]
    if end < 0 or not inner.strip() or "\n" in inner or "[" in inner:
        return False
    if not silent:
        token = state.push("wiki_embed" if embed else "wiki_link", "", 0)
        token.content = inner.replace("\\|", "|")
    state.pos = end + 2
    return True


def _parser(html: bool) -> MarkdownIt:
    md = MarkdownIt("commonmark", {"html": html}).enable("table")
    md.inline.ruler.before("link", "wiki", _wiki_rule)
    return md


# Structure and rendering never let HTML through; inline text is read with HTML on only so
# that tags come out as tokens to drop rather than as text to keep. The structure pass leaves
# inline content unparsed (`_inline` reads it once, for text).
_MD = _parser(html=False)
_MD_BLOCKS = _parser(html=False)
_MD_BLOCKS.core.ruler.disable("inline")
_MD_TEXT = _parser(html=True)


@dataclass
class _Embed:
    line: int  # 1-based, in the file
    target: str  # as the note names it (URL-decoded)
    wiki: bool  # ![[...]]: also looked for from the notes folder and by name


@dataclass
class _Block:
    line: int  # 0-based
    text: str
    alts: list[str] = field(default_factory=list)
    embeds: list[_Embed] = field(default_factory=list)
    level: int = 0  # a heading's level; 0 for any other block


@dataclass
class _Section:
    number: int
    path: str
    start: int  # 0-based line it starts on
    end: int = 0  # 0-based line after its last
    blocks: list[_Block] = field(default_factory=list)

    @property
    def text(self) -> str:
        lines = [line for block in self.blocks for line in (block.text, *block.alts)]
        return clean_page_text("\n".join(lines))

    @property
    def embeds(self) -> list[_Embed]:
        return [embed for block in self.blocks for embed in block.embeds]


@dataclass
class _Note:
    lines: list[str]
    title: str
    sections: list[_Section]
    env: dict


def resolve_image(note: Path, target: str, folder: NotesFolder, *, wiki: bool = False
                  ) -> Path | None:
    """Where an embedded image lives (its real path), or None: a remote or non-image target,
    a missing file, or one outside the notes folder.

    `target` is the path as the note names it (URL-decoded). A markdown image is looked for
    beside its note; an Obsidian embed (`wiki=True`, the name inside `![[...|300]]`) also from
    the notes folder, then as the first file of that name anywhere in it (hidden folders
    aside), as Obsidian finds it.
    """
    if not target or urlsplit(target).scheme or not _is_image(target):
        return None
    real_root = folder.path.resolve()
    for candidate in _candidates(note, target, folder, wiki):
        try:  # never a file outside the folder, by `..` or by a symlink
            real = candidate.resolve()
            if real.is_relative_to(real_root) and real.is_file():
                return real
        except (OSError, RuntimeError, ValueError):
            continue
    return None


def _candidates(note: Path, target: str, folder: NotesFolder, wiki: bool) -> Iterator[Path]:
    """Where to look, in order; the folder is listed only if the first places miss."""
    yield note.parent / target
    if wiki:
        yield folder.path / target
        parts = Path(target).parts
        yield from (c for c in folder.named(parts[-1]) if c.parts[-len(parts):] == parts)


def _is_image(target: str) -> bool:
    return Path(target).suffix.lower() in ASSET_SUFFIXES


def _image_target(src: str) -> str:
    """A markdown image's link as a path: markdown-it percent-encodes it; a query or fragment
    is no part of the file name."""
    parts = urlsplit(src)
    return src if parts.scheme else unquote(parts.path)


def _wiki_parts(inner: str) -> tuple[str, str]:
    """`[[target|alias]]` -> (target, alias), the alias empty when absent."""
    target, _, alias = inner.partition("|")
    return target.strip(), alias.strip()


def _plain(children: Sequence[Token], line: int) -> tuple[str, list[str], list[_Embed]]:
    """Inline tokens as plain text, the images' alt texts, and the local images embedded
    (`line` is the 1-based line the inline content starts on)."""
    text: list[str] = []
    alts: list[str] = []
    embeds: list[_Embed] = []
    for child in children:
        if child.type in ("text", "code_inline"):
            text.append(child.content)
        elif child.type in ("softbreak", "hardbreak"):
            text.append(" ")
            line += 1
        elif child.type == "html_inline":
            line += child.content.count("\n")
        elif child.type == "image":
            alt = _plain(child.children or [], line)[0]
            alts += [alt] if alt.strip() else []
            target = _image_target(child.attrs.get("src", ""))
            if not urlsplit(target).scheme and _is_image(target):
                embeds.append(_Embed(line, target, wiki=False))
        elif child.type == "wiki_link":
            target, alias = _wiki_parts(child.content)
            text.append(alias or target)
        elif child.type == "wiki_embed":
            target, alias = _wiki_parts(child.content)
            if not _is_image(target):
                text.append(alias or target)  # a transcluded note: its name is what is seen
                continue
            alts += [alias] if alias and not _IMAGE_SIZE.fullmatch(alias) else []
            if not urlsplit(target).scheme:
                embeds.append(_Embed(line, target, wiki=True))
    return "".join(text).strip(), alts, embeds


def _inline(token: Token, env: dict) -> tuple[str, list[str], list[_Embed]]:
    children = _MD_TEXT.parseInline(token.content, env)[0].children or []
    return _plain(children, (token.map or [0])[0] + 1)


def _blocks(tokens: Sequence[Token], env: dict) -> Iterator[_Block]:
    """The leaf blocks in file order: headings, paragraphs (list items' and quotes' too), table
    rows (cells joined by " | ") and code (verbatim)."""
    row: list[tuple[str, list[str], list[_Embed]]] | None = None
    row_line = 0
    for index, token in enumerate(tokens):
        if token.type == "tr_open":
            row, row_line = [], (token.map or [0])[0]
        elif token.type == "tr_close" and row is not None:
            yield _Block(row_line, " | ".join(cell[0] for cell in row),
                         [a for cell in row for a in cell[1]], [e for cell in row for e in cell[2]])
            row = None
        elif token.type == "inline" and row is not None:
            row.append(_inline(token, env))
        elif token.type == "inline":
            opener = tokens[index - 1]
            level = int(opener.tag[1]) if opener.type == "heading_open" else 0
            yield _Block((token.map or [0])[0], *_inline(token, env), level=level)
        elif token.type in ("fence", "code_block"):
            yield _Block((token.map or [0])[0], token.content.rstrip("\n"))


def _front_matter(lines: list[str]) -> tuple[int, str]:
    """How many lines a YAML front matter block takes at the top (0 when none), and its title."""
    if not lines or lines[0].rstrip() != "---":
        return 0, ""
    title = ""
    for number, line in enumerate(lines[1:], start=1):
        if line.rstrip() in ("---", "..."):
            return number + 1, title
        if not title and line.startswith("title:"):  # a regex here backtracks on long lines
            value = line[len("title:"):].strip()
            if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
                value = value[1:-1]
            title = "" if value in ("|", ">", "|-", ">-") else value.strip()
    return 0, ""


def _load(path: Path) -> str:
    """The note's text: UTF-8 (a BOM is fine, a bad byte becomes U+FFFD), line ends unified."""
    data = path.read_bytes()
    if b"\x00" in data:
        raise NoteUnreadable(f"{path.name}: not a text file")
    text = data.decode("utf-8-sig", errors="replace")
    return text.replace("\r\n", "\n").replace("\r", "\n")


def _parse(text: str, stem: str) -> _Note:
    """Sections with their blocks and source line ranges; front matter lines are blanked, so
    every line number is the file's."""
    lines = text.split("\n")
    skip, title = _front_matter(lines)
    env: dict = {}
    tokens = _MD_BLOCKS.parse("\n" * skip + "\n".join(lines[skip:]), env)
    blocks = list(_blocks(tokens, env))
    # A first-level heading is the title only when the note opens with it: text above a later
    # one would otherwise be cited under that heading.
    opening = blocks[0] if blocks else None
    title = title or (opening.text if opening and opening.level == 1 else "") or stem
    sections: list[_Section] = []
    trail: list[tuple[int, str]] = []  # the heading path: (level, text) of each ancestor
    for block in blocks:
        if block.level:
            trail = [(level, name) for level, name in trail if level < block.level]
            trail.append((block.level, block.text))
            path = " > ".join(name for _, name in trail if name) or title
            sections.append(_Section(len(sections) + 1, path, block.line))
        elif not sections:
            if not (block.text or block.alts or block.embeds):
                continue
            sections.append(_Section(1, title, block.line))
        sections[-1].blocks.append(block)
    for position, section in enumerate(sections, start=1):
        section.end = sections[position].start if position < len(sections) else len(lines)
    return _Note(lines, title, sections, env)


def embedded(path: Path, folder: NotesFolder) -> set[Path]:
    """The images a note embeds that resolve inside the notes folder (their real paths): what
    its page view may show, and what its fingerprint covers."""
    note = _parse(_load(path), path.stem)
    return {image for section in note.sections for embed in section.embeds
            if (image := resolve_image(path, embed.target, folder, wiki=embed.wiki))}


def fingerprint(path: Path, folder: NotesFolder) -> str:
    """A note is read from itself and the images it embeds: editing an image re-reads it."""
    try:
        images = embedded(path, folder)
    except NoteUnreadable:
        return file_sha256(path)  # `read` says why it is skipped
    return files_sha256([path, *sorted(images)])


def read(path: Path, folder: NotesFolder, figures_dir: Path, warn: Warn) -> Document:
    """Sections and figures of one note. A missing or broken image is warned about and left
    out: it never costs the note."""
    from PIL import Image

    note = _parse(_load(path), path.stem)
    document = Document(FORMAT, note.title, [], [], FigureCounts(), [])
    seen: set[str] = set()
    warned: set[str] = set()

    def warn_once(embed: _Embed, problem: str) -> None:
        if embed.target not in warned:
            warned.add(embed.target)
            warn(f"{path.name} line {embed.line}: image {embed.target} {problem}")

    for section in note.sections:
        document.pages.append(Page(section.number, section.text, section.path, section.start + 1))
        for embed in section.embeds:
            document.counts.found += 1
            image_path = resolve_image(path, embed.target, folder, wiki=embed.wiki)
            if image_path is None:
                warn_once(embed, "not found")
                continue
            try:
                with Image.open(image_path) as image:
                    image.load()  # the first frame
                    figure = save_image(image, section.number, figures_dir, seen,
                                        document.counts)
            except Exception as exc:  # any decoder fault, DecompressionBombError included
                if index_fault(exc, figures_dir.parent):  # saving it failed (a full disk)
                    raise
                document.counts.failed += 1
                warn_once(embed, f"not decodable ({type(exc).__name__})")
                continue
            if figure is not None:
                document.figures.append(figure)
    return document


def section_html(path: Path, folder: NotesFolder, number: int, passage: str, answer: str,
                 image_url: Callable[[Path], str | None]) -> str:
    """HTML of section `number` (empty when the note has no such section), for the page view.

    Its own source lines are rendered with HTML off (raw HTML comes out escaped, markdown-it
    refuses `javascript:` links). Images show through `image_url` (None: their alt text).
    Blocks overlapping the passage get class "hit", the answer's "hit answer".
    """
    note = _parse(_load(path), path.stem)
    section = next((s for s in note.sections if s.number == number), None)
    if section is None:
        return ""
    env = {"references": dict(note.env.get("references", {})), "note": path,
           "folder": folder, "image_url": image_url}
    tokens = _MD.parse("\n".join(note.lines[section.start:section.end]), env)
    _mark(tokens, env, passage, answer)
    return _MD.renderer.render(tokens, _MD.options, env)


class _Target:
    """Letters of a passage or answer, and its long pieces, to test blocks against."""

    def __init__(self, text: str) -> None:
        self.letters = letters(text)
        size = min(MARK_PIECE, len(self.letters))
        self.size = size
        self.pieces = {self.letters[i:i + size] for i in range(len(self.letters) - size + 1)}

    def overlaps(self, block: str) -> bool:
        if not block or not self.letters:
            return False
        if block in self.letters:
            return True
        return any(block[i:i + self.size] in self.pieces
                   for i in range(len(block) - self.size + 1))


def _mark(tokens: list[Token], env: dict, passage: str, answer: str) -> None:
    """Class the outermost blocks that overlap the answer ("hit answer") or the passage; the
    first one is the page's `#hit` anchor, where a result link lands."""
    hit, best = _Target(passage), _Target(answer)
    anchor = "hit"
    index = 0
    while index < len(tokens):
        token = tokens[index]
        if token.type in _MARKED:
            end = _close(tokens, index)
            found = letters(_block_text(tokens[index:end + 1], env))
            mark = "hit answer" if best.overlaps(found) else "hit" if hit.overlaps(found) else ""
            if mark:
                token.attrSet("class", mark)
                if anchor:
                    token.attrSet("id", anchor)
                    anchor = ""
                index = end  # a marked list item's paragraphs are not marked again
        index += 1


def _close(tokens: list[Token], index: int) -> int:
    """The index of the token closing `tokens[index]` (itself for a leaf)."""
    if tokens[index].nesting != 1:
        return index
    level = tokens[index].level
    return next(i for i in range(index + 1, len(tokens))
                if tokens[i].nesting == -1 and tokens[i].level == level)


def _block_text(tokens: Sequence[Token], env: dict) -> str:
    """A block's plain text as `read` makes it (alt texts included)."""
    return "\n".join(line for block in _blocks(tokens, env)
                     for line in (block.text, *block.alts))


def _image_html(note: Path, target: str, wiki: bool, alt: str, env: dict) -> str:
    image = resolve_image(note, target, env["folder"], wiki=wiki)
    url = env["image_url"](image) if image is not None else None
    if url is None:
        return escapeHtml(alt)
    return f'<img src="{escapeHtml(url)}" alt="{escapeHtml(alt)}">'


def _render_image(self: RendererHTML, tokens: Sequence[Token], idx: int, options: OptionsDict,
                  env: dict) -> str:
    token = tokens[idx]
    alt = _plain(token.children or [], 0)[0]
    return _image_html(env["note"], _image_target(token.attrs.get("src", "")), False, alt, env)


def _render_wiki_embed(self: RendererHTML, tokens: Sequence[Token], idx: int, options: OptionsDict,
                       env: dict) -> str:
    target, alias = _wiki_parts(tokens[idx].content)
    if not _is_image(target):
        return escapeHtml(alias or target)
    alt = "" if _IMAGE_SIZE.fullmatch(alias) else alias
    return _image_html(env["note"], target, True, alt, env)


def _render_wiki_link(self: RendererHTML, tokens: Sequence[Token], idx: int, options: OptionsDict,
                      env: dict) -> str:
    target, alias = _wiki_parts(tokens[idx].content)
    return escapeHtml(alias or target)


def _render_code(self: RendererHTML, tokens: Sequence[Token], idx: int, options: OptionsDict,
                 env: dict) -> str:
    """Code with its mark on `<pre>`, where a highlight shows (markdown-it puts attributes on
    the inner `<code>`)."""
    token = tokens[idx]
    pre = "".join(f' {name}="{escapeHtml(str(token.attrGet(name)))}"'
                  for name in ("id", "class") if token.attrGet(name))
    language = unescapeAll(token.info).split()[0] if token.info.strip() else ""
    code = f' class="language-{escapeHtml(language)}"' if language else ""
    return f"<pre{pre}><code{code}>{escapeHtml(token.content)}</code></pre>\n"


_MD.add_render_rule("image", _render_image)
_MD.add_render_rule("wiki_embed", _render_wiki_embed)
_MD.add_render_rule("wiki_link", _render_wiki_link)
_MD.add_render_rule("fence", _render_code)
_MD.add_render_rule("code_block", _render_code)
