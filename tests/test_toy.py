"""Toy 2-D distributions of the first chapter."""

import pytest
import torch

import vae_lib as V


def test_ring_map_formula_and_radius():
    z = torch.tensor([[3.0, 4.0], [-0.6, 0.8], [0.0, -2.0]])
    expected = torch.stack([row / 10 + row / row.norm() for row in z])
    torch.testing.assert_close(V.ring_map(z), expected)
    # g keeps the direction and maps radius r to r / 10 + 1
    torch.testing.assert_close(V.ring_map(z).norm(dim=1), z.norm(dim=1) / 10 + 1)


def test_ring_samples_lie_near_the_unit_circle():
    x = V.sample_ring(50_000, generator=torch.Generator().manual_seed(0))
    r = x.norm(dim=1)
    # |z| of a 2-D standard normal has mean sqrt(pi/2) ~ 1.2533
    assert r.min() >= 1.0
    assert abs(r.mean().item() - (1 + 1.2533 / 10)) < 0.005


def test_sample_gaussian_2d_has_the_requested_moments():
    cov = torch.tensor([[2.0, 0.6], [0.6, 0.5]])
    x = V.sample_gaussian_2d(
        200_000, mean=(1.0, -1.0), cov=cov, generator=torch.Generator().manual_seed(0)
    )
    torch.testing.assert_close(x.mean(0), torch.tensor([1.0, -1.0]), atol=0.01, rtol=0)
    torch.testing.assert_close(torch.cov(x.T), cov, atol=0.02, rtol=0)


def test_toy_helpers_reject_bad_input():
    with pytest.raises(ValueError):
        V.sample_gaussian_2d(0)
    with pytest.raises(ValueError, match="positive definite"):
        V.sample_gaussian_2d(5, cov=torch.tensor([[1.0, 2.0], [2.0, 1.0]]))
    with pytest.raises(ValueError):
        V.ring_map(torch.tensor([1, 2]))


def test_ring_inverse_undoes_ring_map():
    z = torch.randn(1000, 2, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    torch.testing.assert_close(V.ring_inverse(V.ring_map(z)), z)
    assert torch.isnan(V.ring_inverse(torch.tensor([[0.5, 0.2]]))).all()


def test_ring_density_uses_the_jacobian_of_the_inverse():
    # independent check: autograd Jacobian of g^{-1} and the Gaussian density of g^{-1}(x)
    x = torch.tensor([[1.2, 0.3], [-0.8, 0.9], [0.1, -1.5]], dtype=torch.float64)
    for xi in x:
        jac = torch.autograd.functional.jacobian(V.ring_inverse, xi)
        z = V.ring_inverse(xi)
        expected = torch.distributions.MultivariateNormal(
            torch.zeros(2, dtype=torch.float64), torch.eye(2, dtype=torch.float64)
        ).log_prob(z) + torch.log(torch.linalg.det(jac).abs())
        torch.testing.assert_close(V.ring_log_density(xi), expected)


def test_ring_density_integrates_to_one_and_is_zero_inside_the_disc():
    n = 1201
    ticks = torch.linspace(-3, 3, n, dtype=torch.float64)
    xx, yy = torch.meshgrid(ticks, ticks, indexing="ij")
    grid = torch.stack([xx, yy], dim=-1)
    dens = V.ring_log_density(grid).exp()
    cell = (ticks[1] - ticks[0]) ** 2
    assert abs((dens.sum() * cell).item() - 1.0) < 5e-3
    assert V.ring_log_density(torch.tensor([0.3, 0.4], dtype=torch.float64)).item() == float("-inf")


def test_histogram_2d_matches_numpy():
    import numpy as np

    x = torch.randn(5000, 2, generator=torch.Generator().manual_seed(0)) * 1.5
    x[:3] = torch.tensor([[2.0, 2.0], [-2.0, 0.0], [2.0, -2.0]])  # points on the grid's edges
    edges = V.grid_edges(2.0, 16)
    expected, _, _ = np.histogram2d(x[:, 0].numpy(), x[:, 1].numpy(), bins=[edges.numpy()] * 2)
    got = V.histogram_2d(x, 2.0, 16)
    np.testing.assert_allclose(got.numpy(), expected / len(x))
    assert got.sum() < 1  # the points outside the square are not counted


def test_cell_probabilities_of_a_gaussian_match_its_cdf():
    import math

    def log_density(p):
        return -0.5 * (p**2).sum(-1) - math.log(2 * math.pi)

    def cdf(t):
        return 0.5 * (1 + torch.erf(t / math.sqrt(2)))

    edges = V.grid_edges(3.0, 12)
    per_axis = cdf(edges[1:]) - cdf(edges[:-1])
    expected = per_axis[:, None] * per_axis[None, :]
    got = V.cell_probabilities(log_density, 3.0, 12, subdivisions=8)
    torch.testing.assert_close(got, expected, atol=2e-5, rtol=0)


def test_total_variation_known_values():
    p = torch.tensor([0.5, 0.5])
    assert V.total_variation(p, torch.tensor([1.0, 0.0])) == pytest.approx(0.5)
    assert V.total_variation(p, p) == 0.0
    # mass left off the cells counts as one more cell: p = (0.2 | 0.8 off), q = (0 | 1 off)
    assert V.total_variation(torch.tensor([0.2]), torch.tensor([0.0])) == pytest.approx(0.2)
    assert V.total_variation(torch.tensor([1.0, 0.0]), torch.tensor([0.0, 1.0])) == 1.0
    with pytest.raises(ValueError):
        V.total_variation(torch.tensor([0.9, 0.9]), torch.tensor([0.5, 0.5]))


def test_ring_histogram_agrees_with_its_density_and_not_with_a_wrong_one():
    x = V.sample_ring(200_000, generator=torch.Generator().manual_seed(0))
    exact = V.cell_probabilities(V.ring_log_density, 1.6, 40)
    tv = V.total_variation(V.histogram_2d(x, 1.6, 40), exact)
    assert tv < 0.02
    shifted = V.cell_probabilities(lambda p: V.ring_log_density(p - 0.2), 1.6, 40)
    assert V.total_variation(V.histogram_2d(x, 1.6, 40), shifted) > 0.3


# -- the reliability review's probes (issue 13) --------------------------------------------------
def test_nan_points_are_refused_rather_than_counted_outside():
    x = torch.zeros(5, 2)
    x[1, 0] = float("nan")
    with pytest.raises(ValueError, match="NaN or infinite points"):
        V.histogram_2d(x)


def test_total_variation_refuses_nan():
    p = torch.full((4,), 0.25)
    with pytest.raises(ValueError, match="finite"):
        V.total_variation(p, torch.tensor([0.25, float("nan"), 0.25, 0.25]))


@pytest.mark.parametrize("kwargs", [{"extent": 0.0}, {"extent": "2"}, {"bins": 2.5}])
def test_grid_arguments_are_named(kwargs):
    name = next(iter(kwargs))
    with pytest.raises(ValueError, match=f"^{name} must be"):
        V.grid_edges(**kwargs)
