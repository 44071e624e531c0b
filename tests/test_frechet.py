"""Fréchet distance: closed forms on known Gaussians, an independent matrix square root, and
the distance of a set to itself."""

import pytest
import torch

from vae_lib.classifier import ClassifierConfig, DigitClassifier
from vae_lib.frechet import (
    classifier_features,
    classifier_frechet_distance,
    frechet_distance,
    gaussian_frechet_distance,
)


def random_covariance(f: int, seed: int) -> torch.Tensor:
    a = torch.randn(f, f, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    return a @ a.T / f + 0.1 * torch.eye(f, dtype=torch.float64)


def test_one_dimensional_closed_form():
    # W2^2 between N(m1, s1^2) and N(m2, s2^2) is (m1 - m2)^2 + (s1 - s2)^2
    d2 = gaussian_frechet_distance(
        torch.tensor([1.0]), torch.tensor([[4.0]]), torch.tensor([-2.0]), torch.tensor([[0.25]])
    )
    assert d2.item() == pytest.approx(9.0 + (2.0 - 0.5) ** 2, rel=1e-12)


def test_diagonal_closed_form():
    a, b = torch.tensor([1.0, 2.0, 9.0]), torch.tensor([4.0, 2.0, 1.0])
    mu1, mu2 = torch.tensor([0.0, 1.0, 2.0]), torch.tensor([1.0, 1.0, 0.0])
    expected = (mu1 - mu2).pow(2).sum() + (a.sqrt() - b.sqrt()).pow(2).sum()
    d2 = gaussian_frechet_distance(mu1, torch.diag(a), mu2, torch.diag(b))
    assert d2.item() == pytest.approx(expected.item(), rel=1e-12)


def test_general_covariances_against_eigenvalues_of_the_product():
    # tr (S1 S2)^{1/2} is the sum of square roots of the (real, non-negative) eigenvalues of
    # the non-symmetric product S1 S2: an independent route to the same number
    s1, s2 = random_covariance(6, 0), random_covariance(6, 1)
    mu1 = torch.randn(6, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    mu2 = torch.zeros(6, dtype=torch.float64)
    eig = torch.linalg.eigvals(s1 @ s2).real.clamp(min=0)
    expected = (mu1 - mu2).pow(2).sum() + torch.trace(s1 + s2) - 2 * eig.sqrt().sum()
    d2 = gaussian_frechet_distance(mu1, s1, mu2, s2)
    assert d2.item() == pytest.approx(expected.item(), rel=1e-9)
    assert gaussian_frechet_distance(mu1, s1, mu1, s1).item() == pytest.approx(0.0, abs=1e-9)
    # symmetric in its two arguments
    assert gaussian_frechet_distance(mu2, s2, mu1, s1).item() == pytest.approx(d2.item())


def test_a_set_has_zero_distance_to_itself_and_samples_approach_the_closed_form():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(2000, 5, generator=g)
    assert frechet_distance(x, x) == pytest.approx(0.0, abs=1e-8)
    # large samples of N(0, I) and N(m, 4 I): d^2 -> |m|^2 + 5 (2 - 1)^2
    a = torch.randn(200_000, 5, generator=g, dtype=torch.float64)
    m = torch.tensor([1.0, 0.0, -1.0, 0.5, 0.0], dtype=torch.float64)
    b = m + 2.0 * torch.randn(200_000, 5, generator=g, dtype=torch.float64)
    expected = m.pow(2).sum().item() + 5.0
    assert frechet_distance(a, b) == pytest.approx(expected, rel=0.02)


def test_distance_grows_with_the_shift():
    g = torch.Generator().manual_seed(1)
    a = torch.randn(5000, 3, generator=g)
    b = torch.randn(5000, 3, generator=g)
    ds = [frechet_distance(a, b + shift) for shift in (0.0, 0.5, 1.0, 2.0)]
    assert ds == sorted(ds) and ds[0] < 0.01 and ds[-1] == pytest.approx(12.0, rel=0.05)


def test_classifier_frechet_distance_uses_the_feature_layer():
    torch.manual_seed(0)
    clf = DigitClassifier(ClassifierConfig(input_shape=(1, 6, 6), hidden_dims=(16, 8)))
    g = torch.Generator().manual_seed(3)
    x = torch.rand(300, 1, 6, 6, generator=g)
    y = torch.rand(300, 1, 6, 6, generator=g).pow(3)  # a darker set
    clf.train()
    d = classifier_frechet_distance(clf, x, y, batch_size=64)
    with torch.no_grad():
        expected = frechet_distance(clf.features(x), clf.features(y))
    assert d == pytest.approx(expected, rel=1e-6) and d > 0
    assert clf.training, "the classifier's mode is restored"
    assert classifier_frechet_distance(clf, x, x) == pytest.approx(0.0, abs=1e-6)


def test_classifier_features_are_the_feature_layer_in_eval_mode_in_any_chunks():
    torch.manual_seed(0)
    clf = DigitClassifier(ClassifierConfig(input_shape=(1, 6, 6), hidden_dims=(16, 8)))
    x = torch.rand(50, 1, 6, 6, generator=torch.Generator().manual_seed(4))
    clf.train()
    f = classifier_features(clf, x, batch_size=7)
    assert clf.training, "the classifier's mode is restored"
    clf.eval()
    with torch.no_grad():
        expected = clf.features(x)
    assert f.shape == (50, 8) and not f.requires_grad
    torch.testing.assert_close(f, expected)
    with pytest.raises(ValueError, match="batch_size"):
        classifier_features(clf, x, batch_size=0)
    with pytest.raises(ValueError, match="features"):
        classifier_features(torch.nn.Linear(36, 2), x)


@pytest.mark.parametrize(
    "a, b, match",
    [
        (torch.zeros(1, 3), torch.zeros(5, 3), "at least 2"),
        (torch.zeros(5, 3), torch.zeros(5, 4), "dimensions differ"),
        (torch.zeros(5), torch.zeros(5, 3), "shape"),
    ],
)
def test_bad_input(a, b, match):
    with pytest.raises(ValueError, match=match):
        frechet_distance(a, b)


def test_gaussian_shapes_are_checked():
    with pytest.raises(ValueError, match="shapes disagree"):
        gaussian_frechet_distance(torch.zeros(2), torch.eye(3), torch.zeros(2), torch.eye(2))


# -- the reliability review's probes (issue 13) --------------------------------------------------
def test_a_covariance_that_is_not_positive_semi_definite_is_refused():
    with pytest.raises(ValueError, match="cov1 is not positive semi-definite"):
        gaussian_frechet_distance(torch.zeros(2), -torch.eye(2), torch.zeros(2), torch.eye(2))


def test_nan_features_are_refused():
    bad = torch.randn(10, 3)
    bad[2, 1] = float("nan")
    with pytest.raises(ValueError, match="holds NaN"):
        frechet_distance(bad, torch.randn(10, 3))
