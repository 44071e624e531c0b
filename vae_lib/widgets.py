"""The book's trained models running live in the page: five widgets, plain JavaScript.

Each function returns an HTML object (:class:`WidgetHTML`, an ``IPython.display.HTML``) that a
notebook cell displays: a ``<div>`` with a unique id, the weights the widget needs as an inline
JSON payload, and its JavaScript (the files of ``vae_lib/js/``, read at call time and inlined).
Nothing is fetched: the same output works in Jupyter, in Colab, and in the built book opened
from ``file://`` or from a web server, with no kernel. The forward passes (MLPs, one GRU) run
in the page in float64 from the exported float32 or float16 weights, within 1e-4 of PyTorch.

* :func:`ring_widget` (chapter 1): drag z, see g(z) on the ring and the change-of-variables
  density there, beside the trained ring VAE's decoder f(z).
* :func:`latent_plane_widget` (chapter 5): 2-D latent planes with the encoded test digits as a
  scatter; the point under the pointer is decoded live.
* :func:`conditional_widget` (chapter 7): a digit and one slider per latent dimension of the
  class-conditional VAE; the same z written as every digit; a new z from the prior.
* :func:`word_path_widget` (chapter 8): two typed words encoded by the word VAE, the path
  between their codes decoded greedily as a slider moves, and a draw from the prior.
* :func:`gap_widget` (chapter 9): a test digit's exact posterior p(z|x) on the plane and a
  diagonal Gaussian q to drag over it; the ELBO L[q] is computed live in the page (the decoder
  on fixed draws), beside the exact log p(x) and their difference, KL(q || p(z|x)).

:func:`export_weights` turns a zoo model's tensors into the payload (base64, little-endian,
with the source checkpoint's sha256); :func:`payload_tensors` reads it back.
"""

from __future__ import annotations

import base64
import json
import math
import sys
import uuid
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from . import arguments
from .autoencoder import Autoencoder
from .conditional import ConditionalVAE
from .data import load_mnist
from .distributions import diagonal_gaussian_log_prob, standard_normal_log_prob
from .gaps import GridPosterior, fit_gaussian_posterior, grid_posterior
from .sequence_vae import SequenceVAE
from .toy import ring_log_density
from .vae import ACTIVATIONS, VAE
from .words import CharVocabulary
from .zoo import ZooRecord, load

#: The widgets' JavaScript, shipped as package data (pyproject.toml) and inlined into each widget.
JS_DIR = Path(__file__).resolve().parent / "js"
PAYLOAD_FORMAT = 1
#: The largest widget a chapter may add to its page (the issue's budget: weights and code).
PAGE_BUDGET_BYTES = 3_000_000

try:  # a notebook shows it; without IPython the object still has _repr_html_
    from IPython.display import HTML as _HTML
except ImportError:  # pragma: no cover - IPython comes with Jupyter

    class _HTML:  # type: ignore[no-redef]
        def __init__(self, data: str) -> None:
            self.data = data

        def _repr_html_(self) -> str:
            return self.data


class WidgetHTML(_HTML):
    """A widget's self-contained HTML (``.data``), displayed by Jupyter as HTML.

    Attributes:
        kind: ``"ring"``, ``"plane"``, ``"conditional"``, ``"words"`` or ``"gap"``.
        widget_id: the id of its ``<div>``; the page's test hook is ``window.vaeWidgets[id]``.
        sha256: the source checkpoint's sha256 of each exported model, by zoo name.
        nbytes: the size of the HTML in bytes (UTF-8): what the widget adds to a page.
    """

    def __init__(self, data: str, kind: str, widget_id: str, sha256: dict[str, str]) -> None:
        super().__init__(data=data)
        self.kind = kind
        self.widget_id = widget_id
        self.sha256 = dict(sha256)
        self.nbytes = len(data.encode("utf-8"))


# -- the payload ---------------------------------------------------------------------------------
def _tensor_spec(t: torch.Tensor, allow_half: bool = True) -> dict[str, Any]:
    """``t`` as ``{"shape", "dtype", "data"}``: base64 of its little-endian values, float16
    when that is exact (a checkpoint stored in float16 and loaded into float32), else float32."""
    t = t.detach().to("cpu", torch.float32).contiguous()
    if not bool(torch.isfinite(t).all()):
        raise ValueError("a tensor to export holds NaN or infinite values")
    half = t.to(torch.float16)
    exact = allow_half and torch.equal(half.to(torch.float32), t)
    values = half if exact else t
    array = values.numpy()
    if sys.byteorder != "little":  # pragma: no cover - every platform torch ships for is
        array = array.byteswap()
    return {
        "shape": list(t.shape),
        "dtype": "float16" if exact else "float32",
        "data": base64.b64encode(array.tobytes()).decode("ascii"),
    }


