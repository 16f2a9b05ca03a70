"""Scale benchmark: build time, memory, size, incremental time and query latency.

    python bench/scale.py                  # 1,000 PDFs x 20 pages, then a 100k-passage index
    python bench/scale.py --pdfs 300       # smaller; figures for 1,000 are extrapolated
    python bench/scale.py --pdfs 50 --passages 20000 --keep /tmp/bench

Every build runs in a fresh subprocess so its peak RSS (VmHWM) is that build's alone. The
corpus is synthetic: minimal PDFs written by hand (fast, and pypdf reads them like any other)
whose text is drawn from a Zipf-weighted technical vocabulary, so passages differ and the
lexical index has a realistic long tail. The 100k-passage index is written directly (random
unit vectors, synthetic text) because embedding 100k passages on a laptop takes hours, and the
question it answers is only how the query path scales.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import random
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PROJECT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(PROJECT))

from notesearch.vectors import EXACT_LIMIT  # noqa: E402  (the project, not an installed copy)

ROOTS = """
gradient descent momentum adam optimiser learning rate schedule warmup decay batch minibatch
normalisation layer dropout regularisation weight penalty lasso ridge convolution kernel stride
padding pooling residual skip connection recurrent lstm gru attention transformer encoder
decoder embedding token vocabulary softmax logit entropy cross loss hinge margin support vector
kernel trick bias variance overfitting underfitting validation test split holdout bootstrap
ensemble bagging boosting forest tree split impurity gini precision recall score curve roc auc
threshold calibration likelihood posterior prior bayes sampling markov chain monte carlo
variational autoencoder latent generative adversarial discriminator generator diffusion
noise schedule activation relu sigmoid tanh gelu initialisation xavier vanishing exploding
clipping checkpoint epoch iteration convergence saddle plateau curvature hessian jacobian
backpropagation chain rule derivative partial tensor matrix vector eigenvalue singular
decomposition projection principal component whitening feature scaling standardisation
augmentation transfer finetuning pretraining distillation pruning quantisation sparsity
beam search greedy decoding perplexity sequence alignment translation segmentation detection
anchor box intersection union suppression landmark triplet siamese similarity cosine distance
nearest neighbour cluster centroid kmeans hierarchical density outlier anomaly metric error
""".split()
AFFIXES = ["", "multi", "sub", "semi", "hyper", "inter", "auto", "pre", "re", "co"]
SUFFIXES = ["", "s", "ing", "ed", "al", "ity", "wise", "less", "ness"]
WORDS_PER_PAGE = (100, 130)  # about one passage a page, as in slide notes
ZIPF_OFFSET = 80  # tuned so the commonest word is in ~38% of passages
TOPIC_WORDS = 150
TOPIC_SHARE = 0.5  # half of a lecture's words come from its topic


# ------------------------------------------------------------------------------- text


class TextSource:
    """Sentences of technical words with the statistics of real notes.

    Words follow a Zipf-Mandelbrot law (a Zipf law with its head flattened) and each lecture
    dwells on its own topic words, so the commonest word is in about 38% of the passages, as
    "learning" is in 34% of the real course notes' passages. Plain Zipf with no topics puts
    the top words in nearly every passage and makes keyword search look far slower than it is
    (100k passages: lexical p50 75 ms instead of 36).
    """

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self.vocab = []  # plain roots are the common words, derived forms the long tail
        for forms in ([r for r in ROOTS],
                      [r + s for r in ROOTS for s in SUFFIXES if s],
                      [a + r + s for a in AFFIXES if a for r in ROOTS for s in SUFFIXES]):
            forms = sorted(set(forms) - set(self.vocab))
            self.rng.shuffle(forms)
            self.vocab += forms
        self.cumulative = list(itertools.accumulate(
            1.0 / (rank + 1 + ZIPF_OFFSET) for rank in range(len(self.vocab))))
        self.topic: list[str] = []
        self.new_topic()

    def new_topic(self) -> None:
        """Start a new lecture: its own handful of words it keeps coming back to."""
        self.topic = list(dict.fromkeys(self._global(TOPIC_WORDS * 2)))[:TOPIC_WORDS]

    def _global(self, count: int) -> list[str]:
        return self.rng.choices(self.vocab, cum_weights=self.cumulative, k=count)

    def words(self, count: int) -> list[str]:
        topical = sum(self.rng.random() < TOPIC_SHARE for _ in range(count))
        words = self.rng.choices(self.topic, k=topical) + self._global(count - topical)
        self.rng.shuffle(words)
        return words

    def page(self) -> list[str]:
        """One page as lines: a title of topic words, then sentences of 8-16 words."""
        lines, total = [" ".join(self.rng.sample(self.topic, 3)).title()], 0
        target = self.rng.randint(*WORDS_PER_PAGE)
        while total < target:
            sentence = self.words(self.rng.randint(8, 16))
            total += len(sentence)
            lines.append(" ".join(sentence).capitalize() + ".")
        return lines

    def query(self) -> str:
        """3-5 distinct words about one topic, as a learner would type them."""
        self.new_topic()
        words = list(dict.fromkeys(self.words(12)))
        return " ".join(words[: self.rng.randint(3, 5)])


# ------------------------------------------------------------------------------- PDFs


def write_pdf(path: Path, pages: list[list[str]]) -> None:
    """A minimal valid PDF: Helvetica text, one line per text-showing operator."""
    objects = [b"<< /Type /Catalog /Pages 2 0 R >>", b"",
               b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>"]
    kids = []
    for lines in pages:
        body = "\n".join(f"({_escape(line)}) Tj T*" for line in lines)
        stream = f"BT /F1 10 Tf 13 TL 40 760 Td\n{body}\nET".encode("latin-1")
        objects.append(b"<< /Length %d >>\nstream\n%s\nendstream" % (len(stream), stream))
        kids.append(len(objects) + 1)
        objects.append(b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Resources "
                       b"<< /Font << /F1 3 0 R >> >> /Contents %d 0 R >>" % (len(objects)))
    objects[1] = b"<< /Type /Pages /Kids [%s] /Count %d >>" % (
        b" ".join(b"%d 0 R" % k for k in kids), len(kids))
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n%s\nendobj\n" % (number, body)
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (
        len(objects) + 1, xref)
    path.write_bytes(bytes(out))


def _escape(line: str) -> str:
    return line.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")


def make_corpus(folder: Path, pdfs: int, pages: int, seed: int) -> None:
    text = TextSource(seed)
    folder.mkdir(parents=True, exist_ok=True)
    for n in range(pdfs):
        text.new_topic()
        write_pdf(folder / f"lecture-{n:04d}.pdf",
                  [text.page() for _ in range(pages)])


# ------------------------------------------------------------------------------- builds


def child_build(notes: str, index: str) -> None:
    """Run in a fresh process: one build, then its figures as JSON on stdout."""
    from notesearch import NoteIndex

    report = NoteIndex.build(notes, index, ocr=False, warn=lambda _m: None)
    print(json.dumps({
        "seconds": report.seconds, "embedded": report.passages_embedded,
        "added": len(report.added), "updated": len(report.updated),
        "failed": len(report.failed),
        "peak_rss_mb": peak_rss_mb(),
    }))


def peak_rss_mb() -> float:
    """This process's peak RSS. Not getrusage: Linux carries ru_maxrss over fork + exec, so a
    child would report its parent's size if the parent had been larger."""
    with open("/proc/self/status") as status:
        hwm = next(line for line in status if line.startswith("VmHWM"))
    return int(hwm.split()[1]) / 1024


