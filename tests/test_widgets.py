"""The in-page widgets (:mod:`vae_lib.widgets`): the exported payload gives back the model's
tensors exactly and names its checkpoint; the HTML needs nothing from outside; and, in a real
browser, each widget opened from ``file://`` decodes as PyTorch does (64 fixed codes per model,
max abs difference 1e-4; the same greedy words; chapter 9's ELBO on the page's own draws),
follows its controls (drag, hover, arrow keys, sliders, typing, buttons) to the decode
expected, and can be reached with the Tab key.

The browser tests drive Debian's Chromium with Playwright, as ``tests/test_pages.py`` does; they
are skipped where no browser is installed, unless ``VAE_BOOK_REQUIRE_BROWSER=1`` (CI). Decode
times are printed (``-s``), never asserted here: ``benchmarks/check_widgets.py`` holds the
timing budget for the built book.
"""

from __future__ import annotations

import copy
import importlib.util
import json
import math
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from vae_lib import (
    CharVocabulary,
    load_mnist,
    one_hot,
    ring_log_density,
    ring_map,
    widgets,
    zoo,
)
from vae_lib.gaps import GridPosterior, grid_posterior

ROOT = Path(__file__).resolve().parent.parent
REQUIRE = os.environ.get("VAE_BOOK_REQUIRE_BROWSER", "") not in ("", "0")
TOLERANCE = 1e-4
NAMES = ("ring_vae", "mnist_vae_2d", "mnist_autoencoder_2d", "digits_cvae", "words_vae_free_bits")


@pytest.fixture(scope="module")
def models():
    return {name: zoo.load(name, "cpu", progress=False) for name in NAMES}


def fixed_codes(n: int, dim: int, seed: int, scale: float = 1.0) -> torch.Tensor:
    return torch.randn(n, dim, generator=torch.Generator().manual_seed(seed)) * scale


@pytest.fixture(scope="module")
def plane_codes():
    # the scatter's content does not matter to decoding: codes of the right shapes, no data
    codes = fixed_codes(500, 2, 1)
    labels = torch.arange(500) % 10
    return codes, labels


@pytest.fixture(scope="module")
def html(models, plane_codes):
    codes, labels = plane_codes
    vae, vae_record = models["mnist_vae_2d"]
    ae, ae_record = models["mnist_autoencoder_2d"]
    return {
        "ring": widgets.ring_widget(*models["ring_vae"]),
        "plane": widgets.latent_plane_widget(
            {"autoencoder": (ae, ae_record, codes * 20), "VAE": (vae, vae_record, codes)},
            labels,
            n_points=500,
        ),
        "conditional": widgets.conditional_widget(*models["digits_cvae"]),
        "words": widgets.word_path_widget(*models["words_vae_free_bits"]),
        "gap": widgets.gap_widget(vae, vae_record),
    }


# -- the payload ---------------------------------------------------------------------------------
@pytest.mark.parametrize("name", NAMES)
def test_the_payload_gives_back_the_models_tensors_and_names_its_checkpoint(models, name):
    model, record = models[name]
    prefixes = ("",) if name.startswith("words") else ("decoder.",)
    payload = json.loads(json.dumps(widgets.export_weights(model, record, prefixes)))
    tensors = widgets.payload_tensors(payload)
    state = {k: v for k, v in model.state_dict().items() if k.startswith(prefixes)}
    assert sorted(tensors) == sorted(state)
    for key, value in state.items():
        assert torch.equal(tensors[key], value.float()), key
    manifest = zoo.read_manifest()["models"][name]
    assert payload["sha256"] == manifest["sha256"] == record.sha256
    assert payload["model"] == name
    # float16 only where the checkpoint is stored so (its values are float16 numbers)
    stored_half = (manifest.get("storage") or {}).get("dtype") == "float16"
    dtypes = {spec["dtype"] for spec in payload["tensors"].values()}
    assert dtypes == ({"float16"} if stored_half else {"float32"})


def test_float32_values_that_float16_cannot_hold_are_kept_in_float32(models):
    _, record = models["ring_vae"]
    layer = torch.nn.Sequential(torch.nn.Linear(3, 2))
    with torch.no_grad():
        layer[0].weight.copy_(torch.tensor([[0.1, 1.0, 2.0], [0.5, -0.25, 1 / 3]]))
        layer[0].bias.copy_(torch.tensor([0.5, 1024.0]))
    payload = widgets.export_weights(layer, record, ("0.",))
    assert payload["tensors"]["0.weight"]["dtype"] == "float32"  # 0.1 and 1/3 are not float16
    assert payload["tensors"]["0.bias"]["dtype"] == "float16"
    back = widgets.payload_tensors(payload)
    assert torch.equal(back["0.weight"], layer[0].weight.detach())
    assert torch.equal(back["0.bias"], layer[0].bias.detach())


