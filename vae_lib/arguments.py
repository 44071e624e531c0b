"""Checks on the *arguments* of the library's public functions, shared by all of them.

Each function takes the argument's name and its value, returns the value in the form the
library uses (a Python ``int``, ``float``, tuple or :class:`torch.device`) and raises a
``ValueError`` that names the argument and says what was expected, before any work is done:

>>> positive_int("epochs", 1.5)
Traceback (most recent call last):
...
ValueError: epochs must be an int >= 1, got 1.5

Integers are ``int`` or anything registered as :class:`numbers.Integral` (``numpy.int64``), or a
0-dimensional integer tensor; never ``bool``, a float (``2.0`` included) or a string. Real
numbers are ints or floats (``numpy.float64`` too) or 0-dimensional tensors; never ``bool``
or a string. These are checks on metadata and Python values; checks that must read a tensor's
values (pixels in [0, 1]) live in :mod:`vae_lib.checks`.
"""

from __future__ import annotations

import math
import numbers
from typing import Any

import numpy as np
import torch

#: The seeds ``torch.manual_seed`` accepts: -2**63 <= seed < 2**64.
MIN_SEED, MAX_SEED = -(2**63), 2**64 - 1


def _as_python_number(value: Any) -> Any:
    """A 0-dimensional tensor as a Python number; anything else unchanged."""
    if isinstance(value, torch.Tensor) and value.dim() == 0:
        return value.item()
    return value


def integer(
    name: str, value: Any, *, minimum: int | None = None, maximum: int | None = None
) -> int:
    """``value`` as an ``int`` in ``[minimum, maximum]`` (either bound optional)."""
    number = _as_python_number(value)
    bounds = _describe_bounds(minimum, maximum)
    if isinstance(number, bool) or not isinstance(number, numbers.Integral):
        raise ValueError(f"{name} must be an int{bounds}, got {value!r}")
    number = int(number)
    if (minimum is not None and number < minimum) or (maximum is not None and number > maximum):
        raise ValueError(f"{name} must be an int{bounds}, got {value!r}")
    return number


def positive_int(name: str, value: Any) -> int:
    """``value`` as an ``int`` >= 1."""
    return integer(name, value, minimum=1)


def seed(name: str, value: Any) -> int:
    """``value`` as a seed for ``torch.manual_seed``: an int in [-2**63, 2**64)."""
    return integer(name, value, minimum=MIN_SEED, maximum=MAX_SEED)


def real(
    name: str,
    value: Any,
    *,
    minimum: float | None = None,
    maximum: float | None = None,
    strict_minimum: bool = False,
    strict_maximum: bool = False,
    allow_infinite: bool = False,
) -> float:
    """``value`` as a finite ``float`` (or ±inf if ``allow_infinite``) within the bounds.

    ``strict_minimum`` / ``strict_maximum`` exclude the bound itself. NaN is always refused.
    """
    number = _as_python_number(value)
    low = "" if minimum is None else (f" > {minimum}" if strict_minimum else f" >= {minimum}")
    high = "" if maximum is None else (f" < {maximum}" if strict_maximum else f" <= {maximum}")
    what = ("a number" if allow_infinite else "a finite number") + (
        f"{low} and{high}" if low and high else low or high
    )
    if isinstance(number, bool) or not isinstance(number, numbers.Real):
        raise ValueError(f"{name} must be {what}, got {value!r}")
    number = float(number)
    if math.isnan(number) or (math.isinf(number) and not allow_infinite):
        raise ValueError(f"{name} must be {what}, got {value!r}")
    if minimum is not None and (number < minimum or (strict_minimum and number == minimum)):
        raise ValueError(f"{name} must be {what}, got {value!r}")
    if maximum is not None and (number > maximum or (strict_maximum and number == maximum)):
        raise ValueError(f"{name} must be {what}, got {value!r}")
    return number


def probability(name: str, value: Any, *, allow_one: bool = False) -> float:
    """``value`` as a float in [0, 1) (or [0, 1] with ``allow_one``): a dropout rate, a decay."""
    return real(name, value, minimum=0.0, maximum=1.0, strict_maximum=not allow_one)


def boolean(name: str, value: Any) -> bool:
    """``value`` if it is ``True`` or ``False`` (``numpy.bool_`` too); never 0, 1 or a string."""
    if isinstance(value, bool):
        return value
    if isinstance(value, np.bool_):
        return bool(value)
    raise ValueError(f"{name} must be True or False, got {value!r}")


def positive_ints(name: str, value: Any, *, allow_empty: bool = False) -> tuple[int, ...]:
    """``value`` (a tuple or list of ints >= 1) as a tuple; a string or a single int is refused."""
    what = "a tuple of ints >= 1" + ("" if allow_empty else " (at least one)")
    if isinstance(value, str | bytes) or not isinstance(value, tuple | list | torch.Size):
        raise ValueError(f"{name} must be {what}, got {value!r}")
    if not allow_empty and not value:
        raise ValueError(f"{name} must be {what}, got {value!r}")
    items = []
    for item in value:
        number = _as_python_number(item)
        if isinstance(number, bool) or not isinstance(number, numbers.Integral) or number < 1:
            raise ValueError(f"{name} must be {what}, got {value!r}")
        items.append(int(number))
    return tuple(items)


