"""Terminal output of the CLI (rich): colour on a terminal, plain text in a pipe."""

from __future__ import annotations

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from .courses import course_label
from .records import FigureHit, Hit, pages_cited
from .snippet import shown
from .wording import counted


class _Console(Console):
    def on_broken_pipe(self) -> None:
        """Rich would exit 1 here; the CLI ends a closed pipe like every other command
        (`cli.EXIT_PIPE_CLOSED`)."""
        self.quiet = True
        raise BrokenPipeError


console = _Console(highlight=False, soft_wrap=True)


def citation(hit: Hit | FigureHit) -> str:
    last = hit.page_end if isinstance(hit, Hit) else hit.page
    return f"{course_label(hit.course, hit.course_title)} — {hit.file}, " \
        f"{pages_cited(hit.page, last, hit.section, hit.line)}"


def _opening(hits: list[Hit] | list[FigureHit], none: str, what: str) -> bool:
    """Say when there is nothing, or nothing confident; False when there is nothing."""
    if not hits:
        console.print(none)
        return False
    if not any(h.confident for h in hits):
        console.print(f"[yellow]No confident match in your notes; closest {what}:[/]")
    return True


def _weak(hit: Hit | FigureHit) -> str:
    return "" if hit.confident else " [yellow](weak)[/]"


def print_hits(hits: list[Hit], query: str, none: str = "no results") -> None:
    if not _opening(hits, none, "passages"):
        return
    for hit in hits:
        kind = " [magenta]\\[figure text][/]" if hit.kind == "figure" else ""
        console.print(f"[bold]{hit.rank}.[/] [cyan]{hit.score:.3f}[/] "
                      f"{escape(citation(hit))}{kind}{_weak(hit)}")
        text = "".join(f"[bold yellow]{escape(s)}[/]" if match else escape(s)
                       for s, match in shown(hit.text, hit.answer, query))
        console.print(f"   {text}")
        for figure in hit.figures:
            where = "section" if hit.section is not None else "p."
            console.print(f"   [dim]figure {where} {figure['page']}: {escape(figure['path'])}[/]")


def print_figures(hits: list[FigureHit], none: str = "no figures") -> None:
    if not _opening(hits, none, "figures"):
        return
    for hit in hits:
        console.print(f"[bold]{hit.rank}.[/] {escape(citation(hit))}{_weak(hit)}\n"
                      f"   {escape(hit.path)}")


def print_status(info: dict) -> None:
    table = Table(title=f"Index {info['index']}", title_justify="left")
    for column in ("file", "course", "pages", "passages", "figures"):
        # names fold onto a second line rather than lose their end in a narrow pipe
        table.add_column(column, justify="right" if column != "file" else "left",
                         overflow="fold")
    for doc in info["documents"]:
        pages = str(doc["pages"]) if doc["format"] == "pdf" else f"{doc['pages']} sections"
        table.add_row(escape(doc["file"]), escape(doc["course_label"]), pages,
                      str(doc["passages"]), str(doc["figures"]))
    console.print(table)
    console.print(
        f"model {info['model']} ({info['dimension']} dims), {info['passages']} passages, "
        f"{info['size_bytes'] / 1e6:.1f} MB, built {info['built_at']}")
    if info["build_running"]:
        console.print(f"A build (PID {info['build_running']}) is under way; searches use this "
                      "index until it finishes.")
        return
    from pathlib import Path

    from .hints import index_command

    # a notes folder that moved: the command must name where the notes are now
    notes_dir = info["notes_dir"] if info["notes_dir_exists"] else None
    command = escape(index_command(Path(info["index"]), notes_dir))
    if info["notes_dir"] and not notes_dir:
        console.print(f"The notes folder {escape(info['notes_dir'])} is gone (moved or "
                      f"deleted): run `{command}` with the folder where the notes are now")
    changed = [escape(doc["file"]) for doc in info["documents"] if doc["changed_since"]]
    if changed and (notes_dir or not info["notes_dir"]):  # gone: said above
        console.print(f"{counted(len(changed), 'note')} changed or gone since indexing "
                      f"({', '.join(changed[:3])}{', ...' if len(changed) > 3 else ''}): run "
                      f"`{command}` to bring the index up to date")
    new = [escape(name) for name in info["not_indexed"]]
    if new:
        console.print(f"{counted(len(new), 'note')} in the notes folder not in the index "
                      f"({', '.join(new[:3])}{', ...' if len(new) > 3 else ''}): run "
                      f"`{command}` to index them (a file it cannot read is skipped, and says why)")
    pending = info["figures_ocr_pending"]
    if pending:
        what = f"{counted(pending, 'image')} (figures and scanned pages)"
        if info["ocr"] == "off":
            console.print(f"{what} not OCR'd (built with --no-ocr); to read the text in them "
                          f"run `{command}`")
        else:
            console.print(f"{what} not yet OCR'd: run `{command}` to finish")


def print_eval(result: dict) -> None:
    metrics = ["R@1", "R@5", "R@10", "MRR", "nDCG@10"]
    table = Table(title=f"{result['queries']} queries, k={result['k']}", title_justify="left")
    table.add_column("ranker")
    table.add_column("kind")
    for metric in metrics:
        table.add_column(metric, justify="right")
    for ranker, by_kind in result["rankers"].items():
        for kind, values in by_kind.items():
            table.add_row(ranker, kind, *(f"{values[m]:.2f}" for m in metrics))
    console.print(table)
    misses = result["misses"]
    if misses:
        console.print(f"Missed by {result['mode']} (no relevant page in the top {result['k']}):")
        for miss in misses:
            console.print(f"  {escape(miss['id'])}: {escape(miss['query'])}")
