"""The shared models: each trained once through the cache with its own settings, then loaded."""

import pytest

import vae_lib as V
from vae_lib import reference

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
def test_shared_model_trains_once_then_loads(
    tmp_path, monkeypatch, name, settings_name, get, cls, config
):
    monkeypatch.setenv("VAE_LIB_CACHE", str(tmp_path))
    settings = getattr(reference, settings_name)
    # one short epoch on 512 images instead of the real schedule, so the test stays quick
    monkeypatch.setattr(reference, settings_name, {**settings, "epochs": 1})
    load = reference.load_mnist
    monkeypatch.setattr(
        reference, "load_mnist", lambda split: V.MNIST(*(t[:512] for t in load(split)))
    )
    model, history = get("cpu", progress=False)
    assert type(model) is cls and model.config == config
    assert history.epoch == [1] and history.val_elbo
    for key, value in settings.items():  # every setting reached fit
        if key not in ("epochs", "train_split", "val_split"):
            assert history.settings[key] == value, key
    assert history.settings["n_train"] == 512
    assert len(list(tmp_path.glob(f"{name}-*.pt"))) == 1
    again, history_again = get("cpu", progress=False)
    assert history_again == history
    for a, b in zip(model.state_dict().values(), again.state_dict().values(), strict=True):
        assert (a == b).all()


def test_shared_models_have_distinct_cache_files(tmp_path, monkeypatch):
    monkeypatch.setenv("VAE_LIB_CACHE", str(tmp_path))
    for _, settings_name, *_ in MODELS:
        monkeypatch.setattr(
            reference, settings_name, {**getattr(reference, settings_name), "epochs": 1}
        )
    load = reference.load_mnist
    monkeypatch.setattr(
        reference, "load_mnist", lambda split: V.MNIST(*(t[:128] for t in load(split)))
    )
    for _, _, get, _, _ in MODELS:
        get("cpu", progress=False)
    assert len(list(tmp_path.glob("*.pt"))) == len(MODELS)
