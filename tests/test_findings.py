"""What the re-run of reliability-2.md's probes still found in chapters 7 and 8, one test each.

The review (/work/shared/reviews/reliability-2.md) grouped its findings as SW1-SW13 (silent
wrong results) and CU1-CU7 (crashes with unclear messages). Most were fixed with tests in the
family's own test files; these are the rows still not ok when its probes were re-run against the
refactored library (Q8, Q19, Q20, Q24, Y3, Y4), and the same classes of fault found by probing
every public function of the chapter 7-8 modules with NaN/inf, empty inputs, wrong dtypes,
(N, 1) labels and pixels outside [0, 1]. Each test is named after the finding whose class it
belongs to; each asks for a named error before any work is done, or a correct result.
"""

import numpy as np
import pytest
import torch

from vae_lib.conditional import ConditionalVAE, ConditionalVAEConfig, one_hot
from vae_lib.quadrants import (
    MISSING,
    QuadrantRegressor,
    QuadrantRegressorConfig,
    masked_cross_entropy,
    observe,
    paired_minibatches,
    random_quadrant_counts,
    regressor_cross_entropy,
    visible_mask,
)
from vae_lib.semi_supervised import SemiSupervisedVAE, SemiSupervisedVAEConfig, semi_supervised_loss
from vae_lib.sequence_vae import SequenceVAE, SequenceVAEConfig, active_latent_units
from vae_lib.style import ink, slant
from vae_lib.words import CharVocabulary

NAN, INF = float("nan"), float("inf")


def images(n: int = 4, seed: int = 0) -> torch.Tensor:
    return torch.rand(n, 1, 28, 28, generator=torch.Generator().manual_seed(seed))


def with_value(t: torch.Tensor, value: float) -> torch.Tensor:
    t = t.clone()
    t.view(-1)[0] = value
    return t


def regressor() -> QuadrantRegressor:
    return QuadrantRegressor(QuadrantRegressorConfig(hidden_dims=(8,)))


# -- SW13: observe(x, n_given) read a bool tensor as one quadrant each (probe Q8) --------------
def test_sw13_a_bool_n_given_is_refused_not_read_as_one_quadrant():
    x = images()
    with pytest.raises(ValueError, match=r"n_given must be .*integer tensor.*torch\.bool"):
        observe(x, torch.tensor([True, True, True, True]))
    with pytest.raises(ValueError, match=r"n_given must be one of \(1, 2, 3\).*bool"):
        observe(x, torch.tensor(True))
    with pytest.raises(ValueError, match=r"n_given must be one of \(1, 2, 3\), got True"):
        visible_mask(True)
    # the counts that mean what they say are taken: numpy ints and 0-d integer tensors too
    expected, _ = observe(x, 2)
    for count in (np.int64(2), torch.tensor(2)):
        assert torch.equal(observe(x, count)[0], expected)
    assert torch.equal(visible_mask(np.int64(2)), visible_mask(2))


def test_sw13_per_image_counts_are_checked_by_dtype_shape_and_range():
    x = images()
    with pytest.raises(ValueError, match="n_given .*got shape \\(4, 1\\)"):
        observe(x, torch.tensor([[1], [2], [3], [1]]))
    with pytest.raises(ValueError, match="every n_given must be 1, 2 or 3, got 0..3"):
        observe(x, torch.tensor([0, 1, 2, 3]))


# -- CU5: random_quadrant_counts(-1 / 2.5) gave torch errors (probes Q19, Q20) -----------------
@pytest.mark.parametrize("n", [-1, 2.5, True, "3"])
def test_cu5_random_quadrant_counts_names_a_bad_n(n):
    with pytest.raises(ValueError, match=r"n must be an int >= 0"):
        random_quadrant_counts(n)


def test_cu5_random_quadrant_counts_names_a_bad_generator():
    with pytest.raises(ValueError, match="generator must be a torch.Generator"):
        random_quadrant_counts(3, generator="x")
    assert random_quadrant_counts(0).shape == (0,)


# -- CU6: a float mask was refused as if the shapes differed (probe Q24) -----------------------
def test_cu6_a_float_mask_is_refused_for_its_dtype_not_its_shape():
    x = images()
    c, missing = observe(x, 1)
    logits = torch.zeros_like(x)
    for mask in (missing.float(), missing.long()):
        with pytest.raises(ValueError, match=f"mask must be a bool tensor.*got a {mask.dtype}"):
            masked_cross_entropy(x, logits, mask)
    with pytest.raises(ValueError, match=r"x must be a floating-point tensor.*got list"):
        masked_cross_entropy(x.tolist(), logits, missing)
    with pytest.raises(ValueError, match=r"logits \(4, 784\).*same shape"):
        masked_cross_entropy(x, torch.zeros(4, 784), missing)


# -- SW12: NaN and inf pass unchecked (probes Y3, Y4; and the same class elsewhere) ----------
@pytest.mark.parametrize("bad", [NAN, INF, -INF])
def test_sw12_nan_and_inf_pixels_in_slant_and_ink_are_refused(bad):
    x = with_value(images(2), bad)
    for measure in (slant, ink):
        with pytest.raises(ValueError, match="images must be finite intensities >= 0"):
            measure(x)
    # intensities of any scale are still measured (both are moments of the ink)
    torch.testing.assert_close(slant(3 * images(2)), slant(images(2)))


def test_sw12_non_finite_logits_in_masked_cross_entropy_are_refused():
    x = images()
    _, missing = observe(x, 1)
    for bad in (NAN, INF):
        with pytest.raises(ValueError, match="logits must be finite"):
            masked_cross_entropy(x, with_value(torch.zeros_like(x), bad), missing)