def measure_build(notes: Path, index: Path) -> dict:
    """The build's own figures, its wall time and its CPU time (which load does not stretch)."""
    started, cpu = time.perf_counter(), _children_cpu()
    done = subprocess.run([sys.executable, __file__, "--child-build", str(notes), str(index)],
                          capture_output=True, text=True, check=True)
    figures = json.loads(done.stdout.strip().splitlines()[-1])
    figures["wall_seconds"] = time.perf_counter() - started
    figures["cpu_seconds"] = _children_cpu() - cpu
    return figures


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def seed_models(models: Path, index: Path) -> None:
    """Give a fresh index the exported model, so build figures leave out the one-off export.

    Nothing to give when the export went to the machine's model cache, shared by every index.
    """
    if models.is_dir():
        shutil.copytree(models, index / "models", copy_function=os.link)


def export_model(work: Path) -> tuple[Path, float]:
    """Export the model once (PyTorch -> ONNX), as a new index's first build does."""
    notes = work / "seed-notes"
    notes.mkdir(parents=True, exist_ok=True)
    write_pdf(notes / "seed.pdf", [["Seed", "A page about gradient descent."]])
    started = time.perf_counter()
    measure_build(notes, work / "seed-index")
    return work / "seed-index" / "models", time.perf_counter() - started


def generation_size(index: Path) -> int:
    from notesearch import layout

    live = layout.IndexDir(index).current()
    return sum(p.stat().st_size for p in live.iterdir()) if live else 0


def passages(index: Path) -> int:
    from notesearch import NoteIndex

    with NoteIndex.open(index) as notes:
        return int(notes.db.execute("SELECT count(*) FROM chunks").fetchone()[0])


