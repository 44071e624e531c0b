"""Check the in-page widgets of the built book (``vae_lib.widgets``) in a real browser.

Each chapter page that should hold a widget (:data:`EXPECTED`) is opened twice in headless
Chromium, from ``file://`` and from the origin that ``benchmarks/check_pages.py`` serves the
build from, and for every widget on it the script checks

- ``missing-widget``: the page lacks a widget it should have (or one never became ready);
- ``slow-ready``: the widget became interactive more than 2 s after the page's navigation began;
- ``slow-decode``: one decode took more than 16 ms (median of 100, the page's own hook);
- ``slow-update``: for a widget whose live numbers take many decodes (chapter 9's gap: the ELBO
  on 32 draws), one update took more than 33 ms (median of 30, its hook's ``timeUpdate``);
- ``no-response``: an arrow key on its first plane or slider did not change its state;
- ``heavy-page``: the widgets add more than 3 MB to a page, or more than 8 MB to the book
  (their HTML as built: weights, code and style);
- ``page-error``: an uncaught error or console error on the page (as check_pages.py counts).

It writes a screenshot of each widget and ``widgets.txt`` / ``widgets.json`` to ``--out``
(default ``_build/page-check``, beside the page check's screenshots) and exits 1 on a fault.
Run it after ``benchmarks/check_pages.py``, from the repository root::

    python benchmarks/check_widgets.py _build/html --out _build/page-check

The browser and MathJax are found as check_pages.py finds them (``$VAE_BOOK_CHROMIUM``,
``$VAE_BOOK_MATHJAX``); timings depend on the machine, and the budgets are the issue's, for
this 2-core CPU: 16 ms lets a widget follow the mouse at 60 frames per second, 33 ms at 30.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import re
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote, urlsplit

ROOT = Path(__file__).resolve().parent.parent
_spec = importlib.util.spec_from_file_location("check_pages", ROOT / "benchmarks/check_pages.py")
check_pages = importlib.util.module_from_spec(_spec)
sys.modules.setdefault("check_pages", check_pages)
_spec.loader.exec_module(check_pages)

#: The widgets each chapter page holds, by kind.
EXPECTED = {
    "chapters/01_change_of_variables.html": ["ring"],
    "chapters/05_training_and_generation.html": ["plane"],
    "chapters/07_conditional_vae.html": ["conditional"],
    "chapters/08_sequence_vae.html": ["words"],
    "chapters/09_approximations.html": ["gap"],
}
READY_MS = 2000.0
DECODE_MS = 16.0
UPDATE_MS = 33.0
PAGE_BYTES = 3_000_000
BOOK_BYTES = 8_000_000
# A widget as vae_lib.widgets writes it, from its div to the script that mounts it.
WIDGET_HTML = re.compile(
    r'<div class="vae-widget vae-widget-(\w+)" id="([\w-]+)".*?'
    r'vaeWidgetRuntime\.mount\("\w+", "\2"\);</script>\s*</div>',
    re.S,
)

PROBE_JS = """async (args) => {
  const [id, n] = args;
  const hook = window.vaeWidgets && window.vaeWidgets[id];
  if (!hook) return null;
  const medians = [];
  for (let i = 0; i < (hook.panels || 1); i++) medians.push(hook.timeDecode(n, i).median);
  const update = hook.timeUpdate ? hook.timeUpdate(30).median : null;
  return {kind: hook.kind, readyAt: hook.readyAt, medians: medians, update: update};
}"""


@dataclass
class WidgetResult:
    page: str
    origin: str
    kind: str
    widget_id: str
    nbytes: int
    ready_ms: float | None = None
    decode_ms: list[float] = field(default_factory=list)
    update_ms: float | None = None
    responded: bool | None = None
    screenshot: str | None = None


def widgets_in(html: str) -> list[tuple[str, str, int]]:
    """``(kind, id, bytes)`` of each widget in a page's HTML."""
    return [(m.group(1), m.group(2), len(m.group(0).encode())) for m in WIDGET_HTML.finditer(html)]


