"""Open every page of the built book in a real browser, as a reader sees it, and fail on what
the build cannot see.

``jupyter-book build -W`` passes a page whose ``$...$`` span was broken by Markdown (a line
that starts with ``+`` inside a paragraph starts a list) and a code cell that scrolls sideways.
This script loads each page of ``_build/html`` in headless Chromium (driven by Playwright,
with MathJax 3 served from a local copy in place of the CDN), takes a screenshot, and reports
every

- ``untypeset-math``: a math element (``.math``) that MathJax left as raw TeX;
- ``tex-error``: a formula that MathJax could not typeset (``mjx-merror``);
- ``tex-in-prose``: TeX printed as text (a ``\\command``, ``$``, ``\\(``, ``^{`` or ``_{``
  in a text node outside code, ``pre`` and typeset math);
- ``broken-image``: an image that did not load or decode;
- ``wide-code``: a ``pre`` (a code cell, an output, a shell command) wider than its box, after
  every collapsed cell and dropdown has been opened;
- ``page-error``: an uncaught error or a console error in the page (the known harmless
  ``THEBE_JS_URL`` and "invalid theme mode" errors aside);
- ``missing-file``: a file of the book (script, style sheet, font) that the page asked for and
  the build does not have; a redirect page whose target is missing.

Run from the repository root after the build (exit status 1 when it finds a fault)::

    python benchmarks/check_pages.py                  # _build/html -> _build/page-check/

It needs a Chromium or Chrome (``apt install chromium``; found on PATH as chromium,
chromium-browser, google-chrome or google-chrome-stable, or named by ``--chromium`` or
``$VAE_BOOK_CHROMIUM``), the ``playwright`` Python package (in requirements.txt; its own
browsers are never downloaded: do not run ``playwright install``) and MathJax 3: the npm
package's folder given by ``--mathjax`` or ``$VAE_BOOK_MATHJAX``, else a copy in the user's
cache folder, fetched once with ``npm pack mathjax@3.2.2`` where npm is installed.
Screenshots (one full-page PNG per page, at a 1280-pixel window) and ``report.txt`` go to
``--out`` (default ``_build/page-check``). ``tests/test_pages.py`` tests the checker on small
hand-written pages.
"""

from __future__ import annotations

import argparse
import json
import mimetypes
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote, urlsplit

ROOT = Path(__file__).resolve().parent.parent
MATHJAX_VERSION = "3.2.2"
# Sphinx's default mathjax_path; the fonts and TeX extensions are fetched beside it.
MATHJAX_CDN = "https://cdn.jsdelivr.net/npm/mathjax@3/"
# The pages are served from this origin (".test" is reserved: it never reaches a network).
ORIGIN = "http://book.test/"
CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
# Logged on every page and harmless: sphinx-thebe's, on a page without a kernel; and the
# theme's, on a first visit, before the reader has chosen light or dark.
KNOWN_ERRORS = ("THEBE_JS_URL", "Got invalid theme mode")
KINDS = (
    "untypeset-math",
    "tex-error",
    "tex-in-prose",
    "broken-image",
    "wide-code",
    "page-error",
    "missing-file",
)
WINDOW = {"width": 1280, "height": 900}


@dataclass
class Fault:
    kind: str
    snippet: str

    def __str__(self) -> str:
        return f"{self.kind}: {self.snippet}"


@dataclass
class PageResult:
    page: str
    faults: list[Fault] = field(default_factory=list)
    seconds: float = 0.0
    screenshot: Path | None = None
    note: str = ""

    def counts(self) -> Counter:
        return Counter(f.kind for f in self.faults)


class BrowserMissing(RuntimeError):
    """No Chromium or Chrome, or no playwright package: the check cannot run here."""


def find_chromium(explicit: str | None = None) -> str:
    """The browser to drive: ``explicit``, ``$VAE_BOOK_CHROMIUM``, or one found on PATH."""
    for name in (explicit, os.environ.get("VAE_BOOK_CHROMIUM")):
        if name:
            path = shutil.which(name) or (name if Path(name).is_file() else None)
            if path is None:
                raise BrowserMissing(f"no browser at {name}")
            return path
    for name in CHROMIUM_NAMES:
        path = shutil.which(name)
        if path:
            return path
    raise BrowserMissing(
        "no Chromium or Chrome on PATH (looked for " + ", ".join(CHROMIUM_NAMES) + "); "
        "install one (Debian: apt-get install chromium) or name it in $VAE_BOOK_CHROMIUM"
    )