def test_sw12_non_finite_codes_are_refused_by_every_public_decoder():
    cvae = ConditionalVAE(ConditionalVAEConfig(condition_dim=10, hidden_dims=(8,), latent_dim=2))
    c = one_hot(torch.arange(4))
    z = torch.full((4, 2), NAN)
    with pytest.raises(ValueError, match="z must be finite"):
        cvae.decode(z, c)
    with pytest.raises(ValueError, match="z must be finite"):
        cvae.log_px_given_z((images() > 0.5).float(), z, c)

    m2 = SemiSupervisedVAE(
        SemiSupervisedVAEConfig(
            input_dim=6, hidden_dims=(8,), latent_dim=2, classifier_hidden_dims=(8,)
        )
    )
    with pytest.raises(ValueError, match="z must be finite"):
        m2.decode(with_value(torch.zeros(4, 2), INF), torch.arange(4))

    seq = SequenceVAE(
        SequenceVAEConfig(embedding_dim=4, hidden_dim=8, decoder_hidden_dim=8, latent_dim=3)
    )
    tokens, lengths = CharVocabulary().encode(["cat", "a"])
    for bad in (NAN, INF):
        code = with_value(torch.zeros(2, 3), bad)
        with pytest.raises(ValueError, match="z must be finite"):
            seq.decode_logits(tokens, code)
        with pytest.raises(ValueError, match="z must be finite"):
            seq.log_px_given_z(tokens, lengths, code)
        with pytest.raises(ValueError, match="z must be finite"):
            seq.greedy_decode(code)


def test_sw12_non_finite_features_are_refused_by_m2_under_their_own_names():
    m2 = SemiSupervisedVAE(
        SemiSupervisedVAEConfig(
            input_dim=6, hidden_dims=(8,), latent_dim=2, classifier_hidden_dims=(8,)
        )
    )
    x, y = torch.randn(4, 6), torch.arange(4)
    bad = with_value(x, NAN)
    with pytest.raises(ValueError, match="x must be finite"):
        m2.classify(bad)
    with pytest.raises(ValueError, match="x must be finite"):
        m2.encode(with_value(x, INF), y)
    with pytest.raises(ValueError, match="labelled_x must be finite"):
        semi_supervised_loss(m2, bad, y, None, alpha=1.0)
    with pytest.raises(ValueError, match="unlabelled_x must be finite"):
        semi_supervised_loss(m2, x, y, bad, alpha=1.0)


def test_sw12_active_latent_units_refuses_nan_means():
    with pytest.raises(ValueError, match="mu must be finite"):
        active_latent_units(torch.full((5, 3), NAN))
    assert active_latent_units(torch.tensor([[0.0, 1.0], [0.0, -1.0]])) == 1


# -- SW8: values that are no pixels on the completion path ------------------------------------
@pytest.mark.parametrize("bad", [NAN, 5.0, -0.5])
def test_sw8_regressor_conditions_must_be_pixels_or_missing(bad):
    model = regressor()
    c, _ = observe(images(), 2)
    with pytest.raises(ValueError, match=r"c must hold visible pixels in \[0, 1\] and MISSING"):
        model(with_value(c, bad))
    assert model(c).shape == (4, 1, 28, 28)  # MISSING itself is what observe writes
    assert bool((c == MISSING).any())


# -- CU5: raw torch errors on the completion path ---------------------------------------------
def test_cu5_the_regressor_names_wrong_types_dtypes_and_shapes_of_x_and_c():
    model = regressor()
    x = images()
    with pytest.raises(ValueError, match=r"c has dtype torch.float64"):
        model(observe(x.double(), 1)[0])
    with pytest.raises(ValueError, match=r"x must be a floating-point tensor.*got list"):
        model.complete(x.tolist(), 1)
    with pytest.raises(ValueError, match=r"x has dtype torch.float64"):
        model.complete(x.double(), 1)
    with pytest.raises(ValueError, match=r"x has shape \(2, 1, 27, 27\)"):
        model.complete(torch.rand(2, 1, 27, 27), 1)
    with pytest.raises(ValueError, match=r"x has dtype torch.float64"):
        regressor_cross_entropy(model, x.double(), 1)
    completed = model.complete(x, 1)
    _, missing = observe(x, 1)
    assert torch.equal(completed[~missing], x[~missing])  # the visible pixels are kept


def test_cu5_paired_minibatches_checks_its_arguments_before_drawing():
    g = torch.Generator().manual_seed(0)
    a, b = torch.zeros(10, 2), torch.zeros(8)
    with pytest.raises(ValueError, match=r"common first dimension, got sizes \[10, 8\]"):
        paired_minibatches((a, b), 4, g)
    with pytest.raises(ValueError, match="batch_size must be an int >= 1, got 0"):
        paired_minibatches((a,), 0, g)
    with pytest.raises(ValueError, match="generator must be a torch.Generator"):
        paired_minibatches((a,), 4, None)
    state = g.get_state()
    with pytest.raises(ValueError):
        paired_minibatches((a, b), 4, g)
    assert torch.equal(g.get_state(), state)  # refused before any draw
    assert [len(batch[0]) for batch in paired_minibatches((a, torch.zeros(10)), 4, g)] == [4, 4, 2]


# -- CU5: CharVocabulary(letters=5) failed later with a raw TypeError --------------------------
def test_cu5_vocabulary_letters_must_be_a_string_of_distinct_characters():
    with pytest.raises(ValueError, match="letters must be a string of distinct characters"):
        CharVocabulary(letters=5)
    with pytest.raises(ValueError, match=r"letters must be distinct.*\['a'\]"):
        CharVocabulary(letters="abca")  # which token would 'a' be?
    assert CharVocabulary(letters="").size == 3
