"""Latent-space helpers: lerp/slerp paths, decoded interpolations, attribute vectors."""

import math

import pytest
import torch

import vae_lib as V
from vae_lib.autoencoder import Autoencoder, AutoencoderConfig
from vae_lib.latent import (
    apply_attribute,
    attribute_vector,
    encode_mean,
    interpolate,
    lerp,
    linear_probe_accuracy,
    slerp,
)

SHAPE = (1, 6, 6)


@pytest.fixture
def vae():
    torch.manual_seed(0)
    return V.VAE(V.VAEConfig(input_shape=SHAPE, hidden_dims=(16,), latent_dim=3))


@pytest.fixture
def ae():
    torch.manual_seed(0)
    return Autoencoder(AutoencoderConfig(input_shape=SHAPE, hidden_dims=(16,), latent_dim=3))


@pytest.fixture
def x():
    return torch.rand(7, *SHAPE, generator=torch.Generator().manual_seed(1))


def angle(a, b):
    cos = (a * b).sum(-1) / (a.norm(dim=-1) * b.norm(dim=-1))
    return torch.arccos(cos.clamp(-1, 1))


# -- lerp and slerp -------------------------------------------------------------------------------
def test_lerp_is_an_equally_spaced_line():
    g = torch.Generator().manual_seed(0)
    z0, z1 = torch.randn(4, generator=g), torch.randn(4, generator=g)
    path = lerp(z0, z1, 5)
    assert path.shape == (5, 4)
    assert torch.equal(path[0], z0) and torch.equal(path[-1], z1)
    torch.testing.assert_close(path[2], (z0 + z1) / 2)
    steps = path.diff(dim=0)
    torch.testing.assert_close(steps, ((z1 - z0) / 4).expand(4, 4))


def test_slerp_of_orthogonal_unit_vectors_stays_on_the_circle():
    z0, z1 = torch.tensor([1.0, 0.0, 0.0]), torch.tensor([0.0, 1.0, 0.0])
    path = slerp(z0, z1, 7)
    assert path.shape == (7, 3)
    assert torch.equal(path[0], z0) and torch.equal(path[-1], z1)
    torch.testing.assert_close(path.norm(dim=1), torch.ones(7))
    steps = angle(path[:-1], path[1:])
    torch.testing.assert_close(steps, torch.full((6,), math.pi / 2 / 6))
    torch.testing.assert_close(path[:, 2], torch.zeros(7))  # stays in the plane of z0, z1


def test_slerp_rotates_at_constant_speed_in_the_plane():
    r, a, b = 2.5, 0.3, 2.2  # two codes of norm r at angles a and b
    z0 = torch.tensor([r * math.cos(a), r * math.sin(a)], dtype=torch.float64)
    z1 = torch.tensor([r * math.cos(b), r * math.sin(b)], dtype=torch.float64)
    t = torch.linspace(0, 1, 9, dtype=torch.float64)
    expected = r * torch.stack([torch.cos(a + t * (b - a)), torch.sin(a + t * (b - a))], dim=1)
    torch.testing.assert_close(slerp(z0, z1, 9), expected)


def test_slerp_keeps_gaussian_codes_on_the_shell_where_lerp_cuts_inside():
    d = 512
    g = torch.Generator().manual_seed(0)
    z0, z1 = torch.randn(d, generator=g), torch.randn(d, generator=g)
    z1 = z1 * z0.norm() / z1.norm()  # equal norms: slerp keeps the norm exactly
    mid_lerp, mid_slerp = lerp(z0, z1, 3)[1], slerp(z0, z1, 3)[1]
    torch.testing.assert_close(slerp(z0, z1, 11).norm(dim=1), z0.norm().expand(11))
    # independent draws are nearly orthogonal, so the straight midpoint has norm ~ sqrt(d / 2)
    assert mid_slerp.norm() == pytest.approx(math.sqrt(d), rel=0.1)
    assert mid_lerp.norm() == pytest.approx(math.sqrt(d / 2), rel=0.1)


