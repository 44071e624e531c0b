"""Tests of vae_lib.plotting: what each figure function actually draws (Agg backend)."""

from __future__ import annotations

import math

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from matplotlib.collections import PathCollection  # noqa: E402
from torchvision.utils import make_grid  # noqa: E402

import vae_lib  # noqa: E402


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


def grid_size(n: int, h: int, w: int, nrow: int, padding: int) -> tuple[int, int]:
    """Height and width of a make_grid-style grid, from its definition."""
    if n == 1:  # make_grid returns a single image as it is, without padding
        return h, w
    cols = min(nrow, n)
    rows = math.ceil(n / cols)
    return rows * (h + padding) + padding, cols * (w + padding) + padding


# -- show_images ----------------------------------------------------------------------------------
@pytest.mark.parametrize("n", [1, 7, 16])
@pytest.mark.parametrize("channel_dim", [True, False], ids=["NCHW", "NHW"])
def test_show_images_draws_the_grid(n, channel_dim):
    x = torch.rand(n, 1, 28, 28, generator=torch.Generator().manual_seed(n))
    ax = vae_lib.show_images(x if channel_dim else x[:, 0])
    images = ax.get_images()
    assert len(images) == 1
    drawn = np.asarray(images[0].get_array())
    nrow = math.ceil(math.sqrt(n))
    height, width = grid_size(n, 28, 28, nrow, padding=2)
    assert drawn.shape[:2] == (height, width)
    assert drawn.shape[:2] == tuple(make_grid(x, nrow=nrow, padding=2).shape[1:])
    # the images sit in the grid in row-major order, after the padding
    pad = 2 if n > 1 else 0
    for i in (0, n - 1):
        r, c = divmod(i, nrow)
        top, left = pad + r * 30, pad + c * 30
        np.testing.assert_allclose(drawn[top : top + 28, left : left + 28, 0], x[i, 0].numpy())
    if n > 1:
        assert np.all(drawn[:2, :, 0] == 1.0)  # white padding
    assert images[0].get_clim() == (0.0, 1.0)
    assert ax.get_xlabel() and str(n) in ax.get_xlabel()
    assert len(ax.get_xticks()) == 0 and len(ax.get_yticks()) == 0
    ax.figure.canvas.draw()  # and it renders


def test_show_images_nrow_padding_title_and_given_axes():
    x = torch.rand(7, 1, 5, 6)
    fig, given = plt.subplots()
    ax = vae_lib.show_images(x, nrow=5, padding=1, title="samples", ax=given)
    assert ax is given and len(fig.axes) == 1
    drawn = np.asarray(ax.get_images()[0].get_array())
    assert drawn.shape[:2] == grid_size(7, 5, 6, nrow=5, padding=1) == (2 * 6 + 1, 5 * 7 + 1)
    assert ax.get_title() == "samples"


def test_show_images_clamps_to_0_1():
    x = torch.linspace(-2, 3, 16).reshape(1, 1, 4, 4)
    drawn = np.asarray(vae_lib.show_images(x).get_images()[0].get_array())
    assert drawn.min() >= 0.0 and drawn.max() <= 1.0


@pytest.mark.parametrize(
    "bad", [torch.rand(28, 28), torch.rand(2, 1, 1, 28, 28), np.zeros((2, 28, 28)), [[0.5]]]
)
def test_show_images_rejects_other_shapes(bad):
    with pytest.raises(ValueError):
        vae_lib.show_images(bad)


# -- plot_history ---------------------------------------------------------------------------------
@pytest.fixture
def history() -> vae_lib.History:
    return vae_lib.History(
        epoch=[1, 2, 3],
        train_elbo=[-200.0, -150.0, -120.0],
        train_reconstruction=[-180.0, -125.0, -95.0],
        train_kl=[20.0, 25.0, 25.0],
        val_elbo=[-190.0, -148.0, -125.0],
        val_reconstruction=[-172.0, -126.0, -101.0],
        val_kl=[18.0, 22.0, 24.0],
        seconds=[1.0, 1.0, 1.0],
    )