def test_export_checks_its_arguments(models):
    model, record = models["ring_vae"]
    with pytest.raises(ValueError, match="nn.Module"):
        widgets.export_weights("model", record)
    with pytest.raises(ValueError, match="ZooRecord"):
        widgets.export_weights(model, {"sha256": "x"})
    with pytest.raises(ValueError, match="starts with 'no_such'"):
        widgets.export_weights(model, record, ("no_such",))
    with pytest.raises(ValueError, match="sequence of strings"):
        widgets.export_weights(model, record, "decoder.")
    with pytest.raises(ValueError, match="payload"):
        widgets.payload_tensors({"format": 99})


def test_the_widgets_check_their_arguments(models, plane_codes):
    codes, labels = plane_codes
    vae, vae_record = models["mnist_vae_2d"]
    words, words_record = models["words_vae_free_bits"]
    with pytest.raises(ValueError, match=r"\(N, 2\)"):
        widgets.latent_plane_widget({"VAE": (vae, vae_record, codes[:, :1])}, labels)
    with pytest.raises(ValueError, match="n_points"):
        widgets.latent_plane_widget({"VAE": (vae, vae_record, codes)}, labels, n_points=501)
    with pytest.raises(ValueError, match="VAE or Autoencoder"):
        widgets.latent_plane_widget({"words": (words, words_record, codes)}, labels)
    with pytest.raises(ValueError, match="digit must be in"):
        widgets.conditional_widget(*models["digits_cvae"], digit=10)
    with pytest.raises(ValueError, match="letters"):
        widgets.word_path_widget(words, words_record, first="Cat")
    with pytest.raises(ValueError, match="step must divide 1"):
        widgets.word_path_widget(words, words_record, step=0.3)
    with pytest.raises(ValueError, match="2-D"):
        widgets.ring_widget(vae, vae_record)


def gap_payload(widget) -> dict:
    return json.loads(
        re.search(r'<script type="application/json">(.*?)</script>', widget.data).group(1)
    )


def test_the_gap_widget_checks_its_arguments(models):
    vae, vae_record = models["mnist_vae_2d"]
    ring, ring_record = models["ring_vae"]
    words, words_record = models["words_vae_free_bits"]
    x = torch.zeros(2, 1, 28, 28)
    with pytest.raises(ValueError, match="2-D code and Bernoulli pixels"):
        widgets.gap_widget(ring, ring_record, images=x)
    with pytest.raises(ValueError, match="VAE with a 2-D code"):
        widgets.gap_widget(words, words_record, images=x)
    with pytest.raises(ValueError, match="VAE with a 2-D code"):
        widgets.gap_widget("mnist_vae_2d", vae_record, images=x)
    with pytest.raises(ValueError, match="ZooRecord"):
        widgets.gap_widget(vae, None, images=x)
    with pytest.raises(ValueError, match=r"expected \(B, 1, 28, 28\)"):
        widgets.gap_widget(vae, vae_record, images=torch.zeros(2, 784))
    with pytest.raises(ValueError, match="floating-point tensor"):
        widgets.gap_widget(vae, vae_record, images=torch.zeros(2, 1, 28, 28, dtype=torch.long))
    with pytest.raises(ValueError, match=r"in \[0, 1\]"):
        widgets.gap_widget(vae, vae_record, images=x + 2)
    with pytest.raises(ValueError, match="1 to 12 images"):
        widgets.gap_widget(vae, vae_record, images=torch.zeros(13, 1, 28, 28))
    with pytest.raises(ValueError, match="1 to 12 images"):
        widgets.gap_widget(vae, vae_record, images=torch.zeros(0, 1, 28, 28))
    with pytest.raises(ValueError, match="pair"):
        widgets.gap_widget(vae, vae_record, images=x, q_star=torch.zeros(2, 2))
    with pytest.raises(ValueError, match="3 rows but there are 2 images"):
        widgets.gap_widget(vae, vae_record, images=x, q_star=(torch.zeros(3, 2),) * 2)
    with pytest.raises(ValueError, match="at most 128"):
        widgets.gap_widget(vae, vae_record, images=x, resolution=256)
    with pytest.raises(ValueError, match="n_draws"):
        widgets.gap_widget(vae, vae_record, images=x, n_draws=1)
    with pytest.raises(ValueError, match="GridPosterior of these 2 images"):
        widgets.gap_widget(vae, vae_record, images=x, grid="grid")
    zeros = torch.zeros(3)
    three = GridPosterior(zeros, torch.zeros(3, 3, 3), torch.zeros(3, 3, 3), zeros, zeros)
    with pytest.raises(ValueError, match="GridPosterior of these 2 images"):
        widgets.gap_widget(vae, vae_record, images=x, grid=three)


