"""Texts joined into pieces of bounded size, each given to one call that holds the interpreter
lock throughout (Cedar's parser, Python's ``compile``): a large policy set is processed piece by
piece, so that the threads serving requests meanwhile are never kept waiting long."""

from __future__ import annotations

from collections.abc import Iterable, Iterator

__all__ = ["pieces"]


def pieces(texts: Iterable[str], size: int) -> Iterator[str]:
    """``texts`` (each complete, independent of the others: statements, definitions) joined
    by newlines into pieces of at most about ``size`` characters, in order (a longer text is
    a piece of its own)."""
    piece: list[str] = []
    length = 0
    for text in texts:
        if piece and length + len(text) > size:
            yield "\n".join(piece)
            piece, length = [], 0
        piece.append(text)
        length += len(text) + 1
    if piece:
        yield "\n".join(piece)