def test_plot_history_draws_train_and_validation(history):
    ax = vae_lib.plot_history(history)
    lines = ax.get_lines()
    assert [line.get_label() for line in lines] == ["train elbo", "validation elbo"]
    for line, values in zip(lines, (history.train_elbo, history.val_elbo), strict=True):
        np.testing.assert_array_equal(line.get_xdata(), history.epoch)
        np.testing.assert_array_equal(line.get_ydata(), values)
    assert lines[0].get_linestyle() == "-" and lines[1].get_linestyle() == "--"
    assert lines[0].get_color() == lines[1].get_color()
    assert ax.get_xlabel() == "epoch"
    assert "nats" in ax.get_ylabel()
    legend = ax.get_legend()
    assert legend is not None
    assert [t.get_text() for t in legend.get_texts()] == ["train elbo", "validation elbo"]


def test_plot_history_several_parts(history):
    ax = vae_lib.plot_history(history, parts=("reconstruction", "kl"))
    labels = [line.get_label() for line in ax.get_lines()]
    assert labels == [
        "train reconstruction",
        "validation reconstruction",
        "train kl",
        "validation kl",
    ]
    np.testing.assert_array_equal(ax.get_lines()[3].get_ydata(), history.val_kl)
    assert ax.get_lines()[0].get_color() != ax.get_lines()[2].get_color()


def test_plot_history_without_validation(history):
    history.val_elbo, history.val_reconstruction, history.val_kl = [], [], []
    fig, given = plt.subplots()
    ax = vae_lib.plot_history(history, ax=given)
    assert ax is given
    assert [line.get_label() for line in ax.get_lines()] == ["train elbo"]


def test_plot_history_from_fit():
    model = vae_lib.VAE(
        vae_lib.VAEConfig(input_shape=(3,), hidden_dims=(4,), latent_dim=1, likelihood="gaussian")
    )
    x = torch.randn(32, 3, generator=torch.Generator().manual_seed(0))
    h = vae_lib.fit(model, x, epochs=2, batch_size=16, val=x[:8], progress=False)
    ax = vae_lib.plot_history(h, parts=("elbo", "reconstruction", "kl"))
    assert len(ax.get_lines()) == 6
    np.testing.assert_array_equal(ax.get_lines()[1].get_ydata(), h.val_elbo)


def test_plot_history_from_fit_without_validation():
    model = vae_lib.VAE(
        vae_lib.VAEConfig(input_shape=(3,), hidden_dims=(4,), latent_dim=1, likelihood="gaussian")
    )
    x = torch.randn(32, 3, generator=torch.Generator().manual_seed(0))
    h = vae_lib.fit(model, x, epochs=2, batch_size=16, progress=False)
    ax = vae_lib.plot_history(h, parts=("elbo", "kl"))
    assert [line.get_label() for line in ax.get_lines()] == ["train elbo", "train kl"]


def test_plot_history_of_an_autoencoder_draws_its_reconstruction():
    # an autoencoder's history has the reconstruction only (no ELBO, no KL)
    ae = vae_lib.Autoencoder(
        vae_lib.AutoencoderConfig(
            input_shape=(3,), hidden_dims=(4,), latent_dim=1, likelihood="gaussian"
        )
    )
    x = torch.randn(32, 3, generator=torch.Generator().manual_seed(0))
    h = vae_lib.fit(ae, x, epochs=2, batch_size=16, val=x[:8], progress=False)
    ax = vae_lib.plot_history(h, parts=("reconstruction",))
    labels = [line.get_label() for line in ax.get_lines()]
    assert labels == ["train reconstruction", "validation reconstruction"]
    with pytest.raises(AttributeError, match="no curve 'train_elbo'"):
        vae_lib.plot_history(h)


@pytest.mark.parametrize("parts", [(), ("loss",), ("elbo", "nll"), ("ELBO",)])
def test_plot_history_bad_parts(history, parts):
    with pytest.raises(ValueError, match="parts"):
        vae_lib.plot_history(history, parts=parts)