@pytest.mark.parametrize("scale", [3.0, -2.0, 1.0])
def test_slerp_falls_back_to_lerp_for_parallel_vectors(scale):
    z0 = torch.tensor([0.5, -1.0, 2.0])
    z1 = scale * z0
    path = slerp(z0, z1, 5)
    assert torch.isfinite(path).all()
    torch.testing.assert_close(path, lerp(z0, z1, 5))


def test_slerp_falls_back_to_lerp_for_a_zero_vector():
    z0, z1 = torch.zeros(3), torch.tensor([1.0, 2.0, 3.0])
    torch.testing.assert_close(slerp(z0, z1, 4), lerp(z0, z1, 4))
    torch.testing.assert_close(slerp(z1, z1, 4), z1.expand(4, 3))


def test_slerp_is_accurate_for_nearly_opposite_vectors():
    # unit vectors 0.01 rad short of opposite, in float32: the weights are about 100 and
    # magnify any error in the angle; arccos of the dot product would give norms off by ~1e-4
    a = math.pi - 1e-2
    z0, z1 = torch.tensor([1.0, 0.0]), torch.tensor([math.cos(a), math.sin(a)])
    path = slerp(z0, z1, 9)
    torch.testing.assert_close(path.norm(dim=1), torch.ones(9), rtol=0, atol=3e-5)


@pytest.mark.parametrize("fn", [lerp, slerp])
def test_paths_reject_bad_arguments(fn):
    with pytest.raises(ValueError, match="n must be"):
        fn(torch.zeros(3), torch.ones(3), 1)
    with pytest.raises(ValueError, match="same shape"):
        fn(torch.zeros(3), torch.ones(4), 5)
    with pytest.raises(ValueError, match=r"\(D,\)"):
        fn(torch.zeros(2, 3), torch.ones(2, 3), 5)
    with pytest.raises(ValueError, match="floating-point"):
        fn(torch.zeros(3, dtype=torch.long), torch.ones(3), 5)


# -- encode_mean ----------------------------------------------------------------------------------
def test_encode_mean_is_the_posterior_mean_of_a_vae_and_the_code_of_an_ae(vae, ae, x):
    mu, _ = vae.encode(x)
    torch.testing.assert_close(encode_mean(vae, x), mu)
    torch.testing.assert_close(encode_mean(vae, x, batch_size=3), mu)  # chunks of 3, 3, 1
    torch.testing.assert_close(encode_mean(ae, x, batch_size=2), ae.encoder(x.flatten(1)))
    assert not encode_mean(vae, x).requires_grad


def test_encode_mean_restores_the_training_mode(vae, x):
    vae.train()
    seen = []
    vae.encoder.register_forward_hook(lambda module, i, o: seen.append(module.training))
    encode_mean(vae, x)
    assert seen == [False] and vae.training
    vae.eval()
    encode_mean(vae, x)
    assert not vae.training


def test_encode_mean_works_on_a_linear_gaussian_in_float64():
    g = torch.Generator().manual_seed(0)
    model = V.LinearGaussian(torch.randn(5, 2, generator=g, dtype=torch.float64))
    x = torch.randn(4, 5, generator=g)  # float32 data, moved to the model's dtype
    codes = encode_mean(model, x)
    assert codes.dtype == torch.float64
    torch.testing.assert_close(codes, model.posterior(x.double())[0])


def test_encode_mean_rejects_bad_arguments(vae, x):
    with pytest.raises(ValueError, match="batch_size"):
        encode_mean(vae, x, batch_size=0)
    with pytest.raises(ValueError, match="floating-point"):
        encode_mean(vae, x.long())
    with pytest.raises(ValueError, match="at least one example"):
        encode_mean(vae, x[:0])
    with pytest.raises(ValueError, match="expected"):
        encode_mean(vae, x[0])  # one image of shape (1, 6, 6), not a batch
    # a model that does not check its input: the codes must still come out as (N, D)
    linear = V.LinearGaussian(torch.randn(5, 2))
    with pytest.raises(ValueError, match=r"\(N, D\)"):
        encode_mean(linear, torch.randn(3, 1, 5))