def export_weights(
    model: nn.Module, record: ZooRecord, prefixes: Sequence[str] = ("decoder.",)
) -> dict[str, Any]:
    """The tensors of ``model`` whose state-dict names start with one of ``prefixes``, as a
    JSON-ready payload for a widget.

    Each tensor is ``{"shape": [...], "dtype": "float16" | "float32", "data": base64}`` of its
    little-endian values: float16 where that holds the loaded float32 values exactly (the zoo
    stores some checkpoints in float16, so their values are float16 numbers), float32
    otherwise. Either way :func:`payload_tensors` gives back the model's tensors bit for bit.

    Args:
        model: a trained model (any device; it is not changed).
        record: its :class:`vae_lib.zoo.ZooRecord` (from :func:`vae_lib.zoo.load`), whose name
            and checkpoint sha256 are recorded beside the tensors.
        prefixes: which parameters to export, e.g. ``("decoder.",)`` for an image decoder, or
            ``("",)`` for all of them.

    Returns:
        ``{"format", "model", "sha256", "source", "tensors": {name: spec}}``.
    """
    if not isinstance(model, nn.Module):
        raise ValueError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    if not isinstance(record, ZooRecord):
        raise ValueError(
            f"record must be the model's ZooRecord (vae_lib.zoo.load returns it), got "
            f"{type(record).__name__}"
        )
    if isinstance(prefixes, str) or not prefixes or not all(isinstance(p, str) for p in prefixes):
        raise ValueError(f"prefixes must be a non-empty sequence of strings, got {prefixes!r}")
    state = model.state_dict()
    tensors = {}
    for prefix in prefixes:
        chosen = [k for k in state if k.startswith(prefix)]
        if not chosen:
            raise ValueError(
                f"no parameter of {type(model).__name__} starts with {prefix!r}; it has "
                f"{sorted(state)[:8]}"
            )
        for key in chosen:
            tensors[key] = _tensor_spec(state[key])
    return {
        "format": PAYLOAD_FORMAT,
        "model": record.name,
        "sha256": record.sha256,
        "source": record.source,
        "tensors": tensors,
    }


def payload_tensors(payload: Mapping[str, Any]) -> dict[str, torch.Tensor]:
    """The float32 tensors of an :func:`export_weights` payload, by name (the inverse)."""
    if not isinstance(payload, Mapping) or payload.get("format") != PAYLOAD_FORMAT:
        raise ValueError(f"not a widget payload of format {PAYLOAD_FORMAT}")
    out = {}
    for key, spec in payload["tensors"].items():
        dtype = {"float16": torch.float16, "float32": torch.float32}[spec["dtype"]]
        raw = bytearray(base64.b64decode(spec["data"]))
        flat = torch.frombuffer(raw, dtype=dtype) if raw else torch.empty(0, dtype=dtype)
        if sys.byteorder != "little":  # pragma: no cover
            flat = flat.byteswap()
        out[key] = flat.to(torch.float32).reshape(spec["shape"])
    return out


def _mlp_spec(model: nn.Module, attribute: str, output: str) -> dict[str, Any]:
    """How the page runs ``model.<attribute>``, an ``nn.Sequential`` of ``nn.Linear`` layers
    with the model's activation between them: the names of each layer's weight and bias."""
    seq = getattr(model, attribute, None)
    activation = model.config.activation
    if not isinstance(seq, nn.Sequential):
        raise ValueError(f"{type(model).__name__}.{attribute} is not an MLP (nn.Sequential)")
    layers = []
    for i, layer in enumerate(seq):
        if isinstance(layer, nn.Linear):
            if layer.bias is None:
                raise ValueError(f"{attribute}.{i} has no bias; the page expects one")
            layers.append([f"{attribute}.{i}.weight", f"{attribute}.{i}.bias"])
        elif not isinstance(layer, ACTIVATIONS[activation]):
            raise ValueError(f"{attribute}.{i} is a {type(layer).__name__}, not {activation}")
    return {"layers": layers, "activation": activation, "output": output}