# -- plot_latent_scatter --------------------------------------------------------------------------
def test_plot_latent_scatter_one_collection_per_class():
    g = torch.Generator().manual_seed(0)
    z = torch.randn(60, 2, generator=g)
    labels = torch.tensor([7, 3, 9] * 20)
    ax = vae_lib.plot_latent_scatter(z, labels, title="codes")
    collections = [c for c in ax.collections if isinstance(c, PathCollection)]
    assert len(collections) == 3
    for collection, digit in zip(collections, (3, 7, 9), strict=True):
        assert collection.get_label() == str(digit)
        np.testing.assert_allclose(collection.get_offsets(), z[labels == digit].numpy())
    legend = ax.get_legend()
    assert legend is not None
    assert [t.get_text() for t in legend.get_texts()] == ["3", "7", "9"]
    assert ax.get_title() == "codes"
    assert "z" in ax.get_xlabel() and "z" in ax.get_ylabel()
    # different classes get different colours
    colours = {tuple(np.round(c.get_facecolor()[0][:3], 6)) for c in collections}
    assert len(colours) == 3


def test_plot_latent_scatter_without_labels():
    z = torch.randn(25, 2)
    ax = vae_lib.plot_latent_scatter(z)
    assert len(ax.collections) == 1
    np.testing.assert_allclose(ax.collections[0].get_offsets(), z.numpy())
    assert ax.get_legend() is None


def test_plot_latent_scatter_accepts_grad_tensors():
    z = torch.randn(10, 2, requires_grad=True)
    ax = vae_lib.plot_latent_scatter(z * 2, torch.zeros(10, dtype=torch.long))
    assert len(ax.collections) == 1


@pytest.mark.parametrize(
    "z, labels",
    [
        (torch.randn(30, 3), None),
        (torch.randn(30), None),
        (torch.randn(30, 2, 1), None),
        (np.zeros((30, 2)), None),
        (torch.randn(30, 2), torch.zeros(29, dtype=torch.long)),
        (torch.randn(30, 2), torch.zeros(30, 1, dtype=torch.long)),
    ],
)
def test_plot_latent_scatter_wrong_shapes(z, labels):
    with pytest.raises(ValueError):
        vae_lib.plot_latent_scatter(z, labels)


# -- latent_grid ----------------------------------------------------------------------------------
@pytest.mark.parametrize("n, extent", [(5, 2.0), (15, 3.0), (2, 0.5)])
def test_latent_grid(n, extent):
    z = vae_lib.latent_grid(n, extent)
    assert z.shape == (n * n, 2)
    ticks = np.linspace(-extent, extent, n)
    expected = np.array([(z1, z2) for z2 in ticks[::-1] for z1 in ticks])
    np.testing.assert_allclose(z.numpy(), expected, rtol=0, atol=1e-6)
    # corners: top-left, top-right, bottom-left, bottom-right
    np.testing.assert_allclose(z[0].numpy(), [-extent, extent], atol=1e-6)
    np.testing.assert_allclose(z[n - 1].numpy(), [extent, extent], atol=1e-6)
    np.testing.assert_allclose(z[n * (n - 1)].numpy(), [-extent, -extent], atol=1e-6)
    np.testing.assert_allclose(z[-1].numpy(), [extent, -extent], atol=1e-6)
    # the first row has the highest z2, and z1 increases along it
    assert torch.all(z[:n, 1] == z[:, 1].max())
    assert torch.all(z[1:n, 0] > z[: n - 1, 0])


@pytest.mark.parametrize("n, extent", [(0, 3.0), (-1, 3.0), (5, 0.0), (5, -1.0), (5, float("nan"))])
def test_latent_grid_bad_arguments(n, extent):
    with pytest.raises(ValueError):
        vae_lib.latent_grid(n, extent)


# -- plot_latent_manifold -------------------------------------------------------------------------
def tiny_image_vae(likelihood: str = "bernoulli", latent_dim: int = 2) -> vae_lib.VAE:
    torch.manual_seed(0)
    return vae_lib.VAE(
        vae_lib.VAEConfig(
            input_shape=(1, 8, 8), hidden_dims=(16,), latent_dim=latent_dim, likelihood=likelihood
        )
    )