# -- interpolate ----------------------------------------------------------------------------------
@pytest.mark.parametrize("method, path_fn", [("linear", lerp), ("spherical", slerp)])
def test_interpolate_decodes_the_path_between_posterior_means(vae, x, method, path_fn):
    images = interpolate(vae, x[0], x[1], 6, method=method)
    assert images.shape == (6, *SHAPE)
    # endpoints are the reconstructions (decoded means), not the inputs
    torch.testing.assert_close(images[0], vae.reconstruct(x[:1])[0])
    torch.testing.assert_close(images[-1], vae.reconstruct(x[1:2])[0])
    with torch.no_grad():
        mu, _ = vae.encode(x[:2])
        expected = torch.sigmoid(vae.decoder(path_fn(mu[0], mu[1], 6))).view(6, *SHAPE)
    torch.testing.assert_close(images, expected)
    assert ((images > 0) & (images < 1)).all()


def test_interpolate_linear_and_spherical_differ_between_the_endpoints(vae, x):
    a = interpolate(vae, x[0], x[1], 5, method="lerp")
    b = interpolate(vae, x[0], x[1], 5, method="slerp")
    torch.testing.assert_close(a[[0, -1]], b[[0, -1]])
    assert not torch.allclose(a[2], b[2])


def test_interpolate_works_on_an_autoencoder_with_batched_endpoints(ae, x):
    images = interpolate(ae, x[2:3], x[3:4], 4)  # (1, *input_shape) endpoints are fine
    assert images.shape == (4, *SHAPE)
    with torch.no_grad():
        z = ae.encoder(x[2:4].flatten(1))
        expected = torch.sigmoid(ae.decoder(lerp(z[0], z[1], 4))).view(4, *SHAPE)
    torch.testing.assert_close(images, expected)


def test_interpolate_rejects_bad_arguments(vae, x):
    with pytest.raises(ValueError, match="method"):
        interpolate(vae, x[0], x[1], 5, method="cubic")
    with pytest.raises(ValueError, match="one observation"):
        interpolate(vae, x[:2], x[2:4], 5)
    with pytest.raises(ValueError, match="same shape"):
        interpolate(vae, x[0], x[1:3], 5)
    with pytest.raises(ValueError, match="n must be"):
        interpolate(vae, x[0], x[1], 1)


# -- attribute vectors ----------------------------------------------------------------------------
def test_attribute_vector_is_the_difference_of_group_means():
    codes = torch.tensor([[1.0, 0.0], [3.0, 2.0], [0.0, 5.0], [2.0, 7.0], [-2.0, 0.0]])
    mask = torch.tensor([True, True, False, False, False])
    # with: mean (2, 1); without: mean (0, 4)
    torch.testing.assert_close(attribute_vector(codes, mask), torch.tensor([2.0, -3.0]))
    torch.testing.assert_close(
        attribute_vector(codes, torch.tensor([1, 1, 0, 0, 0])), torch.tensor([2.0, -3.0])
    )
    torch.testing.assert_close(attribute_vector(codes, ~mask), torch.tensor([-2.0, 3.0]))


@pytest.mark.parametrize(
    "mask, match",
    [
        (torch.ones(4, dtype=torch.bool), "both groups"),
        (torch.zeros(4, dtype=torch.bool), "both groups"),
        (torch.ones(3, dtype=torch.bool), "shape"),
        (torch.tensor([0, 1, 2, 1]), "0/1"),
    ],
)
def test_attribute_vector_rejects_bad_masks(mask, match):
    with pytest.raises(ValueError, match=match):
        attribute_vector(torch.randn(4, 2), mask)