# -- the HTML ------------------------------------------------------------------------------------
_STYLE = """
.vae-widget {font-size: 0.9rem; margin: 0.5rem 0 1rem; max-width: 100%;}
.vae-widget .vae-w-body {display: flex; flex-direction: column; gap: 0.3rem;}
.vae-widget .vae-w-row {display: flex; flex-wrap: wrap; gap: 0.8rem; align-items: flex-start;}
.vae-widget figure {margin: 0;}
.vae-widget figcaption {font-weight: 600; margin-bottom: 0.2rem;}
.vae-widget canvas.vae-w-plane {width: 300px; max-width: 100%; height: auto;
  border: 1px solid #888; touch-action: none; cursor: crosshair; background: #fff;}
.vae-widget canvas.vae-w-plane:focus {outline: 3px solid #1f77b4; outline-offset: 1px;}
.vae-widget canvas.vae-w-digit {width: 112px; height: 112px; image-rendering: pixelated;
  border: 1px solid #888; background: #fff;}
.vae-widget canvas.vae-w-big {width: 168px; height: 168px;}
.vae-widget canvas.vae-w-small {width: 56px; height: 56px;}
.vae-widget .vae-w-readout {font-family: monospace; margin: 0; max-width: 40rem;}
.vae-widget .vae-w-controls p, .vae-widget > .vae-w-body > p {margin: 0.15rem 0;}
.vae-widget .vae-w-word {font-size: 1.3rem; margin: 0.2rem 0;}
.vae-widget .vae-w-status {color: #b00020; margin: 0;}
.vae-widget input[type=range] {vertical-align: middle; width: 14rem;}
.vae-widget button {align-self: flex-start;}
.vae-widget label {margin-right: 0.3em;}
"""


def _read_js(name: str) -> str:
    path = JS_DIR / name
    if not path.is_file():
        raise FileNotFoundError(f"the widget script {path} is missing from the package")
    return path.read_text(encoding="utf-8")


def _json_for_script(data: Any) -> str:
    """JSON that cannot end the ``<script>`` element holding it."""
    text = json.dumps(data, separators=(",", ":"), allow_nan=False)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def _widget(kind: str, data: dict[str, Any], sha256: dict[str, str], title: str) -> WidgetHTML:
    widget_id = f"vae-w-{uuid.uuid4().hex[:12]}"
    attrs = f'class="vae-widget vae-widget-{kind}" id="{widget_id}" role="group"'
    attrs += f' aria-label="{title}"'
    html = (
        f"<div {attrs}>\n<style>{_STYLE}</style>\n"
        '<div class="vae-w-body"></div>\n'
        f'<script type="application/json">{_json_for_script(data)}</script>\n'
        f"<script>\n{_read_js('runtime.js')}</script>\n"
        f"<script>\n{_read_js(kind + '.js')}</script>\n"
        f'<script>vaeWidgetRuntime.mount("{kind}", "{widget_id}");</script>\n</div>'
    )
    return WidgetHTML(html, kind, widget_id, sha256)


def _check_model(name: str, model: object, kind: type, what: str) -> nn.Module:
    if not isinstance(model, kind):
        raise ValueError(f"{name} must be a {what}, got {type(model).__name__}")
    return model


def _view(codes: torch.Tensor) -> dict[str, list[float]]:
    """A square view that holds the middle 99 % of ``codes (N, 2)`` on each axis, with a
    margin of a tenth."""
    lo = torch.quantile(codes, 0.005, dim=0)
    hi = torch.quantile(codes, 0.995, dim=0)
    centre, half = (lo + hi) / 2, float((hi - lo).max()) / 2 * 1.1
    return {
        "lo": [round(float(c) - half, 4) for c in centre],
        "hi": [round(float(c) + half, 4) for c in centre],
    }