@pytest.mark.parametrize("likelihood", ["bernoulli", "gaussian"])
@pytest.mark.parametrize("n, extent", [(4, 2.0), (3, 1.5)])
def test_plot_latent_manifold_draws_the_decoded_grid(likelihood, n, extent):
    model = tiny_image_vae(likelihood)
    ax = vae_lib.plot_latent_manifold(model, n=n, extent=extent, title="manifold")
    (image,) = ax.get_images()
    drawn = np.asarray(image.get_array())
    assert drawn.shape[:2] == (n * 8, n * 8)

    left, right, bottom, top = image.get_extent()
    assert left == pytest.approx(-right) and bottom == pytest.approx(-top)  # centred on 0
    ticks = np.linspace(-extent, extent, n)
    cell = (right - left) / n
    assert cell == pytest.approx(ticks[1] - ticks[0])  # one cell per grid step
    assert (top - bottom) / n == pytest.approx(cell)
    for r in range(n):
        for c in range(n):
            # block (r, c) shows z = (ticks[c], ticks[n - 1 - r]): rows run from high z2 down
            z = torch.tensor([[ticks[c], ticks[n - 1 - r]]], dtype=torch.float32)
            with torch.no_grad():
                out = model.decode(z)[0, 0]
            mean = torch.sigmoid(out) if likelihood == "bernoulli" else out.clamp(0, 1)
            block = drawn[r * 8 : (r + 1) * 8, c * 8 : (c + 1) * 8, 0]
            np.testing.assert_allclose(block, mean.numpy(), atol=1e-5)
            # and the block is drawn centred on that z, in data coordinates
            x_centre = left + (c + 0.5) * cell
            y_centre = (
                top - (r + 0.5) * cell if image.origin == "upper" else bottom + (r + 0.5) * cell
            )
            assert x_centre == pytest.approx(z[0, 0].item(), abs=1e-6)
            assert y_centre == pytest.approx(z[0, 1].item(), abs=1e-6)
    assert ax.get_title() == "manifold"
    assert "z" in ax.get_xlabel() and "z" in ax.get_ylabel()


def test_plot_latent_manifold_single_cell_is_centred_on_its_code():
    # n = 1: the one decoded code must be where the one image is drawn
    model = tiny_image_vae()
    ax = vae_lib.plot_latent_manifold(model, n=1, extent=3.0)
    (image,) = ax.get_images()
    left, right, bottom, top = image.get_extent()
    (code,) = vae_lib.latent_grid(1, 3.0)
    assert (left + right) / 2 == pytest.approx(code[0].item())
    assert (bottom + top) / 2 == pytest.approx(code[1].item())


def test_plot_latent_manifold_uses_given_axes():
    fig, given = plt.subplots()
    ax = vae_lib.plot_latent_manifold(tiny_image_vae(), n=2, ax=given)
    assert ax is given and len(fig.axes) == 1


@pytest.mark.parametrize("latent_dim", [1, 3])
def test_plot_latent_manifold_needs_a_2d_latent_space(latent_dim):
    with pytest.raises(ValueError, match="2-D"):
        vae_lib.plot_latent_manifold(tiny_image_vae(latent_dim=latent_dim), n=3)


def test_plot_latent_manifold_needs_image_outputs():
    model = vae_lib.VAE(vae_lib.VAEConfig(input_shape=(6,), hidden_dims=(4,), latent_dim=2))
    with pytest.raises(ValueError, match="image"):
        vae_lib.plot_latent_manifold(model, n=3)


# -- set_theme ------------------------------------------------------------------------------------
def test_set_theme():
    with matplotlib.rc_context():
        vae_lib.set_theme()
        assert plt.rcParams["image.cmap"] == "gray"
        assert plt.rcParams["axes.titleweight"] == "bold"
        assert plt.rcParams["axes.grid"]  # seaborn whitegrid
