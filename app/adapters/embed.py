"""Sentence embeddings (all-MiniLM-L6-v2, 384-d, unit length) from a local fastembed model dir."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import structlog

from app.adapters.model_files import MODEL_NAME, ModelError, ModelMissing, verify_model_dir

if TYPE_CHECKING:
    from fastembed import TextEmbedding

__all__ = ["DIMENSION", "Embedder", "ModelError", "ModelMissing"]

log = structlog.get_logger(__name__)

DIMENSION = 384
BATCH_SIZE = 64


class Embedder:
    """Embeds texts with the provisioned model; loads it on first use, once per process.

    The model is never downloaded at run time: fastembed is pointed at ``model_dir`` with
    ``local_files_only``, and the dir is verified against the pinned checksums first.
    Inference is CPU-bound, so :meth:`embed` runs it in a worker thread, one batch at a time,
    letting the event loop serve other work between batches.
    """

    dimension = DIMENSION

    def __init__(self, model_dir: Path, *, batch_size: int = BATCH_SIZE) -> None:
        if batch_size < 1:
            raise ValueError("batch_size must be at least 1")
        self.model_dir = model_dir.expanduser()
        self.batch_size = batch_size
        self._model: TextEmbedding | None = None
        self._lock = threading.Lock()

    def load(self) -> TextEmbedding:
        """The fastembed model (blocking; raises :class:`ModelError` if the dir is unusable)."""
        with self._lock:
            if self._model is None:
                self._model = self._open()
            return self._model

    def _open(self) -> TextEmbedding:
        verify_model_dir(self.model_dir)
        from fastembed import TextEmbedding  # heavy (onnxruntime): imported on first use

        model = TextEmbedding(
            model_name=MODEL_NAME,
            cache_dir=str(self.model_dir),
            specific_model_path=str(self.model_dir),
            local_files_only=True,
            threads=None,
        )
        log.info("embed.model_loaded", model_dir=str(self.model_dir))
        return model

    def embed_sync(self, texts: Sequence[str]) -> list[list[float]]:
        """Vectors for ``texts`` in order (blocking: run it in a thread, or use :meth:`embed`)."""
        model = self.load()
        vectors = model.embed(list(texts), batch_size=self.batch_size)
        return [vector.tolist() for vector in vectors]

    async def embed(self, texts: Sequence[str]) -> list[list[float]]:
        """Vectors for ``texts`` in order, each 384 floats of unit length, off the event loop."""
        if not texts:
            return []
        if self._model is None:
            await asyncio.to_thread(self.load)
        out: list[list[float]] = []
        for start in range(0, len(texts), self.batch_size):
            batch = texts[start : start + self.batch_size]
            out.extend(await asyncio.to_thread(self.embed_sync, batch))
        return out
