"""Scanned copies of real notes, made by the tests and bench/scans.py: every page rendered,
greyed, blurred and slightly rotated, then saved as an image-only PDF (no text layer)."""

from __future__ import annotations

from pathlib import Path

SCAN_DPI = 110


def scanned_copy(source: Path, target: Path, pages: list[int] | None = None,
                 dpi: int = SCAN_DPI) -> Path:
    """Write an image-only PDF of `pages` (1-based; all when None) of `source` to `target`,
    as a flatbed scanner would: grey paper, softened strokes, a page laid ~1 degree askew."""
    import pypdfium2 as pdfium
    from PIL import ImageFilter

    pdf = pdfium.PdfDocument(str(source))
    try:
        numbers = pages or list(range(1, len(pdf) + 1))
        images = []
        for n, number in enumerate(numbers):
            page = pdf[number - 1]
            grey = page.render(scale=dpi / 72, grayscale=True).to_pil().convert("L")
            page.close()
            grey = grey.point(lambda v: 45 + v * 0.72)  # grey paper, grey ink
            grey = grey.filter(ImageFilter.GaussianBlur(0.7))
            angle = 1.0 if n % 2 == 0 else -0.8
            images.append(grey.rotate(angle, resample=3, expand=False, fillcolor=228))
    finally:
        pdf.close()
    target.parent.mkdir(parents=True, exist_ok=True)
    images[0].save(target, format="PDF", resolution=dpi, save_all=True,
                   append_images=images[1:])
    return target
