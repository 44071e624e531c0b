"""Where tensors live, and how runs are made reproducible."""

from __future__ import annotations

import contextlib
import os
import platform
import random
import warnings
from collections.abc import Iterator

import numpy as np
import torch

from . import arguments

DEVICE_ENV_VAR = "VAE_LIB_DEVICE"
THREADS_ENV_VAR = "VAE_LIB_THREADS"
#: The most threads ``torch.set_num_threads`` accepts (a C ``int``).
MAX_THREADS = 2**31 - 1


def _mps_available() -> bool:
    backend = getattr(torch.backends, "mps", None)
    return bool(backend is not None and backend.is_available())


def default_device() -> torch.device:
    """The device the book computes on: CUDA, else Apple MPS, else the CPU.

    Set the environment variable ``VAE_LIB_DEVICE`` (for example ``cpu``, ``cuda:1`` or ``mps``)
    to choose one yourself. Asking for a device that this machine does not have raises
    ``ValueError`` instead of failing later inside a model.
    """
    requested = os.environ.get(DEVICE_ENV_VAR, "").strip()
    if requested:
        return _usable(requested, f"{DEVICE_ENV_VAR}={requested!r}")
    if torch.cuda.is_available():
        return torch.device("cuda")
    if _mps_available():
        return torch.device("mps")
    return torch.device("cpu")


def resolve_device(device: torch.device | str | None = None) -> torch.device:
    """A ``device=`` argument as a usable :class:`torch.device`; ``None`` gives
    :func:`default_device`.

    Raises:
        ValueError: naming the argument, if it is not a device name or this machine has no
            such device (``"cuda"`` without CUDA, ``"cuda:3"`` with two GPUs, ``"mps"`` off a
            Mac), before any work is done.
    """
    if device is None:
        return default_device()
    if not isinstance(device, str | torch.device):
        raise ValueError(
            f"device must be a torch.device, a name such as 'cpu' or 'cuda:0', or None; "
            f"got {type(device).__name__} {device!r}"
        )
    return _usable(device, f"device={str(device)!r}")


def _usable(requested: torch.device | str, what: str) -> torch.device:
    """``requested`` as a device that can hold tensors here, else a ValueError about ``what``."""
    try:
        device = torch.device(requested)
    except (RuntimeError, ValueError) as err:
        raise ValueError(
            f"{what} is not a device name; expected something like 'cpu', 'cuda', 'cuda:0' or 'mps'"
        ) from err
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"{what}, but CUDA is not available here")
    if device.type == "cuda" and device.index is not None:
        if device.index >= torch.cuda.device_count():
            raise ValueError(f"{what}, but only {torch.cuda.device_count()} CUDA device(s) exist")
    if device.type == "mps" and not _mps_available():
        raise ValueError(f"{what}, but Apple MPS is not available")
    if device.type == "meta":
        raise ValueError(f"{what}: a meta device holds no data, so nothing can be computed on it")
    try:  # any other backend (xpu, hip, ...) must be able to hold a tensor
        torch.empty(0, device=device)
    except Exception as err:  # RuntimeError, AssertionError, or a missing torch.<backend>
        raise ValueError(
            f"{what}, but that device is not usable here ({type(err).__name__}: {err})"
        ) from err
    return device


def set_seed(seed: int) -> None:
    """Seed Python's ``random``, NumPy and PyTorch (all CUDA devices included).

    After ``set_seed(s)`` the same code on the same device and library versions draws the same
    numbers. (Bit-for-bit equality across CPU and GPU is not promised by PyTorch.)
    """
    seed = arguments.seed("seed", seed)  # checked before anything is seeded
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)  # seeds every CUDA device too


@contextlib.contextmanager
def seeded(seed: int) -> Iterator[None]:
    """``with seeded(s):`` runs its block as after :func:`set_seed(s) <set_seed>`, then gives
    the caller back the random states of Python, NumPy and PyTorch (CPU and CUDA) it had: code
    after the block draws the same numbers whether or not the block ran."""
    python_state, numpy_state = random.getstate(), np.random.get_state()
    devices = list(range(torch.cuda.device_count())) if torch.cuda.is_available() else []
    with torch.random.fork_rng(devices=devices):
        try:
            set_seed(seed)
            yield
        finally:
            random.setstate(python_state)
            np.random.set_state(numpy_state)


def configure_threads(n: int | None = None) -> int:
    """Set PyTorch's intra-op CPU threads to ``n``, else to ``$VAE_LIB_THREADS`` if set.

    With neither, PyTorch's default (one thread per core) is kept: on an idle 2-core machine it
    trains the reference VAE about 1.4x faster than one thread. But when another process keeps
    a core busy, two threads wait on each other and an epoch becomes about 2.5x *slower* than
    with one thread (measured in ``benchmarks/train_speed.py``). If you run the book beside other
    work, set ``VAE_LIB_THREADS=1``. ``vae_lib`` applies the variable when it is imported.

    A bad ``VAE_LIB_THREADS`` (not a whole number from 1 to 2**31 - 1, e.g. ``abc``) never
    breaks ``import vae_lib``: the import warns (a ``RuntimeWarning`` naming the variable) and
    keeps PyTorch's thread count. Calling ``configure_threads()`` with the variable still bad
    raises the ``ValueError`` below.

    Returns:
        the number of threads now in use.

    Raises:
        ValueError: if ``n`` is not an int from 1 to 2**31 - 1, or, with ``n`` left out, if
            ``$VAE_LIB_THREADS`` is set but is not (the message names the variable and its value).
    """
    if n is None:
        env = os.environ.get(THREADS_ENV_VAR, "").strip()
        if not env:
            return torch.get_num_threads()
        problem = (
            f"{THREADS_ENV_VAR}={env!r} is not a thread count: set it to a whole number "
            f"from 1 to {MAX_THREADS} (1 beside other work), or unset it"
        )
        try:
            n = int(env)
        except ValueError as err:
            raise ValueError(problem) from err
        if not 1 <= n <= MAX_THREADS:
            raise ValueError(problem)
    n = arguments.integer("the number of threads", n, minimum=1, maximum=MAX_THREADS)
    torch.set_num_threads(n)
    return torch.get_num_threads()


def _configure_threads_at_import() -> None:
    """What ``import vae_lib`` does with ``$VAE_LIB_THREADS``: :func:`configure_threads`, except
    that a bad value is reported as a ``RuntimeWarning`` (naming the variable) and ignored, so
    the import itself never fails on it."""
    try:
        configure_threads()
    except ValueError as err:
        warnings.warn(
            f"{err}; ignored, PyTorch keeps {torch.get_num_threads()} thread(s) "
            "(vae_lib.device.configure_threads() raises this error while the variable is bad)",
            RuntimeWarning,
            stacklevel=2,  # the line of vae_lib/__init__.py that calls this
        )


def cpu_name() -> str:
    """This machine's processor, as the OS names it (``/proc/cpuinfo`` on Linux), for records."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()