def test_the_gap_widget_carries_the_exact_posterior_and_both_qs(models, html):
    """log p(x) is grid_posterior's (n = 401), the encoder's q is the model's, the window holds
    both ellipses, and q* beats the encoder's q on the fresh draws (the amortization gap)."""
    model, _ = models["mnist_vae_2d"]
    data = gap_payload(html["gap"])
    x = load_mnist("test", binarize="static", seed=0).images[:6]
    assert len(data["images"]) == 6 and len(data["eps"]) == 32
    grid = grid_posterior(model, x, n=401)
    with torch.no_grad():
        mu, logvar = model.encode(x)
    for b, spec in enumerate(data["images"]):
        pixels = widgets.payload_tensors({"format": 1, "tensors": {"x": spec["pixels"]}})["x"]
        assert torch.equal(pixels, x[b].flatten())
        assert spec["logPx"] == pytest.approx(float(grid.log_px[b]), abs=1e-4)
        assert spec["encoder"]["mu"] == pytest.approx(mu[b].tolist(), abs=1e-6)
        assert spec["encoder"]["logSigma"] == pytest.approx((0.5 * logvar[b]).tolist(), abs=1e-6)
        for q in ("encoder", "best"):
            m, s = spec[q]["mu"], [math.exp(v) for v in spec[q]["logSigma"]]
            for d in range(2):
                assert spec["lo"][d] <= m[d] - 2 * s[d] and m[d] + 2 * s[d] <= spec["hi"][d]
        gaps = spec["referenceGap"]
        assert gaps["best"][0] < gaps["encoder"][0] + 3 * math.hypot(
            gaps["best"][1], gaps["encoder"][1]
        )
        density = widgets.payload_tensors({"format": 1, "tensors": {"d": spec["logDensity"]}})
        assert density["d"].shape == (64 * 64,) and float(density["d"].max()) > -1
    gaps = [s["referenceGap"] for s in data["images"]]
    assert max(g["encoder"][0] - g["best"][0] for g in gaps) > 0.5
    # the chapter's own grid and q* are taken as they are
    model, record = models["mnist_vae_2d"]
    two = GridPosterior(
        *(t[:2] for t in (grid.log_px, grid.posterior, grid.log_density)),
        grid.axis,
        grid.edge_mass[:2],
    )
    q_star = (mu[:2] + 0.01, logvar[:2])
    again = gap_payload(widgets.gap_widget(model, record, images=x[:2], grid=two, q_star=q_star))
    for b, spec in enumerate(again["images"]):
        assert spec["logPx"] == data["images"][b]["logPx"]
        assert spec["best"]["mu"] == pytest.approx((mu[b] + 0.01).tolist(), abs=1e-6)


def test_the_html_needs_nothing_from_outside(html):
    for kind, widget in html.items():
        text = widget.data
        assert widget.kind == kind and widget.nbytes == len(text.encode())
        assert not re.search(r"https?://|//cdn|\bsrc\s*=|\bhref\s*=", text), kind
        assert not re.search(r"\bfetch\s*\(|XMLHttpRequest|\bimport\s*\(|WebAssembly", text), kind
        # the package's script files, inlined
        for name in ("runtime.js", f"{kind}.js"):
            assert (widgets.JS_DIR / name).read_text() in text
        assert text.count(f'id="{widget.widget_id}"') == 1
        assert widget.nbytes < widgets.PAGE_BUDGET_BYTES
    assert len({w.widget_id for w in html.values()}) == len(html)


def test_the_scripts_ship_in_the_wheel():
    text = (ROOT / "pyproject.toml").read_text()
    assert re.search(r'vae_lib = \[[^\]]*"js/\*\.js"', text)
    assert {p.name for p in widgets.JS_DIR.glob("*.js")} == {
        "runtime.js",
        "ring.js",
        "plane.js",
        "conditional.js",
        "words.js",
        "gap.js",
    }


