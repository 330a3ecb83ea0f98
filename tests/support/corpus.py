"""A small corpus of real files, built in code, and what processing each must end in.

Nothing is read from disk: the PDFs are written object by object here (and encrypted with
pypdf), so that the tests carry their own inputs and every byte of them is known.
"""

from __future__ import annotations

import io
import random
from dataclasses import dataclass

from pypdf import PdfReader, PdfWriter

from application.pipeline import split_text
from domain.entities import RagConfig


def pdf_with_pages(pages: list[list[str]]) -> bytes:
    """A valid PDF (1.4, Helvetica) with one page per item, each line a text-showing operator."""
    page_ids = [4 + 2 * n for n in range(len(pages))]
    kids = " ".join(f"{page} 0 R" for page in page_ids)
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        f"<< /Type /Pages /Kids [{kids}] /Count {len(pages)} >>".encode(),
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    for page_id, lines in zip(page_ids, pages, strict=True):
        objects.append(
            f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] "
            f"/Resources << /Font << /F1 3 0 R >> >> /Contents {page_id + 1} 0 R >>".encode()
        )
        operators = ["BT", "/F1 11 Tf", "13 TL", "72 740 Td"]
        for line in lines:
            escaped = line.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")
            operators.append(f"({escaped}) Tj T*")
        operators.append("ET")
        stream = "\n".join(operators).encode("latin-1")
        objects.append(b"<< /Length %d >>\nstream\n%s\nendstream" % (len(stream), stream))
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n%s\nendobj\n" % (number, body)
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    for offset in offsets:
        out += b"%010d 00000 n \n" % offset
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (
        len(objects) + 1,
        xref,
    )
    return bytes(out)


def encrypted(pdf: bytes, password: str = "open sesame") -> bytes:
    """``pdf`` encrypted with a user password, as a reader without it would receive it."""
    writer = PdfWriter(clone_from=PdfReader(io.BytesIO(pdf)))
    writer.encrypt(password)
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


NAMES = (
    "Ada Lovelace",
    "Charles Babbage",
    "Analytical Engine",
    "Grace Hopper",
    "Alan Turing",
    "Bletchley Park",
    "Status Service",
    "Rabbit Broker",
)
_WORDS = (
    *("the", "of", "and", "a", "process", "status", "change", "every", "worker", "queue"),
    *("lease", "version", "event", "document", "chunk", "stage", "graph", "pipeline"),
    *("record", "store", "hand", "on", "retry", "ready", "failed", "pending"),
)


def prose(words: int, *, seed: int = 0) -> str:
    """Deterministic text in which the same proper nouns recur, so a graph has something in it."""
    rng = random.Random(seed)
    parts = []
    for n in range(words):
        parts.append(rng.choice(NAMES) if n % 9 == 0 else rng.choice(_WORDS))
        if n % 17 == 16:
            parts[-1] += "."
    return " ".join(parts)


def big_text(megabytes: float, *, seed: int = 1) -> bytes:
    """A plain-text file of about ``megabytes``, slow enough that a stage can be caught in it."""
    return prose(int(megabytes * 1_000_000 / 7), seed=seed).encode()


@dataclass(frozen=True)
class CorpusFile:
    """One file and the outcome its processing must have."""

    filename: str
    data: bytes
    # For a file that must end ready: the text the extractor must find, and its pages.
    text: str | None = None
    pages: int = 1
    # For a file that must fail: the start of the user-readable error.
    error: str | None = None

    @property
    def ready(self) -> bool:
        return self.error is None

    def chunk_count(self, config: RagConfig) -> int:
        assert self.text is not None
        return len(split_text(self.text, size=config.chunk_size, overlap=config.chunk_overlap))


PDF_PAGES = [
    ["Quarterly report, page one.", "Ada Lovelace reviewed the (first) draft."],
    ["Page two: Charles Babbage signed off.", "Ada Lovelace agreed."],
    ["Page three closes the report."],
]
PDF_TEXT = "\n".join(line for page in PDF_PAGES for line in page)
TXT_TEXT = prose(420, seed=2)
MD_TEXT = "# Notes\n\n" + "\n\n".join(f"## Part {n}\n\n{prose(60, seed=n)}" for n in range(5))
HTML_VISIBLE = "Team page. Grace Hopper leads the compiler team; Alan Turing visits."


def corpus() -> list[CorpusFile]:
    """Every kind of file the workers must handle, good and bad."""
    valid_pdf = pdf_with_pages(PDF_PAGES)
    return [
        CorpusFile("notes.txt", TXT_TEXT.encode(), text=TXT_TEXT),
        CorpusFile("readme.md", MD_TEXT.encode(), text=MD_TEXT),
        CorpusFile(
            "team.html",
            (
                "<html><head><title>ignored title</title><style>p{color:red}</style></head>"
                "<body><script>var hidden = 'never indexed';</script>"
                f"<p>{HTML_VISIBLE}</p></body></html>"
            ).encode(),
            text=HTML_VISIBLE,
        ),
        CorpusFile("report.pdf", valid_pdf, text=PDF_TEXT, pages=len(PDF_PAGES)),
        CorpusFile(
            "broken.pdf",
            b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\n% the rest was lost\n",
            error="Parsing failed: the PDF is corrupt or unreadable (",
        ),
        CorpusFile(
            "truncated.pdf",
            valid_pdf[: len(valid_pdf) // 2],
            error="Parsing failed: the PDF is corrupt or unreadable (",
        ),
        CorpusFile(
            "locked.pdf", encrypted(valid_pdf), error="Parsing failed: the PDF is encrypted"
        ),
        CorpusFile("empty.txt", b"", error="Parsing failed: the file is empty"),
        CorpusFile(
            "markup-only.html",
            b"<html><body><script>1</script></body></html>",
            error="Parsing failed: no text could be extracted from the file",
        ),
        CorpusFile(
            "latin1.txt",
            "caf\xe9 cr\xe8me".encode("latin-1"),
            error="Parsing failed: the file is not UTF-8 text",
        ),
    ]


# Accepted by no upload; a worker that is nonetheless handed one must fail it clearly.
UNSUPPORTED = CorpusFile(
    "figures.xlsx", b"PK\x03\x04 not a text format", error="Parsing failed: unsupported file type"
)