def commonest_word_share(index: Path) -> float:
    """Share of passages holding the commonest word: what makes keyword search slow."""
    from notesearch import NoteIndex

    with NoteIndex.open(index) as notes:
        notes.db.execute("CREATE VIRTUAL TABLE temp.vocab USING fts5vocab(main, chunks_fts, row)")
        top = notes.db.execute("SELECT max(doc) FROM temp.vocab").fetchone()[0]
        total = notes.db.execute("SELECT count(*) FROM chunks").fetchone()[0]
    return top / max(1, total)


def change_one(notes: Path, seed: int) -> None:
    text = TextSource(seed + 1)
    write_pdf(notes / "lecture-0000.pdf", [text.page() for _ in range(20)])


# ------------------------------------------------------------------------------- queries


def query_latency(index: Path, seed: int, count: int = 100) -> dict[str, tuple[float, float]]:
    """p50 and p95 in ms per mode, warm: the model and vectors are loaded before timing."""
    from notesearch import NoteIndex

    text = TextSource(seed + 2)
    queries = [text.query() for _ in range(count)]
    out = {}
    with NoteIndex.open(index) as notes:
        for warm in queries[:5]:
            notes.search(warm, k=5)
        runs = {mode: lambda q, m=mode: notes.search(q, k=5, mode=m)
                for mode in ("hybrid", "dense", "lexical")}
        runs["embed-only (no search)"] = lambda q: notes.embedder.encode([q])
        for name, run_query in runs.items():
            times = []
            for query in queries:
                started = time.perf_counter()
                run_query(query)
                times.append((time.perf_counter() - started) * 1000)
            out[name] = (statistics.median(times), statistics.quantiles(times, n=20)[18])
    return out


# ------------------------------------------------------------------------------- 100k index


def synthetic_index(index: Path, count: int, models: Path, seed: int) -> float:
    """Write a live generation of `count` passages (random unit vectors); returns seconds."""
    import numpy as np

    from notesearch import layout, store, vectors
    from notesearch.chunk import CHUNKER_VERSION
    from notesearch.embed import DEFAULT_MODEL
    from notesearch.records import Chunk, Page

    started = time.perf_counter()
    text, rng = TextSource(seed + 3), np.random.default_rng(seed)
    folder = layout.IndexDir(index)
    seed_models(models, index)
    with folder.write_lock():
        temp = folder.new_temp()
        db = store.connect(temp / layout.DB_NAME)
        store.migrate(db)
        per_doc = 100
        for doc in range(0, count, per_doc):
            text.new_topic()
            chunks = [Chunk(" ".join(text.page()[1:]), p, p)
                      for p in range(1, min(per_doc, count - doc) + 1)]
            vecs = rng.standard_normal((len(chunks), 384)).astype(np.float32)
            vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
            with db:
                doc_id = store.add_document(db, name=f"synthetic-{doc // per_doc:05d}.pdf",
                                            path="/nowhere", sha256="0" * 64, course=None,
                                            title="Synthetic", pages=len(chunks), size=0,
                                            format="pdf")
                store.add_pages(db, doc_id, [Page(c.page, c.text) for c in chunks])
                store.add_chunks(db, doc_id, chunks, vecs)
        with db:
            store.set_meta(db, model=DEFAULT_MODEL, dim="384",
                           format_version=str(store.FORMAT_VERSION),
                           chunker_version=str(CHUNKER_VERSION), built_at=store.now(),
                           notes_dir="/nowhere")
        faiss_index = vectors.build(384, count, store.iter_vectors(db, 384))
        vectors.save(faiss_index, temp / layout.VECTORS_NAME)
        db.close()
        folder.commit(temp)
    return time.perf_counter() - started


# ------------------------------------------------------------------------------- report


class Table:
    """Rows of (measure, result), echoed to stderr as they come: a long run shows progress."""

    def __init__(self) -> None:
        self.rows: list[tuple[str, str]] = []

    def add(self, name: str, value: str) -> None:
        self.rows.append((name, value))
        print(f"  {name}: {value}", file=sys.stderr, flush=True)

    def latency(self, index: Path, label: str, seed: int) -> None:
        self.add(f"commonest word, {label}", f"in {commonest_word_share(index):.0%} of passages "
                 "(real notes: 'learning', in 34%)")
        for mode, (p50, p95) in query_latency(index, seed).items():
            self.add(f"query {mode}, {label}, warm", f"p50 {p50:.1f} ms, p95 {p95:.1f} ms")

    def print(self) -> None:
        width = max(len(name) for name, _ in self.rows)
        print(f"| {'measure'.ljust(width)} | result |")
        print(f"|{'-' * (width + 2)}|--------|")
        for name, value in self.rows:
            print(f"| {name.ljust(width)} | {value} |")