# -- in a real browser -------------------------------------------------------------------------
def _check_pages():
    spec = importlib.util.spec_from_file_location("check_pages", ROOT / "benchmarks/check_pages.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("check_pages", module)
    spec.loader.exec_module(module)
    return module


def unavailable(reason: str):
    if REQUIRE:
        pytest.fail(f"VAE_BOOK_REQUIRE_BROWSER is set, but {reason}")
    pytest.skip(reason)


@pytest.fixture(scope="module")
def browser():
    check_pages = _check_pages()
    try:
        chromium = check_pages.find_chromium()
        from playwright.sync_api import sync_playwright
    except (check_pages.BrowserMissing, ImportError) as exc:
        unavailable(str(exc))
    pw = sync_playwright().start()
    args = ["--disable-gpu", "--no-first-run", "--disable-background-networking"]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        args.append("--no-sandbox")
    try:
        b = pw.chromium.launch(executable_path=chromium, headless=True, args=args)
    except Exception as exc:  # pragma: no cover - a broken browser install
        pw.stop()
        unavailable(f"the browser did not start: {exc}")
    yield b
    b.close()
    pw.stop()


class Opened:
    """A widget's page, opened from file://, with its hook and its console errors."""

    def __init__(self, page, widget, errors):
        self.page, self.widget, self.errors = page, widget, errors
        self.hook = f"window.vaeWidgets[{json.dumps(widget.widget_id)}]"

    def call(self, expression: str, *args):
        return self.page.evaluate(f"(args) => {self.hook}.{expression}", list(args))

    def locate(self, selector: str):
        return self.page.locator(f"#{self.widget.widget_id} {selector}")

    def pixels(self, selector: str) -> torch.Tensor:
        """The grey values (0..255, the red channel) of a canvas of the widget."""
        values = self.locate(selector).evaluate(
            "c => Array.from(c.getContext('2d').getImageData(0, 0, c.width, c.height).data)"
        )
        return torch.tensor(values, dtype=torch.float64)[0::4]

    def drag(self, selector: str, points):
        """Press the mouse at the first point of the canvas (fractions of its box), move
        through the others, release; returns the box."""
        box = self.locate(selector).bounding_box()
        xy = [(box["x"] + fx * box["width"], box["y"] + fy * box["height"]) for fx, fy in points]
        self.page.mouse.move(*xy[0])
        self.page.mouse.down()
        for p in xy[1:]:
            self.page.mouse.move(*p, steps=4)
        self.page.mouse.up()
        return box


@pytest.fixture(scope="module")
def opened(browser, html, tmp_path_factory):
    folder = tmp_path_factory.mktemp("widgets")
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    # nothing may leave the page: every request but the page's own file is refused
    context.route(
        "**/*",
        lambda route: (
            route.continue_() if route.request.url.startswith("file://") else route.abort()
        ),
    )
    pages = {}
    for kind, widget in html.items():
        path = folder / f"{kind}.html"
        path.write_text(
            "<!DOCTYPE html><html><head><meta charset='utf-8'><title>widget</title></head>"
            f"<body><main style='width: 760px'><p>before</p>{widget.data}</main></body></html>"
        )
        page = context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda exc, errors=errors: errors.append(str(exc)))
        page.on(
            "console",
            lambda msg, errors=errors: errors.append(msg.text) if msg.type == "error" else None,
        )
        page.goto(path.as_uri(), wait_until="load")
        page.wait_for_function(f"() => window.vaeWidgets && {Opened(page, widget, []).hook}")
        pages[kind] = Opened(page, widget, errors)
    yield pages
    context.close()


def max_diff(a, b) -> float:
    return float((torch.as_tensor(a, dtype=torch.float64) - b.double()).abs().max())


def timing(o: Opened, name: str) -> float:
    median = o.call("timeDecode(100).median")
    print(f"{name}: decode median {median:.3f} ms (100 decodes)")
    return median


def test_ring_widget_computes_the_map_the_density_and_the_decoder(opened, models):
    o = opened["ring"]
    model, _ = models["ring_vae"]
    z = fixed_codes(64, 2, 10, 1.5)
    page_x = torch.tensor([o.call("map(args[0])", zi.tolist()) for zi in z], dtype=torch.float64)
    assert max_diff(page_x, ring_map(z.double())) <= 1e-12
    page_p = torch.tensor(
        [o.call("density(args[0])", xi.tolist()) for xi in page_x], dtype=torch.float64
    )
    exact = ring_log_density(page_x.double()).exp()
    assert float(((page_p - exact).abs() / exact).max()) <= 1e-9
    with torch.no_grad():
        expected = model.decode(z)
    page_f = torch.tensor([o.call("decode(args[0])", zi.tolist()) for zi in z])
    assert max_diff(page_f, expected) <= TOLERANCE
    timing(o, "ring")
    assert o.errors == []


