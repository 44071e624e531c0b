"""Chapter 8's models: a character language model of English words and recurrent VAEs of the
same words, trained naively (the posterior collapses) and with four remedies. All are trained
30 epochs over the 91,122 training words, validated on the 11,390 validation words."""

from ..sequence_vae import SequenceVAE, SequenceVAEConfig
from .datasets import words
from .entry import ZooEntry

_WORDS_TRAINING = {
    "epochs": 30,
    "batch_size": 128,
    "lr": 1e-3,
    "data": "words",
    "train_split": "train",
    "val_split": "val",
    "trainer": "sequence",
    "seed": 0,
}
#: The language model: the decoder alone (no z).
_LM = SequenceVAEConfig(embedding_dim=32, hidden_dim=64, decoder_hidden_dim=128, latent_dim=0)
#: The VAE: a small encoder, the language model's decoder, a 16-dimensional code.
_VAE = SequenceVAEConfig(embedding_dim=32, hidden_dim=64, decoder_hidden_dim=128, latent_dim=16)
#: The weaker decoder of the remedies: a quarter of the decoder's state.
_WEAK = SequenceVAEConfig(embedding_dim=32, hidden_dim=64, decoder_hidden_dim=32, latent_dim=16)

#: name -> (config, recipe changes, description): the naive VAE and the remedies (chapter 8
#: reads the descriptions).
WORDS_REMEDIES = {
    "words_vae": (_VAE, {}, "trained naively"),
    "words_vae_annealed": (_VAE, {"kl_warmup_epochs": 10}, "KL annealing, 10 epochs"),
    "words_vae_word_dropout": (_VAE, {"word_dropout": 0.5}, "word dropout 0.5"),
    "words_vae_free_bits": (_VAE, {"free_bits": 0.5}, "free bits, 0.5 nats per dimension"),
    "words_vae_weak_decoder": (_WEAK, {}, "a weaker decoder (32 units)"),
}

ENTRIES = [
    ZooEntry(
        "words_lm",
        SequenceVAE,
        _LM,
        _WORDS_TRAINING,
        "a character language model of English words, GRU 128 (chapter 8)",
        dataset=words,
        quick="words",
        measured=("measured_words",),
        chapter=8,
    ),
    *(
        ZooEntry(
            name,
            SequenceVAE,
            config,
            {**_WORDS_TRAINING, **changes},
            f"a recurrent VAE of English words, z of 16 dimensions, {text} (chapter 8)",
            dataset=words,
            quick="words",
            measured=("measured_words",),
            group="words_remedies",
            chapter=8,
        )
        for name, (config, changes, text) in WORDS_REMEDIES.items()
    ),
    # Bowman et al.'s own recipe: annealing and word dropout together
    ZooEntry(
        "words_vae_annealed_word_dropout",
        SequenceVAE,
        _VAE,
        {**_WORDS_TRAINING, "kl_warmup_epochs": 10, "word_dropout": 0.5},
        "a recurrent VAE of English words, z of 16 dimensions, KL annealing over 10 epochs and "
        "word dropout 0.5 together (chapter 8)",
        dataset=words,
        quick="words",
        measured=("measured_words",),
        chapter=8,
    ),
]
