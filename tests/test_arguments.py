"""The shared argument checks: what they accept, what they return, and what they name."""

import math

import numpy as np
import pytest
import torch

from vae_lib import arguments as A


@pytest.mark.parametrize("value", [3, np.int64(3), torch.tensor(3)])
def test_integers_of_any_integral_kind_come_back_as_python_ints(value):
    got = A.positive_int("n", value)
    assert got == 3 and type(got) is int


@pytest.mark.parametrize(
    "value", [0, -1, 2.0, 2.7, True, "3", None, float("nan"), float("inf"), torch.tensor([1, 2])]
)
def test_positive_int_refuses_everything_else_and_names_the_argument(value):
    with pytest.raises(ValueError, match=r"^n_samples must be an int >= 1, got"):
        A.positive_int("n_samples", value)


def test_integer_bounds_are_inclusive_and_stated():
    assert A.integer("k", 5, minimum=5, maximum=5) == 5
    with pytest.raises(ValueError, match=r"k must be an int in \[0, 3\], got 4"):
        A.integer("k", 4, minimum=0, maximum=3)


def test_seeds_are_the_range_torch_accepts():
    assert A.seed("seed", 2**64 - 1) == 2**64 - 1 and A.seed("seed", -(2**63)) == -(2**63)
    torch.manual_seed(A.seed("seed", 2**64 - 1))  # torch takes both ends
    torch.manual_seed(A.seed("seed", -(2**63)))
    for bad in (2**64, -(2**63) - 1, 1.5, "0", None):
        with pytest.raises(ValueError, match="seed must be an int"):
            A.seed("seed", bad)


@pytest.mark.parametrize("value", [1, 0.5, np.float64(0.5), torch.tensor(0.5)])
def test_reals_come_back_as_python_floats(value):
    got = A.real("beta", value, minimum=0.0)
    assert type(got) is float and got == float(value)


@pytest.mark.parametrize(
    "value", ["1", None, True, float("nan"), float("inf"), -0.1, torch.tensor([1.0, 2.0])]
)
def test_real_refuses_strings_bools_nan_inf_and_out_of_range_values(value):
    with pytest.raises(ValueError, match=r"^beta must be a finite number >= 0.0, got"):
        A.real("beta", value, minimum=0.0)


def test_real_strict_bounds_and_infinities():
    with pytest.raises(ValueError, match=r"lr must be a finite number > 0.0"):
        A.real("lr", 0.0, minimum=0.0, strict_minimum=True)
    assert A.real("t", math.inf, allow_infinite=True) == math.inf
    with pytest.raises(ValueError, match="t must be a number"):
        A.real("t", math.nan, allow_infinite=True)
    assert A.probability("p", 0.0) == 0.0
    with pytest.raises(ValueError, match=r"p must be a finite number >= 0.0 and < 1.0"):
        A.probability("p", 1.0)
    assert A.probability("p", 1.0, allow_one=True) == 1.0


def test_int_tuples_refuse_strings_single_ints_floats_and_zeros():
    assert A.positive_ints("hidden_dims", [8, np.int64(4)]) == (8, 4)
    assert A.positive_ints("hidden_dims", (), allow_empty=True) == ()
    for bad in ("16", "784", 8, (8.9,), (2.5,), (0,), (True,), ()):
        with pytest.raises(ValueError, match="hidden_dims must be a tuple of ints >= 1"):
            A.positive_ints("hidden_dims", bad)


def test_booleans_and_choices_are_exact():
    assert A.boolean("mean", np.bool_(True)) is True
    for bad in (1, 0, "yes", None):
        with pytest.raises(ValueError, match="mean must be True or False"):
            A.boolean("mean", bad)
    assert A.one_of("lr_schedule", None, (None, "cosine")) is None
    for bad in ("COSINE", 1, True):
        with pytest.raises(ValueError, match=r"lr_schedule must be one of \(None, 'cosine'\)"):
            A.one_of("lr_schedule", bad, (None, "cosine"))


def test_generators_must_be_generators_on_the_right_kind_of_device():
    g = torch.Generator()
    assert A.generator("generator", None) is None and A.generator("generator", g, "cpu") is g
    for bad in ("seed", 42, np.random.default_rng(0)):
        with pytest.raises(ValueError, match="generator must be a torch.Generator or None"):
            A.generator("generator", bad)
    with pytest.raises(ValueError, match=r"generator is on cpu but .* drawn on meta"):
        A.generator("generator", g, "meta")


def test_float_tensors_name_the_expected_shape_and_dtype():
    x = torch.zeros(2, 3)
    assert A.float_tensor("x", x, dtype=torch.float32) is x
    with pytest.raises(ValueError, match=r"x must be a floating-point tensor of shape \(B, 3\)"):
        A.float_tensor("x", x.long(), shape="(B, 3)")
    with pytest.raises(ValueError, match="x must be a floating-point tensor, got ndarray"):
        A.float_tensor("x", np.zeros(3))
    with pytest.raises(ValueError, match=r"x has dtype torch.float64 .* x.to\(torch.float32\)"):
        A.float_tensor("x", x.double(), dtype=torch.float32)
