"""Helpers for the book's chapters (not part of the ``vae_lib`` namespace: chapters import
``from vae_lib.book import glue_all``)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def glue_all(values: Mapping[str, Any] | None = None, /, **named: Any) -> None:
    """Glue each value under its name for the text (``{glue:text}`` roles), showing nothing.

    One call per cell replaces a run of ``glue(name, value, display=False)`` lines: the
    names come from ``values`` (for names built in a loop) and from the keyword arguments.
    A name given twice is an error. A NumPy or PyTorch scalar (``np.float64``, a 0-d tensor) is
    glued as the Python number it holds: myst-nb formats ``{glue:text}`name:.1f``` from the
    value's repr, which for ``np.float64(0.5)`` is not a number. Needs ``myst-nb`` (the
    ``notebooks`` extra), imported only when called, so that the library itself does not depend
    on it.
    """
    from myst_nb import glue

    values = dict(values or {})
    twice = sorted(set(values) & set(named))
    if twice:
        raise ValueError(f"glued twice: {', '.join(twice)}")
    values.update(named)
    for name, value in values.items():
        if not isinstance(name, str) or not name:
            raise TypeError(f"a glue name must be a non-empty string, not {name!r}")
        if getattr(value, "ndim", None) == 0 and callable(getattr(value, "item", None)):
            value = value.item()
        glue(name, value, display=False)
