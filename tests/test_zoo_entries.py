"""The shared models: zoo entries made from the library's constants, loaded by name."""

import dataclasses

import pytest

import vae_lib as V
from vae_lib import reference, zoo

MODELS = [
    ("reference_vae", "REFERENCE_TRAINING", V.VAE, V.REFERENCE_CONFIG),
    ("mnist_vae", "MNIST_VAE_TRAINING", V.VAE, V.MNIST_VAE_CONFIG),
    (
        "mnist_conv_vae",
        "MNIST_CONV_VAE_TRAINING",
        V.ConvVAE,
        V.MNIST_CONV_VAE_CONFIG,
    ),
    ("comparison_vae", "COMPARISON_TRAINING", V.VAE, V.REFERENCE_CONFIG),
    (
        "comparison_autoencoder",
        "COMPARISON_TRAINING",
        V.Autoencoder,
        V.COMPARISON_AE_CONFIG,
    ),
    (
        "comparison_denoising_autoencoder",
        "COMPARISON_TRAINING",
        V.DenoisingAutoencoder,
        V.COMPARISON_DAE_CONFIG,
    ),
]


@pytest.mark.parametrize("name, settings_name, cls, config", MODELS)
def test_each_shared_model_is_the_zoo_entry_of_the_library_constants(
    name, settings_name, cls, config
):
    e = zoo.entry(name)
    assert dict(e.recipe) == {**getattr(reference, settings_name), "seed": 0}
    assert type(e.build()) is cls and e.build().config == config
    assert zoo.ENTRIES[name].config == zoo._frozen(dataclasses.asdict(config))


@pytest.mark.parametrize("name, settings_name, cls, config", MODELS)
def test_each_shared_model_loads_with_its_history(name, settings_name, cls, config):
    model, record = zoo.load(name, "cpu", progress=False)
    history = record.history
    assert type(model) is cls and model.config == config and not model.training
    settings = getattr(reference, settings_name)
    assert history.epoch == list(range(1, settings["epochs"] + 1))
    assert len(history.val_elbo) == settings["epochs"]
    for key, value in settings.items():  # every setting reached fit
        if key not in ("train_split", "val_split"):
            assert history.settings[key] == value, key
    assert history.settings["n_train"] == 50_000


def test_shared_models_have_distinct_fingerprints():
    prints = [zoo.entry(name).fingerprint() for name, *_ in MODELS]
    assert len(set(prints)) == len(MODELS)


# -- the models chapters 1 and 5 load by name from the zoo -----------------------------------
ZOO_ONLY = [
    ("ring_vae", V.RING_VAE_TRAINING, V.VAE, V.RING_VAE_CONFIG),
    ("mnist_vae_2d", V.TWO_D_TRAINING, V.VAE, V.TWO_D_VAE_CONFIG),
    ("mnist_autoencoder_2d", V.TWO_D_TRAINING, V.Autoencoder, V.TWO_D_AE_CONFIG),
    *(
        (
            V.beta_vae_name(b, fb),
            {**V.BETA_TRAINING, "beta": b, "free_bits": fb},
            V.VAE,
            V.BETA_VAE_CONFIG,
        )
        for b, fb in [*((b, 0.0) for b in V.BETAS), V.FREE_BITS_RUN]
    ),
]


@pytest.mark.parametrize("name, settings, cls, config", ZOO_ONLY)
def test_each_chapter_model_is_the_zoo_entry_of_the_library_constants(name, settings, cls, config):
    e = zoo.entry(name)
    assert dict(e.recipe) == {**settings, "seed": 0}
    assert type(e.build()) is cls and e.build().config == config
    model, record = zoo.load(name, "cpu")
    for key, value in settings.items():  # every setting reached the training loop
        if key not in ("train_split", "val_split", "data", "data_seed"):
            assert record.history.settings[key] == value, key


def test_the_beta_sweep_names_say_beta_and_free_bits():
    assert V.beta_vae_name(0.5) == "beta_vae_0p5"
    assert V.beta_vae_name(16.0) == "beta_vae_16"
    assert V.beta_vae_name(16.0, 0.5) == "beta_vae_16_free_bits_0p5"
    assert len({V.beta_vae_name(b) for b in V.BETAS}) == len(V.BETAS)


def test_the_ring_vae_is_trained_on_the_ring_and_models_it():
    # its recipe's data: n_train points of sample_ring with the data seed, and its quick metric
    # is an ELBO of ring points (nats per point), far above that of an untrained model
    e = zoo.entry("ring_vae")
    assert e.data == "ring" and e.recipe["n_train"] == 20_000
    model, record = zoo.load("ring_vae", "cpu")
    untrained = e.build()
    assert zoo.quick_metric(model, "ring") > zoo.quick_metric(untrained, "ring") + 10
    with pytest.raises(ValueError, match="data must be one of"):
        zoo.quick_metric(model, "faces")
