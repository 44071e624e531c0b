"""The page check, ``benchmarks/check_pages.py``, on small hand-written pages served from a
temporary folder: a clean page passes, and each fault it exists to find is found (raw TeX in
the prose, a code block wider than its box, a broken image, an untypeset formula, a TeX error,
a page error, a missing file). No built book is needed.

These tests drive a real browser. Where no Chromium or Chrome is installed they are skipped with
a message saying so; CI sets ``VAE_BOOK_REQUIRE_BROWSER=1``, which turns that skip into a
failure. The MathJax tests also need MathJax 3's npm package (``$VAE_BOOK_MATHJAX``, or the
copy that ``python benchmarks/check_pages.py`` fetches into the user's cache).

The last tests need no browser: they render the Markdown of every chapter and of the intro
with the book's MyST settings and look for TeX left outside math, the fault that a line
starting with ``+`` inside a ``$...$`` span causes.
"""

from __future__ import annotations

import html.parser
import importlib.util
import json
import os
import re
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
spec = importlib.util.spec_from_file_location("check_pages", ROOT / "benchmarks/check_pages.py")
check_pages = importlib.util.module_from_spec(spec)
sys.modules["check_pages"] = check_pages  # its dataclasses look their module up
spec.loader.exec_module(check_pages)

REQUIRE = os.environ.get("VAE_BOOK_REQUIRE_BROWSER", "") not in ("", "0")


def png(width: int = 2, height: int = 2) -> bytes:
    """A grey PNG image, written by hand."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data))
            + kind
            + data
            + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
        )

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    rows = b"".join(b"\x00" + b"\x80" * width for _ in range(height))
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


SVG = (
    '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 10 10">'
    '<rect width="10" height="10"/></svg>'
)
MATHJAX_TAGS = (
    '<script>window.MathJax = {"options": {"processHtmlClass": '
    '"tex2jax_process|mathjax_process|math|output_area"}}</script>\n'
    '<script defer src="https://cdn.jsdelivr.net/npm/mathjax@3/es5/tex-mml-chtml.js"></script>'
)
LONG_LINE = "x = " + " + ".join(f"value_{i}" for i in range(12))  # 120 characters


def page(body: str, head: str = "") -> str:
    """A page shaped like the book's: the content inside main, a 600-pixel column."""
    return (
        f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>t</title>{head}"
        "<style>main {width: 600px} pre {overflow: auto; font: 14px monospace}</style></head>"
        f"<body><main><article>{body}</article></main></body></html>"
    )


PAGES = {
    "clean.html": page(
        "<h1>A clean page</h1>"
        '<p>Typeset math <span class="math notranslate nohighlight">'
        "<mjx-container>x</mjx-container></span>, a price in code <code>$HOME</code>, "
        "and a short cell:</p>"
        '<div class="cell"><div class="highlight"><pre>print("short")</pre></div></div>'
        '<img src="dot.png" alt="a dot"> <img src="shape.svg" alt="an svg without a size">'
        "<script>console.error('THEBE_JS_URL is not defined')</script>"
        "<script>throw new ReferenceError('THEBE_JS_URL is not defined')</script>"
    ),
    # What Markdown makes of "... $\delta^4\,\mathbb{E}[\varepsilon^2] + ...\n+ \sigma^4 ...$"
    # (the line that starts with + became a list item and took the span apart).
    "tex_in_prose.html": page(
        r"<p>the odd moments vanish, leaving $\delta^4,\mathbb{E}[\varepsilon^2] + "
        r"(4\delta^2\sigma^2)</p><ul><li><p>\sigma^4,\mathbb{E}[\varepsilon^6] = 15$. "
        "Dividing by</p></li></ul>"
    ),
    "wide_code.html": page(
        f'<div class="cell"><div class="highlight"><pre>{LONG_LINE}</pre></div></div>'
        "<div class='highlight'><pre>fits = True</pre></div>"
        "<details><summary>collapsed cell</summary>"
        f'<div class="cell"><div class="highlight"><pre>y = {LONG_LINE}</pre></div></div>'
        "</details>"
    ),
    "broken_image.html": page(
        '<img src="dot.png" alt="fine"><img src="nowhere.png" alt="missing">'
        '<img src="corrupt.png" alt="not an image">'
    ),
    "untypeset.html": page(
        '<p>The bound <span class="math notranslate nohighlight">\\(\\log p(x)\\)</span>, '
        "with no MathJax on the page.</p>"
        '<div class="math notranslate nohighlight">\\[ x^2 \\]</div>'
    ),
    "page_error.html": page(
        "<p>A script that fails.</p><script>null.property</script>"
        "<script>console.error('something went wrong')</script>"
    ),
    "missing_file.html": page(
        "<p>A script the build lacks.</p>", '<script src="_static/gone.js"></script>'
    ),
    "index.html": '<meta http-equiv="Refresh" content="0; url=clean.html" />',
    "redirect_nowhere.html": '<meta http-equiv="Refresh" content="0; url=gone.html" />',
    "mathjax_ok.html": page(
        '<p>Inline <span class="math notranslate nohighlight">\\(\\frac{1}{2}\\mathbb{E}[z]\\)'
        '</span> and displayed:</p><div class="math notranslate nohighlight">'
        "\\[\\log p(x) \\ge \\mathbb{E}_{q}\\big[\\log p(x, z) - \\log q(z)\\big]\\]</div>",
        MATHJAX_TAGS,
    ),
    "mathjax_errors.html": page(
        '<p>A missing argument <span class="math notranslate nohighlight">\\(\\frac{1}\\)</span>'
        ' and an unknown macro <span class="math notranslate nohighlight">\\(\\nocommand x\\)'
        "</span>.</p>",
        MATHJAX_TAGS,
    ),
}


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("site")
    for name, text in PAGES.items():
        (root / name).write_text(text)
    (root / "dot.png").write_bytes(png())
    (root / "shape.svg").write_text(SVG)
    (root / "corrupt.png").write_bytes(b"this is not a PNG")
    return root