def corpus_step(args: argparse.Namespace, work: Path, table: Table) -> tuple[Path, Path]:
    """The corpus, a quarter of it (hard links) and the exported model."""
    table.add("machine", f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f} at start")
    notes, quarter = work / "notes", work / "notes-quarter"
    started = time.perf_counter()
    make_corpus(notes, args.pdfs, args.pages, args.seed)
    table.add("corpus", f"{args.pdfs} PDFs x {args.pages} pages, generated in "
                        f"{time.perf_counter() - started:.0f} s")
    quarter.mkdir()
    for pdf in sorted(notes.iterdir())[: max(1, args.pdfs // 4)]:
        os.link(pdf, quarter / pdf.name)
    models, seconds = export_model(work)
    where = "index folder" if models.is_dir() else "machine cache, none if already there"
    table.add(f"first build with model export ({where})", f"{seconds:.1f} s")
    return notes, models


def build_step(args: argparse.Namespace, work: Path, models: Path, table: Table) -> Path:
    """Full builds of a quarter and of all the corpus; size; one changed file."""
    notes, index, small_index = work / "notes", work / "index", work / "index-quarter"
    seed_models(models, small_index)
    small = measure_build(work / "notes-quarter", small_index)
    table.add(f"build {args.pdfs // 4} PDFs", f"{small['seconds']:.0f} s, "
              f"{small['embedded']} passages, peak RSS {small['peak_rss_mb']:.0f} MB")
    seed_models(models, index)
    full = measure_build(notes, index)
    table.add(f"build {args.pdfs} PDFs (ocr off)",
              f"{full['seconds']:.0f} s ({full['wall_seconds']:.0f} s wall), {full['embedded']} "
              f"passages, {full['embedded'] / full['seconds']:.1f} passages/s; "
              f"{full['cpu_seconds']:.0f} CPU-s, "
              f"{full['embedded'] / full['cpu_seconds']:.1f} passages per CPU-s")
    table.add(f"peak RSS, {args.pdfs // 4} vs {args.pdfs} PDFs",
              f"{small['peak_rss_mb']:.0f} MB vs {full['peak_rss_mb']:.0f} MB")
    if args.pdfs * args.pages < 20_000:
        scale = 20_000 / (args.pdfs * args.pages)
        cpu_minutes = full["cpu_seconds"] * scale / 60
        table.add("build 1,000 PDFs x 20 pages (extrapolated)",
                  f"~{full['seconds'] * scale / 60:.0f} min at the same rate, linear in pages; "
                  f"{cpu_minutes:.0f} CPU-min: {cpu_minutes / (os.cpu_count() or 1):.0f} min "
                  f"on {os.cpu_count()} idle cores if the build used them all, "
                  f"{cpu_minutes:.0f} if one")
    size = generation_size(index)
    table.add("index size on disk (one generation)",
              f"{size / 1e6:.1f} MB ({size / max(1, passages(index)) / 1e3:.1f} kB/passage)"
              + ("; + the ONNX model in the index" if (index / "models").is_dir() else ""))
    change_one(notes, args.seed)
    step = measure_build(notes, index)
    table.add("incremental, 1 PDF changed",
              f"{step['seconds']:.1f} s ({step['wall_seconds']:.1f} s wall incl. start-up), "
              f"{step['embedded']} passages embedded")
    return index


def synthetic_step(args: argparse.Namespace, work: Path, models: Path, table: Table) -> None:
    index = work / "index-synthetic"
    seconds = synthetic_index(index, args.passages, models, args.seed)
    kind = "HNSW" if args.passages > EXACT_LIMIT else "exact"
    table.add(f"synthetic {args.passages} passages ({kind}) written", f"{seconds:.0f} s")
    table.latency(index, f"{args.passages} synthetic passages", args.seed)


def run(args: argparse.Namespace, work: Path) -> Table:
    table = Table()
    _notes, models = corpus_step(args, work, table)
    index = build_step(args, work, models, table)
    table.latency(index, f"{passages(index)} passages", args.seed)
    if args.passages:
        synthetic_step(args, work, models, table)
    table.add("load average at end (1, 5, 15 min)",
              ", ".join(f"{load:.1f}" for load in os.getloadavg()))
    return table


def main() -> None:
    if len(sys.argv) == 4 and sys.argv[1] == "--child-build":
        child_build(sys.argv[2], sys.argv[3])
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pdfs", type=int, default=1000, help="PDFs in the corpus")
    parser.add_argument("--pages", type=int, default=20, help="pages per PDF")
    parser.add_argument("--passages", type=int, default=100_000,
                        help="size of the synthetic index for query timing (0: skip)")
    parser.add_argument("--seed", type=int, default=6)
    parser.add_argument("--keep", type=Path, help="work here and keep the files")
    args = parser.parse_args()
    work = args.keep or Path(tempfile.mkdtemp(prefix="notesearch-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        table = run(args, work)
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    table.print()


if __name__ == "__main__":
    main()
