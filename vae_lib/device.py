"""Where tensors live, and how runs are made reproducible."""

from __future__ import annotations

import contextlib
import os
import platform
import random
from collections.abc import Iterator

import numpy as np
import torch

DEVICE_ENV_VAR = "VAE_LIB_DEVICE"
THREADS_ENV_VAR = "VAE_LIB_THREADS"


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
        try:
            device = torch.device(requested)
        except RuntimeError as err:
            raise ValueError(
                f"{DEVICE_ENV_VAR}={requested!r} is not a device name; "
                "expected something like 'cpu', 'cuda', 'cuda:0' or 'mps'"
            ) from err
        if device.type == "cuda" and not torch.cuda.is_available():
            raise ValueError(f"{DEVICE_ENV_VAR}={requested!r}, but CUDA is not available here")
        if device.type == "cuda" and device.index is not None:
            if device.index >= torch.cuda.device_count():
                raise ValueError(
                    f"{DEVICE_ENV_VAR}={requested!r}, but only "
                    f"{torch.cuda.device_count()} CUDA device(s) exist"
                )
        if device.type == "mps" and not _mps_available():
            raise ValueError(f"{DEVICE_ENV_VAR}={requested!r}, but Apple MPS is not available")
        try:  # any other backend (xpu, hip, ...) must be able to hold a tensor
            torch.empty(0, device=device)
        except (RuntimeError, AssertionError) as err:
            raise ValueError(
                f"{DEVICE_ENV_VAR}={requested!r}, but that device is not usable here"
            ) from err
        return device
    if torch.cuda.is_available():
        return torch.device("cuda")
    if _mps_available():
        return torch.device("mps")
    return torch.device("cpu")


def set_seed(seed: int) -> None:
    """Seed Python's ``random``, NumPy and PyTorch (all CUDA devices included).

    After ``set_seed(s)`` the same code on the same device and library versions draws the same
    numbers. (Bit-for-bit equality across CPU and GPU is not promised by PyTorch.)
    """
    if not isinstance(seed, int) or isinstance(seed, bool):
        raise ValueError(f"seed must be an int, got {seed!r}")
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

    Returns:
        the number of threads now in use.
    """
    if n is None:
        env = os.environ.get(THREADS_ENV_VAR, "").strip()
        if not env:
            return torch.get_num_threads()
        try:
            n = int(env)
        except ValueError as err:
            raise ValueError(f"{THREADS_ENV_VAR}={env!r} is not a whole number") from err
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"the number of threads must be an int >= 1, got {n!r}")
    torch.set_num_threads(n)
    return torch.get_num_threads()


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