def _cache_home() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")


def find_mathjax(explicit: str | None = None, fetch: bool = True) -> Path:
    """The folder of MathJax 3's npm package (the one holding ``es5/tex-mml-chtml.js``)."""
    for name in (explicit, os.environ.get("VAE_BOOK_MATHJAX")):
        if name:
            path = Path(name)
            if not (path / "es5/tex-mml-chtml.js").is_file():
                raise FileNotFoundError(f"{path} has no es5/tex-mml-chtml.js (MathJax 3's package)")
            return path
    cached = _cache_home() / "vae_book" / f"mathjax-{MATHJAX_VERSION}"
    if (cached / "es5/tex-mml-chtml.js").is_file():
        return cached
    npm = shutil.which("npm")
    if not fetch or npm is None:
        raise FileNotFoundError(
            f"MathJax {MATHJAX_VERSION} not found: pass --mathjax or $VAE_BOOK_MATHJAX (the "
            f"folder of `npm pack mathjax@{MATHJAX_VERSION}`), or install npm to fetch it"
        )
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run(
            [npm, "pack", "--silent", f"mathjax@{MATHJAX_VERSION}", "--pack-destination", tmp],
            check=True,
            stdout=subprocess.DEVNULL,
        )
        (tgz,) = Path(tmp).glob("mathjax-*.tgz")
        with tarfile.open(tgz) as tar:
            members = [m for m in tar.getmembers() if m.name.startswith("package/es5/")]
            extra = {"filter": "data"} if hasattr(tarfile, "data_filter") else {}
            tar.extractall(tmp, members=members, **extra)
        cached.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(str(Path(tmp) / "package"), cached)
    return cached


def book_pages(build: Path) -> list[str]:
    """Every HTML page of the build, relative to it (Sphinx's own folders, ``_*``, aside)."""
    pages = []
    for path in sorted(build.rglob("*.html")):
        rel = path.relative_to(build)
        if not any(part.startswith("_") for part in rel.parts[:-1]):
            pages.append(rel.as_posix())
    return pages


REDIRECT = re.compile(r"""<meta[^>]+http-equiv=["']?refresh["']?[^>]*url=([^"'>\s]+)""", re.I)

# Run in the page once it has loaded: wait for MathJax (where the page loads it), the fonts and
# every image, then collect the faults that need no layout change.
SETTLE_JS = """async (timeoutMs) => {
  const deadline = (ms) => new Promise((_, reject) =>
    setTimeout(() => reject(new Error('timed out after ' + ms + ' ms')), ms));
  const notes = [];
  const usesMathJax = [...document.scripts].some(s => /mathjax/i.test(s.src || ''));
  if (usesMathJax) {
    try {
      await Promise.race([deadline(timeoutMs), (async () => {
        while (!(window.MathJax && MathJax.startup && MathJax.startup.promise)) {
          await new Promise(r => setTimeout(r, 20));
        }
        await MathJax.startup.promise;
      })()]);
    } catch (e) { notes.push('MathJax did not finish: ' + e.message); }
  }
  for (const img of document.images) img.loading = 'eager';
  const images = [...document.images];
  const decoded = await Promise.race([
    Promise.allSettled(images.map(img => img.decode())),
    deadline(timeoutMs).catch(() => null)]);
  try { await Promise.race([document.fonts.ready, deadline(timeoutMs)]); } catch (e) {}
  const broken = [];
  images.forEach((img, i) => {
    const failed = decoded === null ? !img.complete : decoded[i].status === 'rejected';
    if (failed || (img.complete && img.naturalWidth === 0 && !/\\.svg$/i.test(img.src))) {
      broken.push((img.getAttribute('src') || '(no src)') +
                  (img.alt ? ' (alt: ' + img.alt + ')' : ''));
    }
  });
  return {usesMathJax, notes, broken};
}"""