def unavailable(reason: str):
    if REQUIRE:
        pytest.fail(f"{reason}; VAE_BOOK_REQUIRE_BROWSER is set, so the page check must run")
    pytest.skip(f"page check not run on this machine: {reason}")


@pytest.fixture(scope="module")
def mathjax() -> Path | None:
    try:
        return check_pages.find_mathjax(fetch=False)
    except FileNotFoundError:
        return None


@pytest.fixture(scope="module")
def checker(site, mathjax, tmp_path_factory):
    try:
        check_pages.find_chromium()
    except check_pages.BrowserMissing as exc:
        unavailable(str(exc))
    shots = tmp_path_factory.mktemp("shots")
    with check_pages.PageChecker(site, mathjax=mathjax, shots=shots) as checker:
        yield checker


def kinds(result) -> list[str]:
    return sorted(f.kind for f in result.faults)


def test_a_clean_page_passes_and_is_photographed(checker):
    result = checker.check("clean.html")
    assert result.faults == [], [str(f) for f in result.faults]
    assert result.screenshot is not None and result.screenshot.stat().st_size > 1000
    assert result.screenshot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_tex_printed_in_the_prose_is_found(checker):
    result = checker.check("tex_in_prose.html")
    assert kinds(result) == ["tex-in-prose", "tex-in-prose"]
    assert "\\mathbb{E}" in result.faults[0].snippet
    assert "\\sigma^4" in result.faults[1].snippet


def test_a_code_block_wider_than_its_box_is_found_even_when_collapsed(checker):
    result = checker.check("wide_code.html")
    assert kinds(result) == ["wide-code", "wide-code"]
    assert [f.snippet.split(",")[0] for f in result.faults] == ["code cell", "code cell"]
    lengths = [int(re.search(r"(\d+) characters", f.snippet).group(1)) for f in result.faults]
    assert lengths == [len(LONG_LINE), len(LONG_LINE) + 4]
    assert all("value_11" in f.snippet for f in result.faults)


def test_a_missing_and_a_corrupt_image_are_found(checker):
    result = checker.check("broken_image.html")
    assert kinds(result) == ["broken-image", "broken-image"]
    assert {f.snippet.split()[0] for f in result.faults} == {"nowhere.png", "corrupt.png"}


def test_math_left_as_raw_tex_is_found(checker):
    result = checker.check("untypeset.html")
    assert kinds(result) == ["untypeset-math", "untypeset-math"]
    assert "\\log p(x)" in result.faults[0].snippet


def test_page_errors_are_found_and_the_known_thebe_error_is_not(checker):
    result = checker.check("page_error.html")
    assert kinds(result) == ["page-error", "page-error"]
    assert any("something went wrong" in f.snippet for f in result.faults)


