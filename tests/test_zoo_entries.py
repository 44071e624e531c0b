"""The zoo's entries, as the chapters declare them (``vae_lib/zoo/ch*.py``): each builds its
model, loads trained with the history of its recipe, and the entries a chapter compares differ
only where the chapter says they do."""

import pytest

import vae_lib as V
from vae_lib import zoo
from vae_lib.zoo.ch05_training import BETAS, FREE_BITS_RUN, beta_vae_name

#: The settings a history records under another name than the recipe's, or not at all.
NOT_IN_SETTINGS = {"train_split", "val_split", "data", "data_seed", "trainer", "n_train", "seed"}
#: The image models: their shipped histories record every setting of their recipe.
IMAGE_MODELS = [
    name
    for name, e in zoo.ENTRIES.items()
    if e.model in ("VAE", "ConvVAE", "Autoencoder", "DenoisingAutoencoder")
]


@pytest.mark.parametrize("name", sorted(zoo.ENTRIES))
def test_each_entry_loads_its_model_class_trained_for_its_epochs(name):
    e = zoo.entry(name)
    model, record = zoo.load(name, "cpu", progress=False)
    assert type(model) is e.model_class and model.config == e.config_object
    assert not model.training
    assert record.history.epoch == list(range(1, e.recipe["epochs"] + 1))
    assert set(e.fit_options()) <= set(e.model_class.Options.__dataclass_fields__)


@pytest.mark.parametrize("name", IMAGE_MODELS)
def test_every_setting_of_an_image_models_recipe_reached_its_training(name):
    e = zoo.entry(name)
    _, record = zoo.load(name, "cpu", progress=False)
    for key, value in e.recipe.items():
        if key not in NOT_IN_SETTINGS:
            assert record.history.settings[key] == value, key
    expected = 20_000 if e.data == "ring" else 50_000
    assert record.history.settings["n_train"] == expected


def test_the_comparison_models_share_their_networks_and_recipe():
    vae, ae, dae = (
        zoo.entry(f"comparison_{k}") for k in ("vae", "autoencoder", "denoising_autoencoder")
    )
    assert vae.recipe == ae.recipe == dae.recipe
    for key in ("input_shape", "hidden_dims", "latent_dim"):
        assert vae.config[key] == ae.config[key] == dae.config[key]
    assert zoo.entry("reference_vae").config == vae.config


def test_entries_have_distinct_fingerprints():
    prints = {e.fingerprint() for e in zoo.ENTRIES.values()}
    assert len(prints) == len(zoo.ENTRIES)


def test_the_beta_sweep_names_say_beta_and_free_bits():
    assert beta_vae_name(0.5) == "beta_vae_0p5"
    assert beta_vae_name(16.0) == "beta_vae_16"
    assert beta_vae_name(16.0, 0.5) == "beta_vae_16_free_bits_0p5"
    sweep = [e.name for e in zoo.group("beta_sweep")]
    assert sweep == [beta_vae_name(b) for b in BETAS] + [beta_vae_name(*FREE_BITS_RUN)]


def test_the_ring_vae_is_trained_on_the_ring_and_models_it():
    # its recipe's data: n_train points of sample_ring with the data seed, and its quick metric
    # is an ELBO of ring points (nats per point), far above that of an untrained model
    e = zoo.entry("ring_vae")
    assert e.data == "ring" and e.recipe["n_train"] == 20_000
    model, _ = zoo.load("ring_vae", "cpu")
    untrained = e.build()
    assert zoo.quick_metric("ring_vae", model) > zoo.quick_metric("ring_vae", untrained) + 10
    with pytest.raises(ValueError, match="is a VAE, got a GAN"):
        zoo.quick_metric("ring_vae", zoo.entry("mnist_gan").build())
    assert isinstance(model, V.Trainable)