# Math and prose, read once the page has settled.
MATH_JS = r"""() => {
  const short = (s, n = 160) => {
    s = s.replace(/\s+/g, ' ').trim();
    return s.length > n ? s.slice(0, n - 1) + '…' : s;
  };
  const untypeset = [];
  for (const el of document.querySelectorAll('.math')) {
    if (!el.querySelector('mjx-container') && !el.closest('mjx-container')) {
      untypeset.push(short(el.textContent));
    }
  }
  // A TeX error is an merror; an undefined macro is, with MathJax's noundefined extension,
  // the macro's name in red.
  const errors = [];
  const items = (window.MathJax && MathJax.startup && MathJax.startup.document &&
                 MathJax.startup.document.math) ? [...MathJax.startup.document.math] : [];
  for (const item of items) {
    const mml = MathJax.startup.toMML(item.root);
    const m = /<merror[^>]*data-mjx-error="([^"]*)"|<merror|mathcolor="red"[^>]*>([^<]*)/.exec(mml);
    if (m) {
      const why = m[1] || (m[2] ? 'undefined ' + m[2] : 'error');
      errors.push(short(why + ' in: ' + item.math));
    }
  }
  if (!items.length) {
    for (const el of document.querySelectorAll('mjx-merror')) {
      const msg = el.getAttribute('data-mjx-error') || '';
      errors.push(short(msg + ' in: ' + el.textContent));
    }
  }
  // Text nodes outside code and typeset math that still hold TeX.
  const skip = 'pre, code, kbd, samp, script, style, textarea, noscript, mjx-container, .math, ' +
               '.highlight, svg';
  const tex = /\\[A-Za-z]+|\\[()\[\]{}]|\$|[_^]\{/;
  const root = document.querySelector('main') || document.body;
  const walker = document.createTreeWalker(root, NodeFilter.SHOW_TEXT);
  const prose = [];
  for (let node = walker.nextNode(); node; node = walker.nextNode()) {
    const m = tex.exec(node.data);
    if (!m || node.parentElement.closest(skip)) continue;
    const block = node.parentElement.closest('p, li, dd, dt, td, th, h1, h2, h3, h4, h5, h6, div')
                  || node.parentElement;
    const text = block.textContent.replace(/\s+/g, ' ');
    const at = text.indexOf(node.data.replace(/\s+/g, ' ').trim().slice(0, 20));
    const start = Math.max(0, (at < 0 ? 0 : at) - 30);
    prose.push('"' + short(text.slice(start, start + 150), 150) + '"');
  }
  return {untypeset, errors, prose};
}"""

# Open every collapsed cell and dropdown, then measure each pre against its box.
WIDTH_JS = r"""() => {
  for (const d of document.querySelectorAll('details')) d.open = true;
  for (const el of document.querySelectorAll('.toggle-hidden')) {
    el.classList.remove('toggle-hidden');
  }
  for (const el of document.querySelectorAll('.toggle-details__container, .toggle-content')) {
    el.style.display = '';
  }
  const wide = [];
  const root = document.querySelector('main') || document.body;
  for (const pre of root.querySelectorAll('pre')) {
    if (pre.clientWidth === 0) continue;  // not displayed
    if (pre.scrollWidth <= pre.clientWidth + 1) continue;
    const lines = pre.textContent.replace(/\n$/, '').split('\n');
    const longest = lines.reduce((a, b) => (b.length > a.length ? b : a), '');
    const style = getComputedStyle(pre);
    const box = pre.clientWidth - parseFloat(style.paddingLeft) - parseFloat(style.paddingRight);
    const charPx = (pre.scrollWidth - parseFloat(style.paddingLeft)) / Math.max(1, longest.length);
    const fits = Math.floor(box / charPx);
    const where = pre.closest('.cell_output') ? 'output'
                  : (pre.closest('.cell') ? 'code cell' : 'block');
    wide.push(where + ', ' + longest.length + ' characters in a box of about ' + fits + ': ' +
              JSON.stringify(longest.trim().slice(0, 160)));
  }
  return wide;
}"""