def one_of(name: str, value: Any, choices: tuple[Any, ...]) -> Any:
    """``value`` if it is one of ``choices`` (the same object, or equal and of the same type)."""
    for choice in choices:
        if value is choice or (type(value) is type(choice) and value == choice):
            return value
    raise ValueError(f"{name} must be one of {choices}, got {value!r}")


def generator(name: str, value: Any, device: torch.device | str | None = None) -> Any:
    """``value`` if it is ``None`` or a ``torch.Generator`` (on ``device``, when one is given)."""
    if value is None:
        return None
    if not isinstance(value, torch.Generator):
        raise ValueError(
            f"{name} must be a torch.Generator or None, got {type(value).__name__} {value!r}"
        )
    if device is not None and torch.device(value.device).type != torch.device(device).type:
        raise ValueError(
            f"{name} is on {value.device} but the random numbers are drawn on {device}; make it "
            f"with torch.Generator({str(torch.device(device))!r})"
        )
    return value


def float_tensor(
    name: str, value: Any, *, shape: str | None = None, dtype: torch.dtype | None = None
) -> torch.Tensor:
    """``value`` if it is a floating-point tensor (of ``dtype``, when given).

    ``shape`` only words the message (for example ``"(B, 1, 28, 28)"``); check the sizes
    themselves where they are known.
    """
    expected = "a floating-point tensor" + (f" of shape {shape}" if shape else "")
    if not isinstance(value, torch.Tensor):
        raise ValueError(f"{name} must be {expected}, got {type(value).__name__}")
    if not value.is_floating_point():
        raise ValueError(f"{name} must be {expected}, got a tensor of dtype {value.dtype}")
    if dtype is not None and value.dtype != dtype:
        raise ValueError(
            f"{name} has dtype {value.dtype} but the model computes in {dtype}; convert it "
            f"with {name}.to({dtype})"
        )
    return value


#: How many leading (batch) dimensions :func:`shaped_tensor` takes before the event shape:
#: exactly one ``(B, ...)``, one or more ``(B, ...)`` or any number, none included ``(..., ...)``.
LEADING_DIMENSIONS = ("one", "some", "any")


def shaped_tensor(
    name: str,
    value: Any,
    event_shape: tuple[int, ...],
    *,
    sizes: str | None = None,
    leading: str = "one",
    dtype: torch.dtype | None = None,
    device: torch.device | None = None,
) -> torch.Tensor:
    """``value`` if it is a floating-point tensor ``(B, *event_shape)`` (of ``dtype`` and on
    ``device``, when given).

    ``leading`` (one of :data:`LEADING_DIMENSIONS`) says how many batch dimensions may come
    before the event shape; ``sizes`` words the event dimensions in the messages (for example
    ``"latent_dim=20"``; default: the sizes themselves). A wrong shape is refused with
    ``"<name> has shape (...); expected (B, <sizes>)"``.
    """
    one_of("leading", leading, LEADING_DIMENSIONS)
    words = sizes if sizes is not None else ", ".join(map(str, event_shape))
    expected = f"({'...' if leading == 'any' else 'B'}, {words})"
    float_tensor(name, value, shape=expected, dtype=dtype)
    n, dims = len(event_shape), value.dim()
    fits = dims == n + 1 if leading == "one" else dims >= n + (leading == "some")
    if not fits or tuple(value.shape[dims - n :]) != tuple(event_shape):
        raise ValueError(f"{name} has shape {tuple(value.shape)}; expected {expected}")
    if device is not None:
        on_device(name, value, device)
    return value


def on_device(name: str, value: torch.Tensor, device: torch.device) -> torch.Tensor:
    """``value`` if it is on ``device`` (a model's); else a ``ValueError`` that says how to
    move it."""
    if value.device != device:
        raise ValueError(
            f"{name} is on {value.device} but the model is on {device}; move it with "
            f"{name}.to({str(device)!r})"
        )
    return value


def data_set(
    name: str,
    value: Any,
    *,
    input_shape: tuple[int, ...] | None = None,
    dtype: torch.dtype | None = None,
) -> torch.Tensor:
    """``value`` if it is a data set: a floating-point ``(N, *input_shape)`` tensor, N >= 1.

    One batch dimension, one example per row (a ``(N, 3, *input_shape)`` tensor is refused
    rather than read as N groups of three). ``input_shape=None`` accepts any ``(N, ...)``;
    ``dtype``, when given, must match (a model's parameters).
    """
    expected = f"(N, {', '.join(map(str, input_shape))})" if input_shape else "(N, ...)"
    float_tensor(name, value, shape=expected, dtype=dtype)
    if value.dim() < 2 or (
        input_shape is not None and tuple(value.shape[1:]) != tuple(input_shape)
    ):
        raise ValueError(
            f"{name} has shape {tuple(value.shape)}; expected {expected}, one example per row"
        )
    if value.shape[0] < 1:
        raise ValueError(f"{name} must hold at least one example, got shape {tuple(value.shape)}")
    return value


def _describe_bounds(minimum: int | None, maximum: int | None) -> str:
    if minimum is not None and maximum is not None:
        return f" in [{minimum}, {maximum}]"
    if minimum is not None:
        return f" >= {minimum}"
    if maximum is not None:
        return f" <= {maximum}"
    return ""
