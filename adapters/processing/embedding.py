"""An offline, deterministic embedder: feature hashing of words and word pairs."""

from __future__ import annotations

import hashlib
import itertools
import math
import re
from collections.abc import Sequence

from domain.ports.processing import Embedder

_WORD = re.compile(r"\w+", re.UNICODE)


class FeatureHashingEmbedder(Embedder):
    """Hashes each word and adjacent word pair into a signed bucket; vectors are L2-normalised.

    Not a language model: it needs no network and gives the same vector for the same text on
    every machine, which is what lets the system run and be tested offline.
    """

    def __init__(self, dimensions: int = 256) -> None:
        if dimensions < 8:
            raise ValueError("dimensions must be at least 8")
        self.dimensions = dimensions
        self.name = f"feature-hashing-{dimensions}"

    def embed(self, texts: Sequence[str]) -> list[tuple[float, ...]]:
        return [self._one(text) for text in texts]

    def _one(self, text: str) -> tuple[float, ...]:
        vector = [0.0] * self.dimensions
        words = _WORD.findall(text.lower())
        features = words + [f"{a} {b}" for a, b in itertools.pairwise(words)]
        for feature in features:
            digest = hashlib.blake2b(feature.encode(), digest_size=8).digest()
            value = int.from_bytes(digest, "little")
            vector[value % self.dimensions] += 1.0 if value >> 63 else -1.0
        norm = math.sqrt(sum(v * v for v in vector))
        return tuple(v / norm for v in vector) if norm else tuple(vector)