class PageChecker:
    """One headless browser that checks pages of one build folder, one at a time."""

    def __init__(
        self,
        build: Path,
        *,
        chromium: str | None = None,
        mathjax: Path | None = None,
        shots: Path | None = None,
        timeout_s: float = 20.0,
    ) -> None:
        self.build = Path(build).resolve()
        self.chromium = find_chromium(chromium)
        self.mathjax = Path(mathjax) if mathjax else None
        self.shots = Path(shots) if shots else None
        self.timeout_ms = int(timeout_s * 1000)
        self._pw = self._browser = None
        self._current: PageResult | None = None
        self.blocked: Counter = Counter()

    def __enter__(self) -> PageChecker:
        try:
            from playwright.sync_api import sync_playwright
        except ImportError as exc:  # pragma: no cover - requirements.txt installs it
            raise BrowserMissing(
                "the playwright package is not installed (pip install playwright)"
            ) from exc
        self._pw = sync_playwright().start()
        args = ["--disable-gpu", "--no-first-run", "--disable-background-networking"]
        if hasattr(os, "geteuid") and os.geteuid() == 0:
            args.append("--no-sandbox")  # Chromium refuses to run as root with its sandbox
        try:
            self._browser = self._pw.chromium.launch(
                executable_path=self.chromium, headless=True, args=args
            )
        except Exception:
            self._pw.stop()
            raise
        return self

    def __exit__(self, *exc) -> None:
        if self._browser is not None:
            self._browser.close()
        if self._pw is not None:
            self._pw.stop()

    # -- requests: the build from ORIGIN, MathJax from its local copy, nothing from outside --
    def _route(self, route) -> None:
        url = route.request.url
        if url.startswith(ORIGIN):
            path = unquote(urlsplit(url).path).lstrip("/")
            file = (self.build / path).resolve()
            if file.is_dir():
                file = file / "index.html"
            if file.is_relative_to(self.build) and file.is_file():
                route.fulfill(path=file, content_type=_content_type(file))
                return
            # Images are reported as broken-image by the page itself, the rest here.
            if route.request.resource_type != "image" and self._current is not None:
                self._current.faults.append(Fault("missing-file", path))
            route.fulfill(status=404, body="not found")
            return
        if url.startswith(MATHJAX_CDN) and self.mathjax is not None:
            rel = unquote(urlsplit(url).path)[len(urlsplit(MATHJAX_CDN).path) :]
            file = (self.mathjax / rel).resolve()
            if file.is_relative_to(self.mathjax.resolve()) and file.is_file():
                route.fulfill(path=file, content_type=_content_type(file))
                return
        self.blocked[urlsplit(url).netloc or url[:40]] += 1
        route.abort("blockedbyclient")

    def check(self, page_path: str) -> PageResult:
        """Load one page of the build (a path relative to it) and collect its faults."""
        result = PageResult(page_path)
        self._current = result
        start = time.perf_counter()
        try:
            source = (self.build / page_path).read_text(errors="replace")
            redirect = REDIRECT.search(source[:4000])
            if redirect:
                target = (self.build / page_path).parent / unquote(redirect.group(1).split("#")[0])
                result.note = f"redirect to {redirect.group(1)}"
                if not target.is_file():
                    result.faults.append(
                        Fault("missing-file", f"redirect target {redirect.group(1)}")
                    )
                return result
            self._check_page(page_path, result)
        finally:
            self._current = None
            result.seconds = time.perf_counter() - start
        return result

    def _check_page(self, page_path: str, result: PageResult) -> None:
        context = self._browser.new_context(
            viewport=WINDOW, device_scale_factor=1, service_workers="block"
        )
        try:
            context.route("**/*", self._route)
            page = context.new_page()
            page.set_default_timeout(self.timeout_ms)

            def on_error(exc) -> None:
                text = str(exc)
                if not any(known in text for known in KNOWN_ERRORS):
                    result.faults.append(Fault("page-error", _one_line(text)))

            def on_console(msg) -> None:
                if msg.type != "error":
                    return
                text = msg.text
                if any(known in text for known in KNOWN_ERRORS) or "ERR_BLOCKED_BY_CLIENT" in text:
                    return
                if "status of 404" in text:  # reported as missing-file or broken-image
                    return
                result.faults.append(Fault("page-error", "console: " + _one_line(text)))

            page.on("pageerror", on_error)
            page.on("console", on_console)
            page.goto(ORIGIN + page_path, wait_until="load")
            settled = page.evaluate(SETTLE_JS, self.timeout_ms)
            for note in settled["notes"]:
                result.faults.append(Fault("untypeset-math", note))
            for src in settled["broken"]:
                result.faults.append(Fault("broken-image", src))
            math = page.evaluate(MATH_JS)
            result.faults += [Fault("untypeset-math", s) for s in math["untypeset"]]
            result.faults += [Fault("tex-error", s) for s in math["errors"]]
            result.faults += [Fault("tex-in-prose", s) for s in math["prose"]]
            if self.shots is not None:
                shot = self.shots / (page_path[: -len(".html")] + ".png")
                shot.parent.mkdir(parents=True, exist_ok=True)
                page.screenshot(path=shot, full_page=True, animations="disabled")
                result.screenshot = shot
            result.faults += [Fault("wide-code", s) for s in page.evaluate(WIDTH_JS)]
        finally:
            context.close()


