"""Checks on the *values* of tensors, and a switch that lets a training loop skip them.

A shape check costs nothing: it reads metadata. A value check (are these pixels in [0, 1]?)
has to read the tensor and bring the answer back to Python, which on a GPU stops the host until
every queued kernel has run (a *host synchronisation*), and on a CPU costs a pass over the data.
Done on every minibatch and every likelihood call, that is measurable (see
``benchmarks/train_speed.py``).

So value checks are on by default, for every call a reader makes, and a training loop that has
checked its whole data set once up front may switch them off for its inner steps with
:func:`skip_value_checks` (as ``torch.distributions`` lets one turn off ``validate_args``).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

import torch

_VALUE_CHECKS: ContextVar[bool] = ContextVar("vae_lib_value_checks", default=True)


def value_checks_enabled() -> bool:
    """Whether value checks run here (``False`` only inside :func:`skip_value_checks`)."""
    return _VALUE_CHECKS.get()


@contextmanager
def skip_value_checks() -> Iterator[None]:
    """Inside this block, :func:`check_unit_interval` (and the checks built on it) do nothing.

    For inner loops whose inputs were checked once before the loop; shape and type checks still
    run. The setting is per thread and per asyncio task, and restored on exit.
    """
    token = _VALUE_CHECKS.set(False)
    try:
        yield
    finally:
        _VALUE_CHECKS.reset(token)


def check_unit_interval(name: str, x: torch.Tensor, needed_for: str = "") -> None:
    """Raise ``ValueError`` unless every value of ``x`` lies in [0, 1] (NaN fails too).

    Args:
        name: what to call ``x`` in the message.
        x: any tensor.
        needed_for: optional reason, appended to the message (e.g. "for a Bernoulli likelihood").
    """
    if x.numel() == 0 or not value_checks_enabled():
        return
    low, high = torch.aminmax(x)
    if not (low >= 0 and high <= 1):  # also catches NaN
        reason = f" {needed_for}" if needed_for else ""
        raise ValueError(
            f"{name} must lie in [0, 1]{reason}, got values in "
            f"[{low.item():.3g}, {high.item():.3g}]"
        )


def check_finite(name: str, x: torch.Tensor, needed_for: str = "") -> None:
    """Raise ``ValueError`` if ``x`` holds a NaN or an infinity (skipped, like
    :func:`check_unit_interval`, inside :func:`skip_value_checks`).

    Args:
        name: what to call ``x`` in the message.
        x: any floating-point tensor.
        needed_for: optional reason, appended to the message.
    """
    if x.numel() == 0 or not value_checks_enabled() or not x.is_floating_point():
        return
    finite = torch.isfinite(x)
    if not bool(finite.all()):
        reason = f" {needed_for}" if needed_for else ""
        n_bad = int((~finite).sum())
        raise ValueError(
            f"{name} must be finite{reason}, but {n_bad} of its {x.numel()} values are NaN or "
            "infinite"
        )