def _file_route(mathjax: Path | None, blocked: list[str]):
    """Requests of a page opened from file://: files pass, MathJax from its local copy, the
    rest is refused (nothing leaves the machine)."""

    def route(r) -> None:
        url = r.request.url
        if url.startswith("file://"):
            r.continue_()
            return
        if url.startswith(check_pages.MATHJAX_CDN) and mathjax is not None:
            rel = unquote(urlsplit(url).path)[len(urlsplit(check_pages.MATHJAX_CDN).path) :]
            file = (mathjax / rel).resolve()
            if file.is_relative_to(mathjax.resolve()) and file.is_file():
                r.fulfill(path=file, content_type=check_pages._content_type(file))
                return
        blocked.append(url[:80])
        r.abort("blockedbyclient")

    return route


def check_page(checker, build: Path, page_path: str, origin: str, shots: Path | None):
    """Open one page from ``origin`` ("file" or "served"); its widgets' results and faults."""
    html = (build / page_path).read_text(errors="replace")
    found = widgets_in(html)
    results = [WidgetResult(page_path, origin, k, i, n) for k, i, n in found]
    faults: list[str] = []
    context = checker._browser.new_context(
        viewport=check_pages.WINDOW, device_scale_factor=1, service_workers="block"
    )
    try:
        blocked: list[str] = []
        if origin == "file":
            context.route("**/*", _file_route(checker.mathjax, blocked))
            url = (build / page_path).resolve().as_uri()
        else:
            context.route("**/*", checker._route)
            url = check_pages.ORIGIN + page_path
        page = context.new_page()
        page.set_default_timeout(20_000)

        def on_error(exc) -> None:
            if not any(k in str(exc) for k in check_pages.KNOWN_ERRORS):
                faults.append("page-error: " + check_pages._one_line(str(exc)))

        def on_console(msg) -> None:
            text = msg.text
            if msg.type != "error" or any(k in text for k in check_pages.KNOWN_ERRORS):
                return
            if "ERR_BLOCKED_BY_CLIENT" in text or "status of 404" in text:
                return
            faults.append("page-error: console: " + check_pages._one_line(text))

        page.on("pageerror", on_error)
        page.on("console", on_console)
        page.goto(url, wait_until="load")
        for r in results:
            try:
                page.wait_for_function(
                    "id => window.vaeWidgets && window.vaeWidgets[id]",
                    arg=r.widget_id,
                    timeout=5000,
                )
            except Exception:  # noqa: BLE001 - reported as a fault
                faults.append(f"missing-widget: {r.kind} ({r.widget_id}) never became ready")
                continue
            probe = page.evaluate(PROBE_JS, [r.widget_id, 100])
            r.ready_ms, r.decode_ms = probe["readyAt"], probe["medians"]
            r.update_ms = probe["update"]
            if r.ready_ms > READY_MS:
                faults.append(f"slow-ready: {r.kind} ready after {r.ready_ms:.0f} ms")
            if max(r.decode_ms) > DECODE_MS:
                faults.append(f"slow-decode: {r.kind} decode median {max(r.decode_ms):.1f} ms")
            if r.update_ms is not None and r.update_ms > UPDATE_MS:
                faults.append(f"slow-update: {r.kind} update median {r.update_ms:.1f} ms")
            # the first plane or slider answers an arrow key
            control = page.locator(
                f"#{r.widget_id} canvas[tabindex], #{r.widget_id} input[type=range]"
            )
            before = page.evaluate(
                "id => JSON.stringify(window.vaeWidgets[id].state())", r.widget_id
            )
            control.first.focus()
            control.first.press("ArrowRight")
            after = page.evaluate(
                "id => JSON.stringify(window.vaeWidgets[id].state())", r.widget_id
            )
            r.responded = before != after
            if not r.responded:
                faults.append(f"no-response: {r.kind} did not answer an arrow key")
            if shots is not None:
                name = f"widget-{Path(page_path).stem}-{r.kind}-{origin}.png"
                page.locator(f"#{r.widget_id}").screenshot(path=shots / name)
                r.screenshot = name
    finally:
        context.close()
    kinds = [r.kind for r in results]
    for kind in EXPECTED.get(page_path, []):
        if kind not in kinds:
            faults.append(f"missing-widget: no {kind} widget on the page")
    total = sum(r.nbytes for r in results)
    if total > PAGE_BYTES:
        faults.append(f"heavy-page: widgets add {total / 1e6:.2f} MB (budget 3 MB)")
    return results, faults


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("build", nargs="?", default=str(ROOT / "_build/html"))
    parser.add_argument(
        "--out", default=None, help="screenshots and reports (default: page-check/)"
    )
    parser.add_argument("--mathjax", default=None, help="MathJax 3's npm package folder")
    parser.add_argument("--chromium", default=None, help="the browser's executable")
    args = parser.parse_args(argv)
    build = Path(args.build).resolve()
    if not (build / "index.html").is_file():
        print(f"{build} holds no built book (no index.html): build it first", file=sys.stderr)
        return 2
    out = Path(args.out) if args.out else build.parent / "page-check"
    out.mkdir(parents=True, exist_ok=True)
    # every page with a widget, and every page that should have one
    pages = sorted(
        set(EXPECTED)
        | {
            p
            for p in check_pages.book_pages(build)
            if "vae-widget" in (build / p).read_text(errors="replace")
        }
    )
    start = time.perf_counter()
    results: list[WidgetResult] = []
    faults: list[tuple[str, str, str]] = []
    try:
        mathjax = check_pages.find_mathjax(args.mathjax)
        with check_pages.PageChecker(build, chromium=args.chromium, mathjax=mathjax) as checker:
            for page_path in pages:
                if not (build / page_path).is_file():
                    faults.append((page_path, "-", "missing-widget: the page was not built"))
                    continue
                for origin in ("file", "served"):
                    r, f = check_page(checker, build, page_path, origin, out)
                    results += r
                    faults += [(page_path, origin, x) for x in f]
    except (check_pages.BrowserMissing, FileNotFoundError, subprocess.CalledProcessError) as exc:
        print(f"check_widgets: cannot run: {exc}", file=sys.stderr)
        return 2
    book_bytes = sum(r.nbytes for r in results if r.origin == "file")
    if book_bytes > BOOK_BYTES:
        faults.append(
            ("(book)", "-", f"heavy-page: widgets add {book_bytes / 1e6:.2f} MB to the book")
        )
    lines = [
        f"{'page':<42} {'origin':<7} {'widget':<12} {'ready ms':>8} {'decode ms':>10} "
        f"{'update ms':>9} {'MB':>6} answers"
    ]
    for r in results:
        decode = "/".join(f"{d:.2f}" for d in r.decode_ms) or "-"
        ready = f"{r.ready_ms:.0f}" if r.ready_ms is not None else "-"
        update = f"{r.update_ms:.2f}" if r.update_ms is not None else "-"
        lines.append(
            f"{r.page:<42} {r.origin:<7} {r.kind:<12} {ready:>8} {decode:>10} {update:>9} "
            f"{r.nbytes / 1e6:>6.3f} {r.responded}"
        )
    lines.append(f"widgets add {book_bytes / 1e6:.3f} MB to the book (budget 8 MB)")
    lines += [f"{p} ({o}): {f}" for p, o, f in faults]
    seconds = time.perf_counter() - start
    lines.append(
        f"{len(pages)} pages checked in {seconds:.1f}s: "
        + (f"{len(faults)} faults" if faults else "no fault")
    )
    text = "\n".join(lines)
    (out / "widgets.txt").write_text(text + "\n")
    report = {
        "seconds": round(seconds, 1),
        "book_bytes": book_bytes,
        "widgets": [r.__dict__ for r in results],
        "faults": [{"page": p, "origin": o, "fault": f} for p, o, f in faults],
    }
    (out / "widgets.json").write_text(json.dumps(report, indent=1) + "\n")
    print(text)
    print(f"widget screenshots and report: {out}")
    return 1 if faults else 0


if __name__ == "__main__":
    sys.exit(main())