def _content_type(path: Path) -> str:
    kind, _ = mimetypes.guess_type(path.name)
    if path.suffix == ".woff2":
        return "font/woff2"
    if path.suffix == ".woff":
        return "font/woff"
    return kind or "application/octet-stream"


def _one_line(text: str, n: int = 200) -> str:
    text = " ".join(text.split())
    return text if len(text) <= n else text[: n - 1] + "…"


def check_build(
    build: Path,
    *,
    chromium: str | None = None,
    mathjax: Path | None = None,
    shots: Path | None = None,
    pages: list[str] | None = None,
) -> list[PageResult]:
    """Check ``pages`` (default: every page) of the build folder; one result per page."""
    build = Path(build)
    pages = book_pages(build) if pages is None else pages
    with PageChecker(build, chromium=chromium, mathjax=mathjax, shots=shots) as checker:
        return [checker.check(p) for p in pages]


def report(results: list[PageResult], seconds: float | None = None) -> str:
    """Every fault with its page, then a table of the counts per page and kind."""
    lines = []
    for r in results:
        for f in r.faults:
            lines.append(f"{r.page}: {f}")
    short = dict(
        zip(
            KINDS,
            ("untypeset", "tex-error", "tex-prose", "image", "wide-code", "page-err", "missing"),
            strict=True,
        )
    )
    width = max([len(r.page) for r in results] + [4])
    head = f"{'page':<{width}} " + " ".join(f"{short[k]:>9}" for k in KINDS) + "   total    s"
    lines += ["", head]
    total: Counter = Counter()
    for r in results:
        c = r.counts()
        total += c
        note = f"  ({r.note})" if r.note else ""
        lines.append(
            f"{r.page:<{width}} "
            + " ".join(f"{c[k]:>9}" for k in KINDS)
            + f"   {sum(c.values()):>5} {r.seconds:4.1f}{note}"
        )
    lines.append(
        f"{'all':<{width}} "
        + " ".join(f"{total[k]:>9}" for k in KINDS)
        + f"   {sum(total.values()):>5}"
    )
    n = sum(total.values())
    bad = sum(1 for r in results if r.faults)
    timing = f" in {seconds:.1f}s" if seconds is not None else ""
    lines.append(
        f"{len(results)} pages checked{timing}: "
        + (f"{n} faults on {bad} pages" if n else "no fault")
    )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("build", nargs="?", default=str(ROOT / "_build/html"))
    parser.add_argument(
        "--out",
        default=None,
        help="screenshots and report.txt (default: page-check/ beside the build folder)",
    )
    parser.add_argument("--mathjax", default=None, help="MathJax 3's npm package folder")
    parser.add_argument("--chromium", default=None, help="the browser's executable")
    parser.add_argument("--page", action="append", help="check only this page (repeatable)")
    args = parser.parse_args(argv)
    build = Path(args.build)
    if not (build / "index.html").is_file() and not args.page:
        print(f"{build} holds no built book (no index.html): build it first", file=sys.stderr)
        return 2
    out = Path(args.out) if args.out else build.parent / "page-check"
    start = time.perf_counter()
    try:
        mathjax = find_mathjax(args.mathjax)
        if out.exists():
            shutil.rmtree(out)
        out.mkdir(parents=True)
        results = check_build(
            build, chromium=args.chromium, mathjax=mathjax, shots=out, pages=args.page
        )
    except (BrowserMissing, FileNotFoundError, subprocess.CalledProcessError) as exc:
        print(f"check_pages: cannot run: {exc}", file=sys.stderr)
        return 2
    seconds = time.perf_counter() - start
    text = report(results, seconds)
    (out / "report.txt").write_text(text + "\n")
    summary = {
        "seconds": round(seconds, 1),
        "pages": {r.page: dict(r.counts()) for r in results},
        "faults": [
            {"page": r.page, "kind": f.kind, "snippet": f.snippet}
            for r in results
            for f in r.faults
        ],
    }
    (out / "report.json").write_text(json.dumps(summary, indent=1, ensure_ascii=False) + "\n")
    print(text)
    print(f"screenshots and report: {out}")
    return 1 if any(r.faults for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