# -- the five widgets ---------------------------------------------------------------------------
def ring_widget(
    model: nn.Module | None = None,
    record: ZooRecord | None = None,
    *,
    start: tuple[float, float] = (0.8, 0.6),
) -> WidgetHTML:
    """Chapter 1: drag a point z of the plane and see x = g(z) = z/10 + z/||z|| on the ring,
    the density p_x(x) = p_z(z) * 10 r / s of the change-of-variables formula there (the
    shading of the right plane is that density), and the trained ring VAE's decoder f(z).

    Args:
        model, record: the zoo's ``ring_vae`` and its record (loaded on the CPU if ``None``):
            a :class:`vae_lib.VAE` with 2-D codes and 2-D Gaussian observations.
        start: the first z, ``(z1, z2)``.
    """
    if model is None:
        model, record = load("ring_vae", "cpu", progress=False)
    model = _check_model("model", model, VAE, "VAE of 2-D points (the zoo's ring_vae)")
    if model.latent_dim != 2 or tuple(model.input_shape) != (2,):
        raise ValueError("the ring widget needs a VAE from 2-D codes to 2-D points")
    start = arguments.real("start[0]", start[0]), arguments.real("start[1]", start[1])
    s = torch.linspace(1.0005, 1.6, 6000, dtype=torch.float64)
    peak = float(ring_log_density(torch.stack([s, torch.zeros_like(s)], -1)).exp().max())
    data = {
        "weights": export_weights(model, record),
        "mlp": _mlp_spec(model, "decoder", "identity"),
        "zExtent": 3.5,
        "xExtent": 1.9,
        "xShadeMax": 0.8 * peak,
        "start": list(start),
    }
    return _widget("ring", data, {record.name: record.sha256}, "the ring map, live")


def latent_plane_widget(
    panels: Mapping[str, tuple[nn.Module, ZooRecord, torch.Tensor]],
    labels: torch.Tensor,
    *,
    n_points: int = 3000,
) -> WidgetHTML:
    """Chapter 5: one latent plane per model, the encoded digits as a scatter coloured by
    label, and the image decoded live at the point under the pointer (drag, hover, arrow keys).

    Args:
        panels: title -> ``(model, record, codes)``: a :class:`vae_lib.VAE` or
            :class:`vae_lib.Autoencoder` with a 2-D code and a Bernoulli decoder, its zoo
            record, and the codes of the test images ``(N, 2)`` (:func:`vae_lib.encode_mean`).
        labels: ``(N,)`` the digits of those images, 0..9.
        n_points: how many of the codes to draw (the first ones), at most N.

    Returns:
        The widget: about 0.75 MB per panel for 784-256-256-2 decoders stored in float16.
    """
    if not isinstance(panels, Mapping) or not panels:
        raise ValueError("panels must be a non-empty mapping: title -> (model, record, codes)")
    if not isinstance(labels, torch.Tensor) or labels.dim() != 1:
        raise ValueError("labels must be a (N,) tensor of digits")
    n_points = arguments.positive_int("n_points", n_points)
    specs, sha = [], {}
    for title, entry in panels.items():
        if not isinstance(entry, tuple | list) or len(entry) != 3:
            raise ValueError(f"panels[{title!r}] must be (model, record, codes)")
        model, record, codes = entry
        _check_model(f"the model of {title!r}", model, VAE | Autoencoder, "VAE or Autoencoder")
        if model.latent_dim != 2 or model.likelihood != "bernoulli":
            raise ValueError(f"the model of {title!r} must have a 2-D code and Bernoulli pixels")
        if not isinstance(codes, torch.Tensor) or codes.dim() != 2 or codes.shape[1] != 2:
            raise ValueError(f"the codes of {title!r} must be (N, 2)")
        if codes.shape[0] != labels.shape[0]:
            raise ValueError(
                f"the codes of {title!r} are {codes.shape[0]}, the labels {labels.shape[0]}"
            )
        if n_points > codes.shape[0]:
            raise ValueError(f"n_points={n_points} but there are only {codes.shape[0]} codes")
        codes = codes.detach().to("cpu", torch.float32)
        shown = labels[:n_points].detach().cpu()
        if shown.is_floating_point() or shown.min() < 0 or shown.max() > 9:
            raise ValueError("labels must be integer digits 0..9")
        view = _view(codes)
        specs.append(
            {
                "title": str(title),
                "weights": export_weights(model, record),
                "mlp": _mlp_spec(model, "decoder", "sigmoid"),
                "imageShape": list(model.input_shape[-2:]),
                "view": view,
                "start": [(a + b) / 2 for a, b in zip(view["lo"], view["hi"], strict=True)],
                "codes": _tensor_spec(codes[:n_points].reshape(-1), allow_half=False),
                "labels": "".join(str(int(d)) for d in shown),
            }
        )
        sha[record.name] = record.sha256
    return _widget("plane", {"panels": specs}, sha, "latent planes, decoded live")


