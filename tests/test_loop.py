"""The one training loop (vae_lib.loop): its History, and resumable runs of every trainer that
plugs into it, bit-identical to uninterrupted ones."""

import json

import pytest
import torch

import vae_lib as V
from vae_lib import classifier as C
from vae_lib import gan as G
from vae_lib import loop as L
from vae_lib import rbm as R


# -- History ---------------------------------------------------------------------------------
def test_history_reads_curves_as_attributes_and_round_trips_through_json():
    h = V.History(epoch=[1, 2], train_elbo=[-120.0, -110.5], seconds=[3.0, 2.5], settings={"a": 1})
    assert h.train_elbo == [-110.5 + -9.5, -110.5] and h.total_seconds == 5.5
    again = V.History.from_dict(json.loads(json.dumps(h.to_dict())))
    assert again == h and again.curves == {"train_elbo": [-120.0, -110.5]}
    assert again.settings == {"a": 1}
    assert h != V.History(epoch=[1, 2], train_elbo=[-120.0, -110.0], seconds=[3.0, 2.5])


def test_history_names_its_curves_when_one_is_missing():
    h = V.History(train_loss=[0.5])
    with pytest.raises(AttributeError, match=r"no curve 'val_elbo'.*train_loss"):
        h.val_elbo  # noqa: B018


def test_history_append_adds_an_epoch_to_every_named_curve():
    h = V.History(train_kl=[], val_kl=[])
    h.append(1, 0.25, {"train_kl": 3.0, "val_kl": 2.0})
    h.append(2, 0.5, {"train_kl": 4.0, "val_kl": 2.5})
    assert h.epoch == [1, 2] and h.seconds == [0.25, 0.5]
    assert h.train_kl == [3.0, 4.0] and h.val_kl == [2.0, 2.5]


def test_every_family_returns_the_one_history_type(mnist_small):
    x, y = mnist_small[0][:64], torch.arange(64) % 10
    runs = {
        "vae": (V.VAE(V.VAEConfig(hidden_dims=(8,), latent_dim=2)), x),
        "gan": (G.GAN(G.GANConfig(latent_dim=4, generator_hidden=(8,))), x),
        "rbm": (R.RBM(R.RBMConfig(n_hidden=8)), x),
        "classifier": (C.DigitClassifier(C.ClassifierConfig(hidden_dims=(8,))), (x, y)),
    }
    histories = {
        name: V.fit(model, data, epochs=1, progress=False) for name, (model, data) in runs.items()
    }
    assert all(type(h) is V.History for h in histories.values())
    # the training curves are the model's curves (the GAN's without a prefix, as before);
    # without validation data the validation curves are there, and empty
    expected = {
        "vae": ("train_elbo", "train_reconstruction", "train_kl"),
        "gan": G.GAN_CURVES,
        "rbm": ("train_reconstruction",),
        "classifier": ("train_loss", "train_accuracy"),
    }
    for name, h in histories.items():
        model = runs[name][0]
        assert {k for k, v in h.curves.items() if v} == set(expected[name]), name
        assert all(len(h.curves[c]) == 1 for c in expected[name]), name
        assert {k for k, v in h.curves.items() if not v} == {f"val_{c}" for c in model.curves}
        assert h.epoch == [1] and h.settings["epochs"] == 1


# -- resumable runs of every trainer ---------------------------------------------------------
class Interrupt(Exception):
    """Raised by a step to simulate a run stopped part-way (Ctrl-C, the session ending)."""


def _interrupting(monkeypatch, after_steps: int) -> None:
    """Make the loop that :func:`vae_lib.fit` runs raise after ``after_steps`` steps."""
    real = L.train_loop

    def wrapped(state, history, *, step, **kwargs):
        count = {"n": 0}

        def counted(*args):
            count["n"] += 1
            if count["n"] > after_steps:
                raise Interrupt
            return step(*args)

        return real(state, history, step=counted, **kwargs)

    # training.py imports train_loop by name: that is the one fit calls
    monkeypatch.setattr(V.training, "train_loop", wrapped)


