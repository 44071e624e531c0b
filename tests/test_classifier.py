"""The digit classifier: shapes, probabilities, accuracy, training, bad input, the cache."""

import pytest
import torch
from helpers import (
    BAD_COMMON_OPTIONS,
    load_from_zoo,
    resume_after_interrupt,
    same_weights,
    weights,
    without_time,
)

import vae_lib as V
from vae_lib import classifier as C

SMALL = C.ClassifierConfig(hidden_dims=(32, 16))


@pytest.fixture
def model():
    torch.manual_seed(0)
    return C.DigitClassifier(SMALL)


@pytest.fixture
def x():
    return torch.rand(7, 1, 28, 28, generator=torch.Generator().manual_seed(1))


# -- the model ------------------------------------------------------------------------------------
def test_default_architecture_is_784_512_256_10():
    m = C.DigitClassifier()
    linears = [layer for layer in [*m.body, m.head] if isinstance(layer, torch.nn.Linear)]
    assert [tuple(layer.weight.shape) for layer in linears] == [(512, 784), (256, 512), (10, 256)]
    assert m.feature_dim == 256 and m.n_classes == 10 and m.input_shape == (1, 28, 28)


def test_the_shared_classifier_is_a_small_cnn():
    from vae_lib import zoo

    m = zoo.entry("digit_classifier").build()
    convs = [layer for layer in m.body if isinstance(layer, torch.nn.Conv2d)]
    assert [(c.in_channels, c.out_channels, c.kernel_size) for c in convs] == [
        (1, 32, (3, 3)),
        (32, 64, (3, 3)),
    ]
    linears = [layer for layer in [*m.body, m.head] if isinstance(layer, torch.nn.Linear)]
    # two 2x2 poolings: 28 -> 14 -> 7, so 64 * 7 * 7 features enter the hidden layer
    assert [tuple(layer.weight.shape) for layer in linears] == [(128, 64 * 7 * 7), (10, 128)]
    x = torch.rand(5, 1, 28, 28)
    assert m(x).shape == (5, 10) and m.features(x).shape == (5, m.feature_dim) == (5, 128)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"conv_channels": (8,), "input_shape": (784,)},
        {"conv_channels": (0,)},
        {"conv_channels": (4,) * 6},  # 28 >> 6 == 0: nothing left after the poolings
    ],
)
def test_bad_conv_settings_are_refused(kwargs):
    with pytest.raises(ValueError):
        C.ClassifierConfig(**kwargs)


def test_shapes(model, x):
    assert model(x).shape == (7, 10)
    assert model.features(x).shape == (7, 16)
    assert model.predict_proba(x).shape == (7, 10)
    assert C.confidence(model, x).shape == (7,)
    assert model.device == torch.device("cpu")
    assert (model.features(x) >= 0).all()  # ReLU activations


def test_logits_are_the_head_of_the_features(model, x):
    torch.testing.assert_close(model(x), model.head(model.features(x)))


def test_predict_proba_is_the_softmax_in_eval_mode_and_chunked():
    torch.manual_seed(0)
    m = C.DigitClassifier(C.ClassifierConfig(hidden_dims=(32, 16), dropout=0.5))
    x = torch.rand(9, 1, 28, 28, generator=torch.Generator().manual_seed(2))
    m.train()
    p = m.predict_proba(x, batch_size=4)
    assert m.training  # the mode is given back
    assert not p.requires_grad
    torch.testing.assert_close(p.sum(dim=1), torch.ones(9))
    m.eval()
    with torch.no_grad():
        torch.testing.assert_close(p, torch.softmax(m(x), dim=1))
    torch.testing.assert_close(m.predict_proba(x), p)
    assert m.predict_proba(x[:0]).shape == (0, 10)


def test_confidence_is_the_largest_probability(model, x):
    p = model.predict_proba(x)
    c = C.confidence(model, x)
    torch.testing.assert_close(c, p.max(dim=1).values)
    assert ((c >= 0.1 - 1e-6) & (c <= 1)).all()


