"""The shared reference VAE: trained once through the cache, then loaded."""

import vae_lib as V
from vae_lib import reference


def test_reference_vae_trains_once_then_loads(tmp_path, monkeypatch):
    monkeypatch.setenv("VAE_LIB_CACHE", str(tmp_path))
    # one short epoch instead of the real schedule, so the test stays quick
    monkeypatch.setattr(
        reference, "REFERENCE_TRAINING", {**reference.REFERENCE_TRAINING, "epochs": 1}
    )
    model, history = V.reference_vae("cpu", progress=False)
    assert isinstance(model, V.VAE) and model.config == V.REFERENCE_CONFIG
    assert history.epoch == [1] and history.val_elbo and history.settings["binarize"] == "dynamic"
    assert len(list(tmp_path.glob("reference_vae-*.pt"))) == 1
    again, history_again = V.reference_vae("cpu", progress=False)
    assert history_again == history
    for a, b in zip(model.state_dict().values(), again.state_dict().values(), strict=True):
        assert (a == b).all()