def _runs(x, y):
    """Each family on a tiny model: ``name -> run(checkpoint) -> (model, history)``."""
    common = {"epochs": 3, "batch_size": 32, "progress": False, "checkpoint_seconds": 0.0}

    def gan(path):
        torch.manual_seed(0)
        config = G.GANConfig(
            latent_dim=4, generator_hidden=(16,), discriminator_hidden=(16,), spectral_norm=True
        )
        model = G.GAN(config)
        return model, V.fit(
            model,
            x,
            generator_ema=0.9,  # the averages are loop tensors: resumed too
            lr_schedule="cosine",
            binarize="dynamic",
            seed=1,
            checkpoint=path,
            **common,
        )

    def rbm(path):
        torch.manual_seed(0)
        model = R.RBM(R.RBMConfig(n_hidden=12))
        return model, V.fit(
            model,
            x,
            k=2,
            val=x[:50],
            lr_schedule="cosine",
            seed=2,
            checkpoint=path,
            **common,
        )

    def classifier(path):
        torch.manual_seed(0)
        model = C.DigitClassifier(C.ClassifierConfig(hidden_dims=(16,)))
        return model, V.fit(
            model,
            (x, y),
            val=(x[:50], y[:50]),
            binarize_fraction=0.5,
            max_shift=1,
            seed=3,
            checkpoint=path,
            **common,
        )

    def vae(path):
        torch.manual_seed(0)
        model = V.VAE(V.VAEConfig(hidden_dims=(16,), latent_dim=2))
        return model, V.fit(
            model,
            x,
            val=x[:50],
            binarize="dynamic",
            kl_warmup_epochs=2,
            lr_schedule="cosine",
            seed=4,
            checkpoint=path,
            **common,
        )

    return {"gan": gan, "rbm": rbm, "classifier": classifier, "vae": vae}


@pytest.mark.parametrize("name", ["gan", "rbm", "classifier", "vae"])
def test_every_trainer_resumes_an_interrupted_run_to_the_same_bits(
    name, mnist_small, tmp_path, monkeypatch
):
    x, y = mnist_small[0][:128], torch.arange(128) % 10  # 4 steps per epoch
    run = _runs(x, y)[name]
    whole, whole_history = run(None)
    path = tmp_path / f"{name}.pt"
    with monkeypatch.context() as m:
        _interrupting(m, after_steps=9)  # in epoch 3, after two finished epochs
        with pytest.raises(Interrupt):
            run(path)
    assert torch.load(path, weights_only=True)["epoch"] == 2
    resumed, history = run(path)
    for a, b in zip(whole.state_dict().values(), resumed.state_dict().values(), strict=True):
        assert torch.equal(a, b)
    assert history.epoch == [1, 2, 3]
    assert history.curves == whole_history.curves


def test_the_rbm_checkpoint_keeps_its_persistent_chains(mnist_small, tmp_path):
    x = mnist_small[0][:64]
    path = tmp_path / "rbm.pt"
    V.fit(
        R.RBM(R.RBMConfig(n_hidden=8)),
        x,
        epochs=1,
        batch_size=32,
        n_chains=5,
        progress=False,
        checkpoint=path,
    )
    chain = torch.load(path, weights_only=True)["tensors"]["chain"]
    assert chain.shape == (5, 1, 28, 28) and set(chain.unique().tolist()) <= {0.0, 1.0}


def test_an_old_format_checkpoint_is_refused_with_advice(mnist_small, tmp_path):
    x = mnist_small[0][:64]
    path = tmp_path / "run.pt"
    model = V.VAE(V.VAEConfig(hidden_dims=(8,), latent_dim=2))
    V.fit(model, x, epochs=1, progress=False, checkpoint=path)
    state = torch.load(path, weights_only=True)
    state["format"] = 1
    torch.save(state, path)
    with pytest.raises(ValueError, match="another version of vae_lib.*delete it"):
        V.fit(model, x, epochs=1, progress=False, checkpoint=path)
