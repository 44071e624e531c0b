"""Chapter 9's models: the book's MLP VAE with an inverse autoregressive flow posterior, and
with a learned prior.

``mnist_vae_iaf`` is ``mnist_vae`` (784-400-400-32, ELU, Bernoulli decoder; Adam, cosine
learning rate, KL warm-up over 10 epochs, dynamically binarized MNIST, 400 epochs) whose
posterior q(z | x) is the encoder's Gaussian followed by IAF steps conditioned on a context
vector h from the encoder (:class:`vae_lib.flow_vae.FlowVAE`). Its test NLL is measured, as
``mnist_vae``'s, with the papers' protocol.

``mnist_vae_vamp`` is ``mnist_vae`` with the VampPrior (Tomczak & Welling, 2018) in place of
N(0, I): p(z) is the mixture of the encoder's posteriors at 100 learned pseudo-inputs
(:class:`vae_lib.vamp_prior.VampPriorVAE`); same recipe.
"""

from ..flow_vae import FlowVAE, FlowVAEConfig
from ..vamp_prior import VampPriorConfig, VampPriorVAE
from .ch05_training import ADAM_COSINE_ON_MNIST
from .datasets import mnist_images
from .entry import ZooEntry

#: The flow: 4 IAF steps, each a MADE with two hidden layers of 128 units, conditioned on a
#: context of 32 numbers from the encoder (1.14 M parameters in all, 0.14 M of them the flow's).
#: On one CPU thread a training step costs about 1.4 times mnist_vae's, an epoch with its
#: validation about 1.25 times (a 15-epoch pilot: 267 s against 216 s).
IAF_CONFIG = FlowVAEConfig(
    input_shape=(1, 28, 28),
    hidden_dims=(400, 400),
    latent_dim=32,
    activation="elu",
    flow_steps=4,
    flow_hidden_dims=(128, 128),
    context_dim=32,
)

#: The learned prior: 100 pseudo-inputs (78,400 numbers; Tomczak & Welling use 500, which would
#: not fit the zoo's 50 MB beside the rest). A training step costs about 1.5 times
#: mnist_vae's on one CPU thread (the encoder also runs on the pseudo-inputs).
VAMP_CONFIG = VampPriorConfig(
    input_shape=(1, 28, 28),
    hidden_dims=(400, 400),
    latent_dim=32,
    activation="elu",
    pseudo_inputs=100,
)

ENTRIES = [
    ZooEntry(
        "mnist_vae_iaf",
        FlowVAE,
        IAF_CONFIG,
        {"epochs": 400, **ADAM_COSINE_ON_MNIST, "kl_warmup_epochs": 10, "beta": 1.0, "seed": 0},
        "the book's MLP VAE with an IAF posterior, 4 steps of 128-128 MADEs, 400 epochs "
        "(chapter 9)",
        dataset=mnist_images,
        quick="elbo",
        measured=("nll", "gaps"),
        chapter=9,
        storage="float16",
    ),
    ZooEntry(
        "mnist_vae_vamp",
        VampPriorVAE,
        VAMP_CONFIG,
        {"epochs": 400, **ADAM_COSINE_ON_MNIST, "kl_warmup_epochs": 10, "beta": 1.0, "seed": 0},
        "the book's MLP VAE with a VampPrior of 100 pseudo-inputs, 400 epochs (chapter 9)",
        dataset=mnist_images,
        quick="elbo",
        measured=("nll", "frechet"),
        chapter=9,
        storage="float16",
    ),
]