def test_ring_widget_follows_a_drag_and_the_arrow_keys(opened):
    o = opened["ring"]
    box = o.drag("canvas[tabindex]", [(0.5, 0.5), (0.7, 0.4), (0.8, 0.3)])
    extent, size = 3.5, box["width"]
    expected = torch.tensor([-extent + 0.8 * 2 * extent, extent - 0.3 * 2 * extent])
    z = torch.tensor(o.call("state()"), dtype=torch.float64)
    assert max_diff(z, expected) <= 2 * extent / size * 1.5  # within a pixel and a half
    x = ring_map(z.double())
    text = o.locate(".vae-w-readout").inner_text()
    shown = ", ".join(f"{v:.2f}".replace("-", "\u2212") for v in x.tolist())
    assert f"x = g(z) = ({shown})" in text
    # the filled marker sits at g(z) on the data plane
    pixel = o.locate("canvas[role=img]").evaluate(
        """(c, x) => Array.from(c.getContext('2d').getImageData(
             Math.round((x[0] + 1.9) / 3.8 * c.width), Math.round((1.9 - x[1]) / 3.8 * c.height),
             1, 1).data)""",
        x.tolist(),
    )
    assert pixel[:3] == [0, 0, 0]
    o.locate("canvas[tabindex]").press("ArrowLeft")
    moved = torch.tensor(o.call("state()"), dtype=torch.float64)
    assert max_diff(moved, z - torch.tensor([2 * extent / 50, 0.0], dtype=torch.float64)) <= 1e-9
    assert o.errors == []


def test_plane_widget_decodes_as_pytorch(opened, models):
    o = opened["plane"]
    z = fixed_codes(64, 2, 11, 2.0)
    for panel, name in enumerate(("mnist_autoencoder_2d", "mnist_vae_2d")):
        model, _ = models[name]
        scale = 20.0 if panel == 0 else 1.0
        with torch.no_grad():
            expected = torch.sigmoid(model.decode(z * scale)).flatten(1)
        page = torch.tensor(
            [o.call("decode(args[0], args[1])", zi.tolist(), panel) for zi in z * scale]
        )
        assert max_diff(page, expected) <= TOLERANCE, name
        timing(o, f"plane {name}")
    assert o.errors == []


def digit_pixels(model, z, *condition) -> torch.Tensor:
    with torch.no_grad():
        probs = torch.sigmoid(model.decode(torch.tensor([z]), *condition)).flatten()
    return (255 * (1 - probs.double())).round()


def test_plane_widget_follows_a_drag_hover_and_the_arrow_keys(opened, models):
    o = opened["plane"]
    vae, _ = models["mnist_vae_2d"]
    view = o.call("state()")  # noqa: F841 - the start, the views' centres
    spec = json.loads(
        re.search(r'<script type="application/json">(.*?)</script>', o.widget.data).group(1)
    )["panels"][1]["view"]
    box = o.drag("#" + o.widget.widget_id + "-plane-1", [(0.2, 0.2), (0.3, 0.6), (0.35, 0.7)])
    lo, hi = spec["lo"], spec["hi"]
    expected = torch.tensor([lo[0] + 0.35 * (hi[0] - lo[0]), hi[1] - 0.7 * (hi[1] - lo[1])])
    z = o.call("state()")[1]
    assert max_diff(z, expected) <= (hi[0] - lo[0]) / box["width"] * 1.5
    canvas = o.locate("figure:nth-of-type(2) canvas.vae-w-digit")
    assert (
        o.pixels("figure:nth-of-type(2) canvas.vae-w-digit") - digit_pixels(vae, z)
    ).abs().max() <= 1
    assert canvas.get_attribute("aria-label")
    readout = o.locate("figure:nth-of-type(2) .vae-w-readout").inner_text()
    assert readout.startswith("z = (") and readout.count(",") == 1
    o.locate("#" + o.widget.widget_id + "-plane-1").press("ArrowUp")
    moved = o.call("state()")[1]
    step = (hi[0] - lo[0]) / 50
    assert max_diff(moved, torch.tensor([z[0], z[1] + step], dtype=torch.float64)) <= 1e-9
    assert (
        o.pixels("figure:nth-of-type(2) canvas.vae-w-digit") - digit_pixels(vae, moved)
    ).abs().max() <= 1
    # hovering the autoencoder's plane with the mouse (no button) decodes there too
    before = o.call("state()")[0]
    plane0 = o.locate("#" + o.widget.widget_id + "-plane-0").bounding_box()
    o.page.mouse.move(plane0["x"] + 0.9 * plane0["width"], plane0["y"] + 0.1 * plane0["height"])
    after = o.call("state()")[0]
    assert after != before and after[0] > before[0] and after[1] > before[1]
    assert o.errors == []


def test_conditional_widget_decodes_as_pytorch(opened, models):
    o = opened["conditional"]
    model, _ = models["digits_cvae"]
    z = fixed_codes(64, model.latent_dim, 12)
    digits = torch.arange(64) % 10
    with torch.no_grad():
        expected = torch.sigmoid(model.decode(z, one_hot(digits, 10))).flatten(1)
    page = torch.tensor(
        [
            o.call("decode(args[0], args[1])", zi.tolist(), int(d))
            for zi, d in zip(z, digits, strict=True)
        ]
    )
    assert max_diff(page, expected) <= TOLERANCE
    timing(o, "conditional")
    assert o.errors == []


