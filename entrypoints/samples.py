"""Sample documents for the demo: two readable, one that is not."""

from __future__ import annotations

SAMPLES: tuple[tuple[str, bytes], ...] = (
    (
        "status-tracking.md",
        b"# Status tracking\n\nInsightHub tracks long-running operations such as document "
        b"processing and workspace provisioning. Every status change is stored with a new "
        b"version and pushed to the browser of the user who owns it.\n\n" * 8,
    ),
    (
        "release-notes.html",
        b"<html><head><title>Notes</title><style>p{color:red}</style></head><body>"
        b"<h1>Release notes</h1><p>Workers report each step: parsing, chunking, "
        b"embedding and indexing.</p><p>Failed documents show their error and can be "
        b"retried.</p></body></html>",
    ),
    ("scanned-contract.pdf", b"%PDF-1.4\n% this is not a real PDF body\n%%EOF\n"),
)