def test_apply_attribute_decodes_shifted_codes(vae, x):
    v = torch.tensor([1.0, -0.5, 2.0])
    scales = [-1.0, 0.0, 0.5, 2.0]
    images = apply_attribute(vae, x[:3], v, scales)
    assert images.shape == (4, 3, *SHAPE)
    torch.testing.assert_close(images[1], vae.reconstruct(x[:3]))  # scale 0: reconstructions
    with torch.no_grad():
        mu, _ = vae.encode(x[:3])
        for i, s in enumerate(scales):
            expected = torch.sigmoid(vae.decoder(mu + s * v)).view(3, *SHAPE)
            torch.testing.assert_close(images[i], expected)


def test_apply_attribute_rejects_bad_arguments(vae, x):
    with pytest.raises(ValueError, match=r"shape \(3,\)"):
        apply_attribute(vae, x, torch.ones(2), [1.0])
    with pytest.raises(ValueError, match="scales"):
        apply_attribute(vae, x, torch.ones(3), [])
    with pytest.raises(ValueError, match="scales"):
        apply_attribute(vae, x, torch.ones(3), [float("nan")])


# -- linear_probe_accuracy ------------------------------------------------------------------------
def _gaussian_classes(n: int, shift: float, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Three classes in 2-D: class c has mean shift * (cos, sin)(2 pi c / 3), unit variance."""
    g = torch.Generator().manual_seed(seed)
    labels = torch.randint(0, 3, (n,), generator=g)
    angles = 2 * torch.pi * labels.double() / 3
    means = shift * torch.stack([angles.cos(), angles.sin()], 1)
    return means + torch.randn(n, 2, generator=g, dtype=torch.float64), labels


def test_linear_probe_matches_the_bayes_classifier_on_gaussian_classes():
    """Equal-variance Gaussian classes: the Bayes rule is linear (nearest mean), so a logistic
    regression fitted on enough data reaches the Bayes accuracy, measured independently."""
    train, train_y = _gaussian_classes(4000, 1.5, 0)
    test, test_y = _gaussian_classes(4000, 1.5, 1)
    angles = 2 * torch.pi * torch.arange(3).double() / 3
    means = 1.5 * torch.stack([angles.cos(), angles.sin()], 1)
    bayes = (torch.cdist(test, means).argmin(1) == test_y).double().mean().item()
    probe = linear_probe_accuracy(train, train_y, test, test_y)
    assert 0.6 < bayes < 0.9  # a case where the answer is neither trivial nor chance
    assert abs(probe - bayes) < 0.01


def test_linear_probe_is_at_chance_on_codes_without_the_label_and_sure_on_codes_with_it():
    g = torch.Generator().manual_seed(0)
    labels = torch.randint(0, 10, (3000,), generator=g)
    noise = torch.randn(3000, 4, generator=g)
    chance = linear_probe_accuracy(noise[:2000], labels[:2000], noise[2000:], labels[2000:])
    assert abs(chance - 0.1) < 0.04
    # the label written into the code, one direction per class
    codes = torch.cat([torch.nn.functional.one_hot(labels, 10).float() * 3, noise], 1)
    sure = linear_probe_accuracy(codes[:2000], labels[:2000], codes[2000:], labels[2000:])
    assert sure > 0.99


def test_linear_probe_checks_its_arguments():
    x, y = torch.randn(10, 3), torch.zeros(10, dtype=torch.long)
    with pytest.raises(ValueError, match="train_codes"):
        linear_probe_accuracy(x[0], y, x, y)
    with pytest.raises(ValueError, match="test_labels"):
        linear_probe_accuracy(x, y, x, y.float())
    with pytest.raises(ValueError, match="dimensions"):
        linear_probe_accuracy(x, y, torch.randn(10, 2), y)
    with pytest.raises(ValueError, match="finite"):
        linear_probe_accuracy(x, y, x * float("nan"), y)
    with pytest.raises(ValueError, match="max_iter"):
        linear_probe_accuracy(x, y, x, y, max_iter=0)