def test_conditional_widget_follows_its_digit_sliders_and_button(opened, models):
    o = opened["conditional"]
    model, _ = models["digits_cvae"]
    wid = o.widget.widget_id
    o.page.select_option(f"#{wid}-digit", "7")
    slider = o.page.locator(f"#{wid}-z0")
    slider.focus()
    for _ in range(4):
        slider.press("ArrowRight")
    state = o.call("state()")
    assert state["digit"] == 7
    assert state["z"][0] == pytest.approx(0.2) and state["z"][1:] == [0, 0, 0]
    c = one_hot(torch.tensor([7]), 10)
    assert (o.pixels("canvas.vae-w-big") - digit_pixels(model, state["z"], c)).abs().max() <= 1
    # the row writes every digit with the same z
    row = o.locate("canvas.vae-w-small")
    assert row.count() == 10
    two = o.pixels("canvas.vae-w-small >> nth=2")
    assert (two - digit_pixels(model, state["z"], one_hot(torch.tensor([2]), 10))).abs().max() <= 1
    o.page.click(f"#{wid}-draw")
    drawn = o.call("state()")
    assert drawn["z"] != state["z"]
    values = [float(o.page.locator(f"#{wid}-z{j}").input_value()) for j in range(4)]
    assert values == pytest.approx(drawn["z"])
    assert (o.pixels("canvas.vae-w-big") - digit_pixels(model, drawn["z"], c)).abs().max() <= 1
    assert "digit 7, z = (" in o.locate(".vae-w-readout").inner_text()
    assert o.errors == []


def greedy(model, z: torch.Tensor) -> list[str]:
    with torch.no_grad():
        return CharVocabulary().decode(model.greedy_decode(z.float()))


def test_word_widget_encodes_and_decodes_as_pytorch(opened, models):
    o = opened["words"]
    model, _ = models["words_vae_free_bits"]
    vocab = CharVocabulary()
    words = ["cat", "dog", "variation", "inference", "a", "mouse", "zebra", "quizzically"]
    tokens, lengths = vocab.encode(words)
    with torch.no_grad():
        mu, _ = model.encode(tokens, lengths)
    page_mu = torch.tensor([o.call("encode(args[0])", w) for w in words])
    assert max_diff(page_mu, mu) <= TOLERANCE
    z = fixed_codes(64, model.latent_dim, 13)
    assert [o.call("decode(args[0])", zi.tolist()) for zi in z] == greedy(model, z)
    timing(o, "words")
    assert o.errors == []


def test_word_widget_follows_typing_the_slider_and_the_button(opened, models):
    o = opened["words"]
    model, _ = models["words_vae_free_bits"]
    wid = o.widget.widget_id
    o.page.fill(f"#{wid}-first", "house")
    o.page.fill(f"#{wid}-second", "mouse")
    tokens, lengths = CharVocabulary().encode(["house", "mouse"])
    with torch.no_grad():
        mu, _ = model.encode(tokens, lengths)
    slider = o.page.locator(f"#{wid}-t")
    slider.focus()
    for _ in range(10):  # ten steps of 0.05
        slider.press("ArrowRight")
    state = o.call("state()")
    assert (state["first"], state["second"]) == ("house", "mouse")
    assert state["t"] == pytest.approx(0.5)
    assert state["word"] == greedy(model, (mu[0] + mu[1]).unsqueeze(0) / 2)[0]
    assert f"at t = 0.50: {state['word']}" in o.locate(".vae-w-word >> nth=0").inner_text()
    path = o.locate(".vae-w-path").inner_text()
    ends = greedy(model, mu)
    assert path.startswith(f"along the path: {ends[0]}") and path.endswith(ends[1])
    slider.press("End")
    assert o.call("state()")["word"] == ends[1]
    # a word with a character outside a-z is refused, and the state kept
    o.page.fill(f"#{wid}-second", "mo use")
    assert "letters a to z" in o.page.locator(f"#{wid}-status").inner_text()
    assert o.call("state()")["second"] == "mouse"
    o.page.fill(f"#{wid}-second", "mouse")
    o.page.click(f"#{wid}-draw")
    prior = o.call("state()")["prior"]
    assert prior["word"] == greedy(model, torch.tensor([prior["z"]]))[0]
    assert prior["word"] in o.locate(".vae-w-word >> nth=1").inner_text()
    assert o.errors == []