def test_accuracy_agrees_with_a_brute_force_count(model):
    x = torch.rand(50, 1, 28, 28, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        predicted = model(x).argmax(dim=1)
    y = predicted.clone()
    y[::3] = (y[::3] + 1) % 10  # 17 of 50 wrong
    expected = sum(int(predicted[i] == y[i]) for i in range(50)) / 50
    assert expected == pytest.approx(33 / 50)
    assert C.accuracy(model, x, y) == pytest.approx(expected)


def test_random_shift_moves_each_image_by_at_most_max_shift():
    g = torch.Generator().manual_seed(0)
    x = torch.zeros(20, 1, 6, 6)
    x[:, :, 1:5, 1:5] = torch.rand(20, 1, 4, 4, generator=g)  # empty border: nothing is lost
    assert C.random_shift(x, 0, g) is x
    shifted = C.random_shift(x, 1, g)
    offsets = set()
    for a, b in zip(x, shifted, strict=True):
        matches = [
            (dy, dx)
            for dy in (-1, 0, 1)
            for dx in (-1, 0, 1)
            if torch.equal(torch.roll(a, (dy, dx), dims=(-2, -1)), b)
        ]
        assert len(matches) == 1
        offsets.add(matches[0])
    assert len(offsets) > 3  # each image draws its own offset
    torch.testing.assert_close(shifted.sum(dim=(1, 2, 3)), x.sum(dim=(1, 2, 3)))


# -- training -------------------------------------------------------------------------------------
def test_fit_learns_mnist_digits(mnist_small):
    train_x, train_y, _ = mnist_small
    x, y, held_x, held_y = train_x[:1500], train_y[:1500], train_x[1500:], train_y[1500:]
    V.set_seed(0)
    m = C.DigitClassifier()
    before = C.accuracy(m, held_x, held_y)
    history = V.fit(
        m,
        (x, y),
        epochs=5,
        batch_size=64,
        lr=2e-3,
        val=(held_x, held_y),
        binarize_fraction=0.5,
        progress=False,
    )
    after = C.accuracy(m, held_x, held_y)
    assert before < 0.3 and after > 0.88  # about 0.91 from 1,500 training images
    assert C.accuracy(m, x, y) > 0.93
    assert not m.training
    assert history.epoch == [1, 2, 3, 4, 5]
    for name in ("train_loss", "train_accuracy", "val_loss", "val_accuracy", "seconds"):
        assert len(getattr(history, name)) == 5, name
    assert history.train_loss[-1] < history.train_loss[0]
    assert history.train_accuracy[-1] > history.train_accuracy[0]
    assert history.val_accuracy[-1] == pytest.approx(after)
    assert history.val_loss[-1] < history.val_loss[0]
    assert history.total_seconds > 0
    assert history.settings["n_train"] == 1500 and history.settings["binarize_fraction"] == 0.5
    assert history.settings["lr_schedule"] == "cosine"  # the family's default
    assert V.History.from_dict(history.to_dict()) == history


def test_the_options_carry_the_old_trainers_defaults():
    o = C.ClassifierOptions()
    assert (o.batch_size, o.lr, o.betas, o.lr_schedule) == (128, 1e-3, (0.9, 0.999), "cosine")
    assert (o.binarize_fraction, o.max_shift) == (0.0, 0)
    assert C.DigitClassifier.Options is C.ClassifierOptions and C.DigitClassifier.uses_labels


def test_fit_is_deterministic_for_a_seed(mnist_small):
    x, y = mnist_small[0][:512], mnist_small[1][:512]
    runs = []
    for seed in (5, 5, 6):
        torch.manual_seed(0)
        m = C.DigitClassifier(SMALL)
        h = V.fit(
            m, (x, y), epochs=2, binarize_fraction=0.5, max_shift=1, progress=False, seed=seed
        )
        runs.append((weights(m), without_time(h)))
    assert same_weights(runs[0][0], runs[1][0]) and runs[0][1] == runs[1][1]
    assert not same_weights(runs[0][0], runs[2][0])
    assert runs[0][1]["val_accuracy"] == []  # no validation data, an empty validation curve


def test_the_curves_are_the_cross_entropy_and_the_accuracy_of_the_augmented_batches(model):
    # one full batch, no augmentation: the epoch's curves are the loss and accuracy at the
    # initial weights, and evaluate gives the same numbers on the same images
    x = torch.rand(16, 1, 28, 28, generator=torch.Generator().manual_seed(4))
    y = torch.arange(16) % 10
    with torch.no_grad():
        logits = model(x)
    expected_loss = torch.nn.functional.cross_entropy(logits, y).item()
    expected_accuracy = (logits.argmax(1) == y).float().mean().item()
    values = V.evaluate(model, (x, y))
    assert values == pytest.approx({"loss": expected_loss, "accuracy": expected_accuracy})
    h = V.fit(model, (x, y), epochs=1, batch_size=16, val=(x, y), progress=False)
    assert h.train_loss[0] == pytest.approx(expected_loss, rel=1e-6)
    assert h.train_accuracy[0] == pytest.approx(expected_accuracy)
    assert h.val_accuracy[0] == pytest.approx(C.accuracy(model, x, y))


def test_validation_images_are_neither_binarized_nor_shifted(model):
    x = torch.rand(20, 1, 28, 28, generator=torch.Generator().manual_seed(5))
    y = torch.arange(20) % 10
    h = V.fit(
        model, (x, y), epochs=1, val=(x, y), binarize_fraction=1.0, max_shift=2, progress=False
    )
    assert h.val_accuracy[0] == pytest.approx(C.accuracy(model, x, y))
    with torch.no_grad():
        loss = torch.nn.functional.cross_entropy(model(x), y).item()
    assert h.val_loss[0] == pytest.approx(loss, rel=1e-6)


def test_non_finite_loss_raises(model):
    x = torch.rand(4, 1, 28, 28)
    with torch.no_grad():
        model.head.bias.fill_(float("nan"))  # (NaN images are refused before training)
    with pytest.raises(V.NonFiniteLossError, match="epoch 1, batch 1"):
        V.fit(model, (x, torch.zeros(4, dtype=torch.long)), epochs=1, progress=False)


# -- bad input ------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "bad",
    [
        pytest.param(torch.rand(3, 784), id="flat"),
        pytest.param(torch.rand(3, 1, 27, 28), id="wrong-size"),
        pytest.param(torch.rand(1, 28, 28), id="no-batch"),
        pytest.param(torch.zeros(3, 1, 28, 28, dtype=torch.long), id="integer"),
        pytest.param([[0.0]], id="not-a-tensor"),
    ],
)
def test_bad_images_raise(model, bad):
    for call in (model, model.features, model.predict_proba, lambda b: C.confidence(model, b)):
        with pytest.raises(ValueError, match="x "):
            call(bad)


