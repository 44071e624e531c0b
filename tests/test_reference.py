"""The shared models: zoo entries made from the library's constants, loaded by name."""

import dataclasses

import pytest

import vae_lib as V
from vae_lib import reference, zoo

MODELS = [
    ("reference_vae", "REFERENCE_TRAINING", V.reference_vae, V.VAE, V.REFERENCE_CONFIG),
    ("mnist_vae", "MNIST_VAE_TRAINING", V.mnist_vae, V.VAE, V.MNIST_VAE_CONFIG),
    (
        "mnist_conv_vae",
        "MNIST_CONV_VAE_TRAINING",
        V.mnist_conv_vae,
        V.ConvVAE,
        V.MNIST_CONV_VAE_CONFIG,
    ),
    ("comparison_vae", "COMPARISON_TRAINING", V.comparison_vae, V.VAE, V.REFERENCE_CONFIG),
    (
        "comparison_autoencoder",
        "COMPARISON_TRAINING",
        V.comparison_autoencoder,
        V.Autoencoder,
        V.COMPARISON_AE_CONFIG,
    ),
    (
        "comparison_denoising_autoencoder",
        "COMPARISON_TRAINING",
        V.comparison_denoising_autoencoder,
        V.DenoisingAutoencoder,
        V.COMPARISON_DAE_CONFIG,
    ),
]


@pytest.mark.parametrize("name, settings_name, get, cls, config", MODELS)
def test_each_shared_model_is_the_zoo_entry_of_the_library_constants(
    name, settings_name, get, cls, config
):
    e = zoo.entry(name)
    assert dict(e.recipe) == {**getattr(reference, settings_name), "seed": 0}
    assert type(e.build()) is cls and e.build().config == config
    assert zoo.ENTRIES[name].config == zoo._frozen(dataclasses.asdict(config))


@pytest.mark.parametrize("name, settings_name, get, cls, config", MODELS)
def test_each_shared_model_loads_with_its_history(name, settings_name, get, cls, config):
    model, history = get("cpu", progress=False)
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