def gap_elbo(model, x: torch.Tensor, eps: torch.Tensor, mu, log_sigma) -> float:
    """L[q] by PyTorch in float64 with the page's draws: mean_s log p(x | z_s) + log N(z_s; 0,
    I) - log q(z_s), z_s = mu + sigma eps_s."""
    mu = torch.as_tensor(mu, dtype=torch.float64)
    log_sigma = torch.as_tensor(log_sigma, dtype=torch.float64)
    z = mu + log_sigma.exp() * eps
    with torch.no_grad():
        log_px_z = model.log_px_given_z(x.double().unsqueeze(0), z[:, None, :])[:, 0]
    log_2pi = math.log(2 * math.pi)
    log_prior = -log_2pi - 0.5 * z.pow(2).sum(-1)
    log_q = -log_2pi - log_sigma.sum() - 0.5 * eps.pow(2).sum(-1)
    return float((log_px_z + log_prior - log_q).mean())


@pytest.fixture(scope="module")
def gap_setup(models, html):
    model, _ = models["mnist_vae_2d"]
    data = gap_payload(html["gap"])
    x = load_mnist("test", binarize="static", seed=0).images[:6]
    eps = torch.tensor(data["eps"], dtype=torch.float64)
    return copy.deepcopy(model).double(), data, x, eps


def test_gap_widget_computes_the_elbo_as_pytorch(opened, gap_setup):
    o = opened["gap"]
    model, data, x, eps = gap_setup
    for b, spec in enumerate(data["images"]):
        for q in ("encoder", "best"):
            args = [spec[q]["mu"], spec[q]["logSigma"]]
            page = o.call("elbo(args[0], args[1], args[2]).elbo", b, *args)
            assert abs(page - gap_elbo(model, x[b], eps, *args)) <= TOLERANCE, (b, q)
        assert o.call("logPx(args[0])", b) == spec["logPx"]
    # a q of our own, far from both
    page = o.call("elbo(args[0], args[1], args[2]).elbo", 2, [0.5, -1.0], [-1.0, -2.0])
    assert abs(page - gap_elbo(model, x[2], eps, [0.5, -1.0], [-1.0, -2.0])) <= TOLERANCE
    update = o.call("timeUpdate(20).median")
    print(f"gap: live ELBO update median {update:.2f} ms ({len(eps)} decodes)")
    timing(o, "gap")
    assert o.errors == []


def test_gap_widget_follows_its_image_drag_keys_sliders_and_buttons(opened, gap_setup):
    o = opened["gap"]
    model, data, x, eps = gap_setup
    wid = o.widget.widget_id

    def elbo_of(b, q):
        return gap_elbo(model, x[b], eps, q["mu"], q["logSigma"])

    # the image whose amortization gap (on these draws) is largest
    amortization = [
        elbo_of(b, s["best"]) - elbo_of(b, s["encoder"]) for b, s in enumerate(data["images"])
    ]
    b = max(range(len(amortization)), key=amortization.__getitem__)
    assert amortization[b] > 0.5
    spec = data["images"][b]
    o.page.select_option(f"#{wid}-image", str(b))
    state = o.call("state()")
    assert state["image"] == b and state["mu"] == spec["encoder"]["mu"]
    assert abs(state["elbo"] - elbo_of(b, spec["encoder"])) <= TOLERANCE
    assert (o.pixels("canvas.vae-w-digit") - 255 * (1 - x[b].flatten().double())).abs().max() <= 1
    text = o.locate(".vae-w-readout >> nth=1").inner_text()
    assert f"log p(x) = {spec['logPx']:.2f}".replace("-", "\u2212") in text
    assert re.search(r"L\[q\] += " + f"{state['elbo']:.2f}".replace("-", "\u2212"), text)
    gap = f"{state['gap']:.2f}".replace("-", "\u2212")
    assert f"gap = log p(x) \u2212 L[q] = {gap} nats" in text
    # the button q* gives a larger L[q] and a smaller gap
    o.page.click(f"#{wid}-best")
    best = o.call("state()")
    assert best["mu"] == spec["best"]["mu"] and best["logSigma"] == spec["best"]["logSigma"]
    assert best["elbo"] > state["elbo"] + 0.5 and best["gap"] < state["gap"]
    assert best["gap"] == pytest.approx(spec["logPx"] - best["elbo"])
    o.page.click(f"#{wid}-encoder")
    assert o.call("state()")["mu"] == spec["encoder"]["mu"]
    # a drag moves q's mean to the pointer, and L[q] is the ELBO there
    view = o.call("view()")
    lo, hi = view["lo"], view["hi"]
    box = o.drag(f"#{wid}-plane", [(0.5, 0.5), (0.6, 0.45), (0.7, 0.4)])
    dragged = o.call("state()")
    expected = [lo[0] + 0.7 * (hi[0] - lo[0]), hi[1] - 0.4 * (hi[1] - lo[1])]
    assert max_diff(dragged["mu"], torch.tensor(expected)) <= (hi[0] - lo[0]) / box["width"] * 1.5
    assert dragged["logSigma"] == spec["encoder"]["logSigma"]
    assert abs(dragged["elbo"] - elbo_of(b, dragged)) <= TOLERANCE
    assert dragged["elbo"] != state["elbo"]
    # the marker sits at q's mean on the plane
    pixel = o.locate(f"#{wid}-plane").evaluate(
        """(c, p) => Array.from(c.getContext('2d').getImageData(p[0], p[1], 1, 1).data)""",
        [round(0.7 * 300), round(0.4 * 300)],
    )
    assert pixel[:3] == [214, 39, 40]
    # an arrow key moves the mean by a fiftieth of the window
    o.locate(f"#{wid}-plane").press("ArrowDown")
    moved = o.call("state()")
    expected = torch.tensor(dragged["mu"], dtype=torch.float64)
    expected[1] -= (hi[1] - lo[1]) / 50
    assert max_diff(moved["mu"], expected) <= 1e-9
    assert moved["elbo"] != dragged["elbo"]
    assert abs(moved["elbo"] - elbo_of(b, moved)) <= TOLERANCE
    # the sliders set log sigma
    for d in range(2):
        slider = o.page.locator(f"#{wid}-s{d + 1}")
        slider.focus()
        before = o.call("state()")
        for _ in range(5):
            slider.press("ArrowLeft")
        after = o.call("state()")
        assert after["logSigma"][d] == pytest.approx(float(slider.input_value()))
        assert after["logSigma"][d] == pytest.approx(before["logSigma"][d] - 0.1, abs=0.011)
        assert after["logSigma"][1 - d] == before["logSigma"][1 - d]
        assert after["elbo"] != before["elbo"]
        assert abs(after["elbo"] - elbo_of(b, after)) <= TOLERANCE
    assert o.errors == []