def conditional_widget(
    model: nn.Module | None = None,
    record: ZooRecord | None = None,
    *,
    digit: int = 3,
    slider_range: float = 3.0,
    step: float = 0.05,
    seed: int = 0,
) -> WidgetHTML:
    """Chapter 7: choose a digit and move one slider per latent dimension of a class-conditional
    VAE; the row below writes every digit with the same z; a button draws z ~ N(0, I) (a seeded
    generator in the page).

    Args:
        model, record: the zoo's ``digits_cvae`` and its record (loaded on the CPU if ``None``):
            a :class:`vae_lib.ConditionalVAE` whose condition is a one-hot label.
        digit: the digit shown first.
        slider_range: the sliders run over ``[-slider_range, slider_range]``.
        step: the sliders' step.
        seed: the seed of the page's draws from the prior.
    """
    if model is None:
        model, record = load("digits_cvae", "cpu", progress=False)
    model = _check_model("model", model, ConditionalVAE, "ConditionalVAE (digits_cvae)")
    classes = model.condition_dim
    if model.config.prior != "standard" or classes > 100:
        raise ValueError("the widget needs one-hot labels as the condition and the N(0, I) prior")
    digit = arguments.integer("digit", digit, minimum=0)
    if digit >= classes:
        raise ValueError(f"digit must be in [0, {classes}), got {digit}")
    slider_range = arguments.real("slider_range", slider_range, minimum=0.0, strict_minimum=True)
    step = arguments.real("step", step, minimum=0.0, strict_minimum=True)
    data = {
        "weights": export_weights(model, record),
        "mlp": _mlp_spec(model, "decoder", "sigmoid"),
        "latentDim": model.latent_dim,
        "classes": classes,
        "imageShape": list(model.input_shape[-2:]),
        "digit": digit,
        "range": slider_range,
        "step": step,
        "start": [0.0] * model.latent_dim,
        "seed": arguments.integer("seed", seed, minimum=0),
    }
    return _widget("conditional", data, {record.name: record.sha256}, "a conditional VAE, live")


def word_path_widget(
    model: nn.Module,
    record: ZooRecord,
    *,
    first: str = "cat",
    second: str = "dog",
    step: float = 0.05,
    max_length: int = 24,
    seed: int = 0,
) -> WidgetHTML:
    """Chapter 8: type two words; the word VAE's encoder gives the mean of q(z | x) of each,
    and the slider moves along the straight line between them while the decoder writes the word
    there greedily (as :meth:`vae_lib.SequenceVAE.greedy_decode`); a button decodes a draw from
    the prior. The whole model is exported (the encoder too: it reads the typed words).

    Args:
        model, record: a trained :class:`vae_lib.SequenceVAE` with a code (latent_dim > 0) and
            its zoo record.
        first, second: the words shown first (letters a-z).
        step: the slider's step along the path, in (0, 1].
        max_length: at most this many letters and end tokens per decoded word.
        seed: the seed of the page's draws from the prior.
    """
    model = _check_model("model", model, SequenceVAE, "SequenceVAE with a code")
    if not model.latent_dim:
        raise ValueError("a language model (latent_dim=0) has no code to move along")
    vocab = CharVocabulary()
    vocab.check_words("the two words", [first, second])
    step = arguments.real("step", step, minimum=0.0, strict_minimum=True)
    if step > 1 or abs(round(1 / step) * step - 1) > 1e-9:
        raise ValueError(f"step must divide 1 (0.05, 0.1, 0.125, ...), got {step}")
    data = {
        "weights": export_weights(model, record, prefixes=("",)),
        "letters": vocab.letters,
        "latentDim": model.latent_dim,
        "maxLength": arguments.positive_int("max_length", max_length),
        "words": [first, second],
        "step": step,
        "seed": arguments.integer("seed", seed, minimum=0),
    }
    return _widget("words", data, {record.name: record.sha256}, "paths between words, live")


#: At most this many images in one gap widget (each adds its posterior's shading to the page).
GAP_MAX_IMAGES = 12