def test_a_file_the_page_asks_for_and_the_build_lacks_is_found(checker):
    assert kinds(checker.check("missing_file.html")) == ["missing-file"]


def test_redirect_pages_are_followed_on_disk(checker):
    assert checker.check("index.html").faults == []
    assert kinds(checker.check("redirect_nowhere.html")) == ["missing-file"]


def need_mathjax(mathjax):
    if mathjax is None:
        unavailable(
            "MathJax 3 not found (set VAE_BOOK_MATHJAX, or run benchmarks/check_pages.py once "
            "to fetch it)"
        )


def test_mathjax_from_its_local_copy_typesets_the_page(checker, mathjax):
    need_mathjax(mathjax)
    result = checker.check("mathjax_ok.html")
    assert result.faults == [], [str(f) for f in result.faults]


def test_tex_errors_and_unknown_macros_are_found(checker, mathjax):
    need_mathjax(mathjax)
    result = checker.check("mathjax_errors.html")
    assert kinds(result) == ["tex-error", "tex-error"]
    snippets = " ".join(f.snippet for f in result.faults)
    assert "\\frac{1}" in snippets and "\\nocommand" in snippets


def test_the_command_line_fails_on_faults_and_writes_a_report(site, mathjax, tmp_path):
    # In a fresh interpreter: one thread runs one Playwright at a time, and the checker
    # fixture's may still be open.
    try:
        check_pages.find_chromium()
    except check_pages.BrowserMissing as exc:
        unavailable(str(exc))
    need_mathjax(mathjax)
    out = tmp_path / "out"
    script = [sys.executable, str(ROOT / "benchmarks/check_pages.py"), str(site), "--out", str(out)]
    run = subprocess.run(
        [*script, "--mathjax", str(mathjax), "--page", "clean.html", "--page", "wide_code.html"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 1, run.stdout + run.stderr
    assert "wide_code.html: wide-code: code cell, " in run.stdout
    report = json.loads((out / "report.json").read_text())
    assert report["pages"] == {"clean.html": {}, "wide_code.html": {"wide-code": 2}}
    assert (out / "clean.png").is_file() and (out / "wide_code.png").is_file()
    assert "2 pages checked" in (out / "report.txt").read_text()
    run = subprocess.run(
        [*script, "--mathjax", str(mathjax), "--page", "clean.html"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    assert "no fault" in run.stdout


def test_book_pages_lists_every_page_but_sphinx_folders(tmp_path):
    for name in ("index.html", "chapters/a.html", "_static/x.html", "_sources/y.html"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("")
    assert check_pages.book_pages(tmp_path) == ["chapters/a.html", "index.html"]


# -- without a browser: the book's Markdown rendered with its MyST settings ------------------

TEX = re.compile(r"\\[A-Za-z]+|\\[()\[\]{}]|\$|[_^]\{")


class _ProseText(html.parser.HTMLParser):
    """The text of an HTML fragment outside math, code and pre."""

    SKIP = {"code", "pre", "script", "style"}

    def __init__(self):
        super().__init__()
        self.stack: list[bool] = []
        self.text: list[str] = []

    def handle_starttag(self, tag, attrs):
        if tag in ("br", "img", "hr", "input", "meta", "link"):
            return
        classes = (dict(attrs).get("class") or "").split()
        self.stack.append(tag in self.SKIP or "math" in classes)

    def handle_endtag(self, tag):
        if self.stack:
            self.stack.pop()

    def handle_data(self, data):
        if not any(self.stack):
            self.text.append(data)


def _markdown_parser():
    from markdown_it.renderer import RendererHTML
    from myst_parser.config.main import MdParserConfig
    from myst_parser.parsers.mdit import create_md_parser

    # the extensions of _config.yml's parse: myst_enable_extensions
    config = MdParserConfig(enable_extensions={"dollarmath", "amsmath", "colon_fence", "deflist"})
    return create_md_parser(config, RendererHTML)


def tex_outside_math(markdown: str, md=None) -> list[str]:
    """Fragments of ``markdown`` whose TeX would be printed as text in the book. The bodies
    of directives (``:::{admonition}``, ``{note}`` ...) are checked too, but math and code."""
    md = md or _markdown_parser()
    found = []
    tokens = md.parse(markdown)
    for tok in tokens:
        if tok.type in ("colon_fence", "fence") and tok.info.startswith("{"):
            name = tok.info[1:].split("}")[0]
            if name in ("math", "code", "code-block", "code-cell", "glue:math"):
                continue
            body = "\n".join(
                line for line in tok.content.splitlines() if not re.match(r"^:[\w-]+:", line)
            )
            found += tex_outside_math(body, md)
    prose = _ProseText()
    html_text = md.renderer.render(
        [t for t in tokens if not (t.type in ("colon_fence", "fence") and t.info.startswith("{"))],
        md.options,
        {},
    )
    prose.feed(html_text)
    for chunk in prose.text:
        m = TEX.search(chunk)
        if m:
            found.append(" ".join(chunk[max(0, m.start() - 40) : m.end() + 60].split()))
    return found


def test_the_markdown_check_finds_a_span_broken_by_a_plus_line():
    broken = "Leaving\n$a^2\n+ b^2$ at the end."
    assert tex_outside_math(broken), "the + line starts a list and prints the TeX"
    fixed = "Leaving\n$a^2 +\nb^2$ at the end."
    assert tex_outside_math(fixed) == []
    inside = ":::{admonition} Solution\n:class: dropdown\n\nLeaving\n$a^2\n+ b^2$.\n:::\n"
    assert tex_outside_math(inside), "directive bodies are checked too"


MARKDOWN_SOURCES = sorted((ROOT / "chapters").glob("*.ipynb")) + [ROOT / "intro.md"]


@pytest.mark.parametrize("path", MARKDOWN_SOURCES, ids=[p.stem for p in MARKDOWN_SOURCES])
def test_no_tex_is_left_outside_math_in_the_books_markdown(path):
    if path.suffix == ".ipynb":
        cells = json.loads(path.read_text())["cells"]
        texts = {
            f"cell {i}": "".join(c["source"])
            for i, c in enumerate(cells)
            if c["cell_type"] == "markdown"
        }
    else:
        texts = {path.name: path.read_text()}
    md = _markdown_parser()
    faults = {
        where: found for where, text in texts.items() if (found := tex_outside_math(text, md))
    }
    assert not faults, f"TeX printed as text (a line starting with + - * inside $...$?): {faults}"


# -- the chapters' glue bookkeeping: one glue_all call per cell ------------------------------


def test_glue_all_glues_every_value_without_showing_it(monkeypatch):
    import myst_nb
    import numpy as np
    import torch

    from vae_lib.book import glue_all

    calls = []
    monkeypatch.setattr(myst_nb, "glue", lambda *a, **k: calls.append((a, k)))
    glue_all({f"share_{d}": d / 10 for d in (1, 2)}, mean=0.5)
    assert calls == [
        (("share_1", 0.1), {"display": False}),
        (("share_2", 0.2), {"display": False}),
        (("mean", 0.5), {"display": False}),
    ]
    # NumPy and PyTorch scalars arrive as Python numbers, whose repr myst-nb can format
    calls.clear()
    glue_all(a=np.float64(0.25), b=torch.tensor(3), c=np.int64(7))
    assert [(a, type(a[1])) for a, _ in calls] == [
        (("a", 0.25), float),
        (("b", 3), int),
        (("c", 7), int),
    ]
    with pytest.raises(ValueError, match="glued twice: mean"):
        glue_all({"mean": 1}, mean=2)
    with pytest.raises(TypeError, match="non-empty string"):
        glue_all({3: 1})


def test_no_chapter_glues_outside_glue_all_but_figures():
    """A visible cell glues nothing: its glue_all call sits in a removed cell after it, or at
    the end of a collapsed cell; only figures are glued with glue itself, to be shown."""
    for path in sorted((ROOT / "chapters").glob("*.ipynb")):
        cells = json.loads(path.read_text())["cells"]
        for i, cell in enumerate(cells):
            if cell["cell_type"] != "code":
                continue
            source = "".join(cell["source"])
            tags = set(cell["metadata"].get("tags", []))
            calls = re.findall(r"^\s*glue\(.*", source, re.M)
            assert all("display=True" in c for c in calls), (path.name, i, calls)
            if "glue_all(" in source and not tags & {"remove-cell", "hide-cell", "hide-input"}:
                raise AssertionError(f"{path.name} cell {i}: glue_all in a visible cell")
            assert source.count("glue_all(") <= 1, (path.name, i, "one glue_all per cell")