@pytest.mark.parametrize("kind", ["ring", "plane", "conditional", "words", "gap"])
def test_tab_reaches_every_control_and_every_control_is_labelled(opened, kind):
    o = opened[kind]
    controls = o.locate("input, select, button, canvas[tabindex]")
    ids = [controls.nth(i).get_attribute("id") for i in range(controls.count())]
    assert ids and all(ids)
    for i in range(controls.count()):
        # a label element, an aria-label, or a button's own text
        label = controls.nth(i).evaluate(
            """e => (e.labels && e.labels.length ? e.labels[0].textContent : '') ||
                   e.getAttribute('aria-label') || (e.tagName === 'BUTTON' ? e.textContent : '')"""
        )
        assert label.strip(), ids[i]
    o.page.evaluate("() => document.activeElement && document.activeElement.blur()")
    o.page.locator("body").focus()
    reached = set()
    for _ in range(len(ids) + 5):
        o.page.keyboard.press("Tab")
        reached.add(o.page.evaluate("() => document.activeElement.id"))
    assert set(ids) <= reached


def test_the_widget_check_of_the_built_book_measures_and_finds_faults(browser, html, tmp_path):
    """benchmarks/check_widgets.py on a hand-made build: a page with the ring widget passes
    (timed, answering a key, photographed), the pages that lack theirs are faults."""
    _check_pages()
    spec = importlib.util.spec_from_file_location(
        "check_widgets", ROOT / "benchmarks/check_widgets.py"
    )
    check_widgets = importlib.util.module_from_spec(spec)
    sys.modules["check_widgets"] = check_widgets  # its dataclass looks its module up
    spec.loader.exec_module(check_widgets)
    build = tmp_path / "html"
    (build / "chapters").mkdir(parents=True)
    (build / "index.html").write_text("<!DOCTYPE html><html><body>book</body></html>")
    for page in check_widgets.EXPECTED:
        body = html["ring"].data if page.startswith("chapters/01") else "<p>no widget</p>"
        (build / page).write_text(
            f"<!DOCTYPE html><html><head><meta charset='utf-8'></head><body>{body}</body></html>"
        )
    found = check_widgets.widgets_in((build / "chapters/01_change_of_variables.html").read_text())
    assert [(k, n) for k, _, n in found] == [("ring", html["ring"].nbytes)]
    out = tmp_path / "out"
    # in its own process: this one already drives a browser through Playwright's sync API
    done = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks/check_widgets.py"), str(build), "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 1, done.stdout + done.stderr
    report = json.loads((out / "widgets.json").read_text())
    ring = [w for w in report["widgets"] if w["kind"] == "ring"]
    assert {w["origin"] for w in ring} == {"file", "served"}
    for w in ring:
        assert w["responded"] is True and 0 <= w["ready_ms"] and len(w["decode_ms"]) == 1
        assert (out / w["screenshot"]).stat().st_size > 1000
    faults = {(f["page"], f["fault"].split(":")[0]) for f in report["faults"]}
    assert faults == {
        (page, "missing-widget")
        for page in check_widgets.EXPECTED
        if not page.startswith("chapters/01")
    }