def _check_gap_images(model: VAE, images: Any) -> torch.Tensor:
    """``images (B, *input_shape)`` in [0, 1], 1 <= B <= GAP_MAX_IMAGES, on the CPU."""
    shape = tuple(model.input_shape)
    if not isinstance(images, torch.Tensor) or not images.is_floating_point():
        raise ValueError(
            f"images must be a floating-point tensor (B, {', '.join(map(str, shape))}), got "
            f"{type(images).__name__}"
        )
    if images.dim() != len(shape) + 1 or tuple(images.shape[1:]) != shape:
        raise ValueError(
            f"images has shape {tuple(images.shape)}; expected (B, {', '.join(map(str, shape))})"
        )
    if not 1 <= images.shape[0] <= GAP_MAX_IMAGES:
        raise ValueError(f"images must hold 1 to {GAP_MAX_IMAGES} images, got {images.shape[0]}")
    images = images.detach().to("cpu", torch.float32)
    if not bool(torch.isfinite(images).all()) or images.min() < 0 or images.max() > 1:
        raise ValueError("images must hold pixel values in [0, 1] (Bernoulli observations)")
    return images


def _check_q_star(q_star: Any, batch: int) -> tuple[torch.Tensor, torch.Tensor]:
    if not isinstance(q_star, tuple | list) or len(q_star) != 2:
        raise ValueError("q_star must be a pair (mu, logvar) of (B, 2) tensors")
    out = []
    for name, t in zip(("q_star mu", "q_star logvar"), q_star, strict=True):
        arguments.shaped_tensor(name, t, (2,), sizes="2")
        if t.shape[0] != batch:
            raise ValueError(f"{name} has {t.shape[0]} rows but there are {batch} images")
        t = t.detach().to("cpu", torch.float32)
        if not bool(torch.isfinite(t).all()):
            raise ValueError(f"{name} holds NaN or infinite values")
        out.append(t)
    return out[0], out[1]