@pytest.mark.parametrize(
    "labels, match",
    [
        pytest.param(torch.zeros(5), "integer", id="float"),
        pytest.param(torch.zeros(5, dtype=torch.bool), "integer", id="bool"),
        pytest.param([0, 1, 2, 3, 4], "integer", id="list"),
        pytest.param(torch.zeros(4, dtype=torch.long), r"\(5,\)", id="too-few"),
        pytest.param(torch.zeros(5, 1, dtype=torch.long), r"\(5,\)", id="2d"),
        pytest.param(torch.tensor([0, 1, 2, 3, 10]), r"\[0, 10\)", id="too-large"),
        pytest.param(torch.tensor([0, 1, -1, 3, 4]), r"\[0, 10\)", id="negative"),
    ],
)
def test_bad_labels_raise(model, labels, match):
    x = torch.rand(5, 1, 28, 28)
    with pytest.raises(ValueError, match=f"^y .*{match}"):
        C.accuracy(model, x, labels)
    with pytest.raises(ValueError, match=f"^data labels .*{match}"):
        V.fit(model, (x, labels), epochs=1, progress=False)
    good = torch.zeros(5, dtype=torch.long)
    with pytest.raises(ValueError, match=f"^val labels .*{match}"):
        V.fit(model, (x, good), epochs=1, val=(x, labels), progress=False)
    with pytest.raises(ValueError, match=f"^data labels .*{match}"):
        V.evaluate(model, (x, labels))


@pytest.mark.parametrize(
    "kwargs, match",
    [
        *BAD_COMMON_OPTIONS,
        ({"binarize_fraction": 1.5}, "binarize_fraction"),
        ({"binarize_fraction": "half"}, "binarize_fraction"),
        ({"max_shift": -1}, "max_shift"),
        ({"max_shift": 1.5}, "max_shift"),
        ({"schedule": "cosine"}, r"\['schedule'\].*lr_schedule"),  # the old settings key
        ({"binarise_fraction": 0.5}, "binarise_fraction"),  # a misspelt option
        ({"val": torch.rand(2, 1, 28, 28)}, "val must be a pair"),
        ({"val": (torch.rand(2, 1, 28, 28), torch.zeros(3, dtype=torch.long))}, "val labels"),
        ({"val": (torch.rand(2, 784), torch.zeros(2, dtype=torch.long))}, "val images has shape"),
    ],
)
def test_bad_training_arguments_raise(model, kwargs, match):
    x, y = torch.rand(4, 1, 28, 28), torch.zeros(4, dtype=torch.long)
    kwargs = {"epochs": 1, **kwargs}
    with pytest.raises(ValueError, match=match):
        V.fit(model, (x, y), progress=False, **kwargs)


def test_training_errors_about_the_data(model):
    y = torch.zeros(4, dtype=torch.long)
    for bad in (2 * torch.ones(4, 1, 28, 28), 255 * torch.rand(4, 1, 28, 28)):  # 0-255 bytes
        for kwargs in ({}, {"binarize_fraction": 0.5}):
            with pytest.raises(ValueError, match=r"data images must lie in \[0, 1\]"):
                V.fit(model, (bad, y), epochs=1, progress=False, **kwargs)
        with pytest.raises(ValueError, match=r"val images must lie in \[0, 1\]"):
            V.fit(model, (torch.rand(4, 1, 28, 28), y), epochs=1, val=(bad, y), progress=False)
        with pytest.raises(ValueError, match=r"x must lie in \[0, 1\]"):
            C.accuracy(model, bad, y)
        with pytest.raises(ValueError, match=r"x must lie in \[0, 1\]"):
            C.confidence(model, bad)
    nan = torch.full((4, 1, 28, 28), float("nan"))
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        V.fit(model, (nan, y), epochs=1, progress=False)
    with pytest.raises(ValueError, match="at least one"):
        V.fit(model, (torch.rand(0, 1, 28, 28), y[:0]), epochs=1, progress=False)
    with pytest.raises(ValueError, match="pair"):
        V.fit(model, torch.rand(4, 1, 28, 28), epochs=1, progress=False)
    with pytest.raises(ValueError, match="pair"):
        V.fit(model, (torch.rand(4, 1, 28, 28), y, y), epochs=1, progress=False)
    with pytest.raises(ValueError, match="float64"):
        V.fit(model, (torch.rand(4, 1, 28, 28, dtype=torch.float64), y), epochs=1)
    with pytest.raises(ValueError, match="at least one"):
        C.accuracy(model, torch.rand(0, 1, 28, 28), y[:0])
    with pytest.raises(ValueError, match="batch_size"):
        model.predict_proba(torch.rand(4, 1, 28, 28), batch_size=0)


def test_max_shift_needs_images():
    torch.manual_seed(0)
    flat = C.DigitClassifier(C.ClassifierConfig(input_shape=(784,), hidden_dims=(8,)))
    x, y = torch.rand(4, 784), torch.zeros(4, dtype=torch.long)
    with pytest.raises(ValueError, match="max_shift"):
        V.fit(flat, (x, y), epochs=1, max_shift=1, progress=False)
    V.fit(flat, (x, y), epochs=1, progress=False)  # without shifts, flat inputs train


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"hidden_dims": ()}, "hidden_dims"),
        ({"hidden_dims": (0,)}, "hidden_dims"),
        ({"input_shape": (1, 0, 28)}, "input_shape"),
        ({"n_classes": 1}, "n_classes"),
        ({"dropout": 1.0}, "dropout"),
        ({"dropout": -0.1}, "dropout"),
    ],
)
def test_bad_config_raises(kwargs, match):
    with pytest.raises(ValueError, match=match):
        C.ClassifierConfig(**kwargs)


# -- the shared, cached classifier ----------------------------------------------------------------
def test_digit_classifier_is_the_zoo_entry_and_its_recipe_is_valid_options():
    import dataclasses

    from vae_lib import zoo

    e = zoo.entry("digit_classifier")
    assert isinstance(e.build(), C.DigitClassifier)
    fields = {f.name for f in dataclasses.fields(C.ClassifierOptions)}
    options = {k: v for k, v in e.recipe.items() if k in fields}
    assert options == {"batch_size": 128, "lr": 1e-3, "binarize_fraction": 0.5, "max_shift": 2}
    C.ClassifierOptions(**options)  # what fit gets from the zoo
    _, model, history = load_from_zoo("digit_classifier", C.DigitClassifier)
    assert model.config == e.build().config
    assert len(history.val_accuracy) == e.recipe["epochs"]
    assert history.settings["n_train"] == 50_000
    assert history.settings["max_shift"] == e.recipe["max_shift"]


def test_an_interrupted_run_resumes_to_the_same_bits(mnist_small, tmp_path):
    x, y = mnist_small[0][:128], mnist_small[1][:128]  # 4 steps per epoch
    options = {"epochs": 3, "batch_size": 32, "val": (x[:50], y[:50]), "seed": 3}
    options |= {"binarize_fraction": 0.5, "max_shift": 1, "progress": False}
    whole, whole_history, resumed, history = resume_after_interrupt(
        lambda: C.DigitClassifier(C.ClassifierConfig(hidden_dims=(16,), dropout=0.2)),
        (x, y),
        tmp_path / "classifier.pt",
        interrupt_at=9,  # in epoch 3, after two finished epochs
        epochs_done=2,
        **options,
    )
    assert same_weights(whole, resumed)
    assert history.epoch == [1, 2, 3] and history.curves == whole_history.curves