def _best_gaussian(
    model: VAE, x: torch.Tensor, grid: Any, mu: torch.Tensor, logvar: torch.Tensor, seed: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """q* for each image as chapter 9 finds it: Adam from two starts (the encoder's q and the
    exact posterior's mean and variances), 200 steps at lr 1e-2 with 8 draws, 200 at 1e-3 with
    32; the start whose end has the larger ELBO (2,000 fresh draws) is kept."""
    batch = x.shape[0]
    starts = (
        torch.cat([mu, grid.mean()]),
        torch.cat([logvar, grid.covariance().diagonal(dim1=1, dim2=2).log()]),
    )
    gen = torch.Generator(x.device).manual_seed(seed)
    both = torch.cat([x, x])
    rough = fit_gaussian_posterior(
        model, both, steps=200, lr=1e-2, n_samples=8, generator=gen, init=starts
    )
    fine = fit_gaussian_posterior(
        model, both, steps=200, lr=1e-3, n_samples=32, generator=gen, init=(rough.mu, rough.logvar)
    )
    ends = fine.elbo(2000, generator=gen).view(2, batch)
    pick = ends.argmax(0) * batch + torch.arange(batch, device=ends.device)
    return fine.mu[pick], fine.logvar[pick]


@torch.no_grad()
def _gap_reference(
    model: VAE, x: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor, n: int, seed: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(B,)`` the ELBO of q = N(mu, diag exp(logvar)) from n fresh draws per image (in
    chunks of 256), and its standard error: the accurate values beside the page's S draws."""
    gen = torch.Generator().manual_seed(seed)
    weights = []
    for start in range(0, n, 256):
        eps = torch.randn(min(256, n - start), *mu.shape, generator=gen)
        eps = eps.to(x.device, x.dtype)
        m, lv = mu.to(x.device, x.dtype), logvar.to(x.device, x.dtype)
        z = m + torch.exp(0.5 * lv) * eps
        w = model.log_px_given_z(x, z) + standard_normal_log_prob(z)
        weights.append((w - diagonal_gaussian_log_prob(z, m, lv)).cpu().double())
    w = torch.cat(weights)
    return w.mean(0), w.std(0) / math.sqrt(n)


def gap_widget(
    model: nn.Module | None = None,
    record: ZooRecord | None = None,
    *,
    images: torch.Tensor | None = None,
    q_star: tuple[torch.Tensor, torch.Tensor] | None = None,
    grid: GridPosterior | None = None,
    n_draws: int = 32,
    seed: int = 0,
    resolution: int = 64,
    width: float = 4.0,
    n_reference: int = 4096,
) -> WidgetHTML:
    """Chapter 9: the gap log p(x) - L[q] = KL(q || p(z|x)), live, for a VAE with a 2-D code.

    For the test image chosen, the plane is shaded by the exact posterior p(z|x) and shows the
    1- and 2-standard-deviation ellipses of a diagonal Gaussian q. Drag q's centre (or use the
    arrow keys, shift for five steps), move the sliders of log sigma_1 and log sigma_2, or set q
    to the encoder's q(z|x) or to the best diagonal Gaussian q* with the buttons. The page then
    computes the ELBO L[q] = mean_s [log p(x | z_s) + log N(z_s; 0, I) - log q(z_s)] with
    z_s = mu + sigma eps_s for ``n_draws`` fixed standard-normal draws eps_s (the same for every
    q, so the number moves smoothly), running the decoder itself, and shows it beside the exact
    log p(x) and their difference, the gap (a KL divergence, up to Monte Carlo error; the
    estimate's standard error is shown), on a bar that marks the gaps of q and q* (the same
    draws); the gaps of q and q* from ``n_reference`` fresh draws are shown too.

    Precomputed here: log p(x) by :func:`vae_lib.gaps.grid_posterior` (``n=401`` on
    [-4, 4]^2); the posterior's log density log p(x|z) + log N(z; 0, I) - log p(x) on a
    ``resolution`` x ``resolution`` window centred on the posterior's mean, ``width`` posterior
    standard deviations (the larger one) on each side and wide enough for the 2-standard-deviation
    ellipses of q and q* (stored in float16, clamped 30 nats below its peak); the encoder's
    (mu, logvar); q* (:func:`vae_lib.gaps.fit_gaussian_posterior` as chapter 9 runs it, about
    5 s for six images on one CPU thread, unless ``q_star`` is given); and the ELBOs of both
    from ``n_reference`` fresh draws.

    Args:
        model, record: the zoo's ``mnist_vae_2d`` and its record (loaded on the CPU if ``None``):
            a :class:`vae_lib.VAE` with a 2-D code, Bernoulli pixels, the prior N(0, I) and an
            MLP decoder.
        images: ``(B, 1, 28, 28)`` observations in [0, 1], 1 <= B <= 12; default: the first
            six test images, binarized once with seed 0 (as chapters 5 and 9 load them).
        q_star: optional ``(mu, logvar)``, each ``(B, 2)``: the best diagonal Gaussian of each
            image, e.g. the chapter's own fit; fitted here if ``None``.
        grid: optional ``grid_posterior(model, images, n=401)`` already computed for these
            images (the chapter has it: about 4 s saved); computed here if ``None``.
        n_draws: the number S of fixed draws eps_s (one set, shared by every image and q).
        seed: the seed of the draws eps_s and of the fit of q*.
        resolution: nodes per side of the shaded window, 16 to 128.
        width: the window's half-width in posterior standard deviations, > 0.
        n_reference: fresh draws per image for the accurate gaps of q and q*, >= 2.

    Returns:
        The widget: about 0.8 MB for six images (the decoder's weights in float16 most of it).
    """
    if model is None:
        model, record = load("mnist_vae_2d", "cpu", progress=False)
    model = _check_model("model", model, VAE, "VAE with a 2-D code (the zoo's mnist_vae_2d)")
    if model.latent_dim != 2 or model.likelihood != "bernoulli":
        raise ValueError("the gap widget needs a VAE with a 2-D code and Bernoulli pixels")
    if callable(getattr(model, "log_prior", None)):
        raise ValueError("the gap widget needs the prior N(0, I), not a learned prior")
    if not isinstance(record, ZooRecord):
        raise ValueError(f"record must be the model's ZooRecord, got {type(record).__name__}")
    if images is None:
        images = load_mnist("test", binarize="static", seed=0).images[:6]
    images = _check_gap_images(model, images)
    batch = images.shape[0]
    if q_star is not None:
        q_star = _check_q_star(q_star, batch)
    if grid is not None and (
        not isinstance(grid, GridPosterior) or tuple(grid.log_px.shape) != (batch,)
    ):
        raise ValueError(
            f"grid must be the GridPosterior of these {batch} images (vae_lib.gaps.grid_posterior)"
        )
    n_draws = arguments.integer("n_draws", n_draws, minimum=2)
    seed = arguments.integer("seed", seed, minimum=0)
    resolution = arguments.integer("resolution", resolution, minimum=16)
    if resolution > 128:
        raise ValueError(f"resolution must be at most 128, got {resolution}")
    width = arguments.real("width", width, minimum=0.0, strict_minimum=True)
    n_reference = arguments.integer("n_reference", n_reference, minimum=2)
    mlp = _mlp_spec(model, "decoder", "identity")

    param = next(model.parameters())
    x = images.to(param.device, param.dtype)
    if grid is None:
        grid = grid_posterior(model, x, n=401)
    with torch.no_grad():
        mu, logvar = model.encode(x)
    if q_star is None:
        q_star = _best_gaussian(model, x, grid, mu, logvar, seed)
    star_mu, star_logvar = (t.detach().to("cpu", torch.float32) for t in q_star)
    mu, logvar = mu.cpu().float(), logvar.cpu().float()
    reference = {
        name: _gap_reference(model, x, m, lv, n_reference, seed + 1)
        for name, (m, lv) in (("encoder", (mu, logvar)), ("best", (star_mu, star_logvar)))
    }
    centre = grid.mean().cpu().double()
    post_sd = grid.covariance().diagonal(dim1=1, dim2=2).clamp_min(0).sqrt().cpu().double()

    specs, log_sigmas = [], []
    for b in range(batch):
        half = width * float(post_sd[b].max())
        for m, lv in ((mu[b], logvar[b]), (star_mu[b], star_logvar[b])):
            reach = (m.double() - centre[b]).abs() + 2.5 * torch.exp(0.5 * lv.double())
            half = max(half, float(reach.max()))
        lo = [float(c) - half for c in centre[b]]
        hi = [float(c) + half for c in centre[b]]
        # nodes at the centres of resolution^2 cells; row 0 at the top (largest z_2)
        step = 2 * half / resolution
        z1 = torch.tensor(lo[0]) + (torch.arange(resolution) + 0.5) * step
        z2 = torch.tensor(hi[1]) - (torch.arange(resolution) + 0.5) * step
        rows, cols = torch.meshgrid(z2, z1, indexing="ij")
        nodes = torch.stack([cols, rows], dim=-1).reshape(-1, 1, 2).to(param.device, param.dtype)
        with torch.no_grad():
            log_joint = model.log_px_given_z(x[b : b + 1], nodes)[:, 0]
            log_joint = log_joint + standard_normal_log_prob(nodes)[:, 0]
        log_density = (log_joint.cpu().double() - float(grid.log_px[b])).float()
        peak = float(log_density.max())
        shade = log_density.clamp_min(peak - 30).to(torch.float16).to(torch.float32)
        specs.append(
            {
                "pixels": _tensor_spec(images[b].reshape(-1)),
                "logPx": float(grid.log_px[b]),
                "edgeMass": float(grid.edge_mass[b]),
                "lo": lo,
                "hi": hi,
                "logDensity": _tensor_spec(shade),
                "posteriorMean": [float(c) for c in centre[b]],
                "posteriorSd": [float(s) for s in post_sd[b]],
                "encoder": {"mu": mu[b].tolist(), "logSigma": (0.5 * logvar[b]).tolist()},
                "best": {"mu": star_mu[b].tolist(), "logSigma": (0.5 * star_logvar[b]).tolist()},
                # log p(x) - L[q] from n_reference fresh draws, and its standard error
                "referenceGap": {
                    name: [float(grid.log_px[b]) - float(e[b]), float(se[b])]
                    for name, (e, se) in reference.items()
                },
            }
        )
        log_sigmas += [math.log(float(post_sd[b].min())), math.log(half)]
        log_sigmas += (0.5 * logvar[b]).tolist() + (0.5 * star_logvar[b]).tolist()
    eps = torch.randn(n_draws, 2, generator=torch.Generator().manual_seed(seed))
    data = {
        "weights": export_weights(model, record),
        "mlp": mlp,
        "imageShape": list(model.input_shape[-2:]),
        "resolution": resolution,
        "eps": eps.tolist(),
        "images": specs,
        "logSigmaRange": [
            math.floor(10 * (min(log_sigmas) - 1.5)) / 10,
            math.ceil(10 * max(log_sigmas)) / 10,
        ],
        "logSigmaStep": 0.02,
        "nReference": n_reference,
    }
    return _widget("gap", data, {record.name: record.sha256}, "the gap, live")
