#!/usr/bin/env python3
"""Loads a page in headless Chromium at one or more viewports and reports
every <img> on it as JSON: what the browser chose from srcset (currentSrc)
and whether it decoded (naturalWidth > 0).  t/033_browser.pl uses it on a
product page whose image URLs point at the CDN edge.

    product_page.py URL --viewport 360x800 --viewport 1400x900 \
        [--screenshot 1400=/path/wide.png] [--reload]

Prints one JSON line per step:
    {"step": "load", "viewports": [{"width": 360, "height": 800,
      "images": [{"alt": ..., "currentSrc": ..., "naturalWidth": ...,
                  "naturalHeight": ..., "complete": true,
                  "renderedWidth": CSS pixels on the page}, ...],
      "screenshot": "/path/or/null"}, ...]}
With --reload it then waits for a line on standard input, reloads every
viewport's page in the same browser (its cache and all) and prints a
"reload" step.  Screenshots are taken at every step, so the last one stays.

The browser is Debian's Chromium (--chromium, /usr/bin/chromium); Playwright
never downloads one.  Exits 2 with a message on standard error when the
browser cannot be started, a page cannot be loaded or its images do not
finish loading within --timeout seconds.
"""
import argparse
import json
import os
import sys

try:
    from playwright.sync_api import Error as PlaywrightError
    from playwright.sync_api import sync_playwright
except ImportError as e:  # the venv of scripts/install-deps.sh has it
    sys.exit(f"product_page.py: Playwright for Python is not installed ({e}); "
             "run scripts/install-deps.sh and use $IMGMOD_TOOLS_VENV/bin/python")

# Every image has settled: loaded or failed (complete is true either way;
# naturalWidth tells which).
ALL_COMPLETE = "() => Array.from(document.images).every(img => img.complete)"
REPORT = """() => Array.from(document.images).map(img => ({
    alt: img.alt, currentSrc: img.currentSrc, naturalWidth: img.naturalWidth,
    naturalHeight: img.naturalHeight, complete: img.complete,
    renderedWidth: img.getBoundingClientRect().width}))"""


def fail(message):
    print(f"product_page.py: {message}", file=sys.stderr)
    sys.exit(2)


def viewport(text):
    try:
        w, h = (int(x) for x in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"viewport {text!r} is not WIDTHxHEIGHT")
    return w, h


def screenshot(text):
    width, sep, path = text.partition("=")
    if not sep or not width.isdigit() or not path:
        raise argparse.ArgumentTypeError(f"screenshot {text!r} is not WIDTH=PATH")
    return int(width), path


def settle(page, timeout_ms):
    """Waits for the load event, then for every image to be complete."""
    page.wait_for_load_state("load", timeout=timeout_ms)
    page.wait_for_function(ALL_COMPLETE, timeout=timeout_ms)


def report(step, pages, shots):
    out = {"step": step, "viewports": []}
    for (w, h), page in pages:
        shot = shots.get(w)
        if shot:
            page.screenshot(path=shot, full_page=False)
        out["viewports"].append({"width": w, "height": h, "images": page.evaluate(REPORT),
                                 "screenshot": shot})
    print(json.dumps(out), flush=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("url", help="page URL (http://, file://) or a path to an HTML file")
    ap.add_argument("--viewport", type=viewport, action="append", required=True,
                    help="WIDTHxHEIGHT in CSS pixels, device scale factor 1; repeatable")
    ap.add_argument("--screenshot", type=screenshot, action="append", default=[],
                    help="WIDTH=PATH: a PNG of that viewport (the visible part)")
    ap.add_argument("--reload", action="store_true",
                    help="after the first report, wait for a line on stdin, reload, report again")
    ap.add_argument("--chromium", default="/usr/bin/chromium")
    ap.add_argument("--timeout", type=float, default=20, help="seconds per step")
    args = ap.parse_args()

    url = args.url
    if "://" not in url:
        url = "file://" + os.path.abspath(url)
    if not os.access(args.chromium, os.X_OK):
        fail(f"{args.chromium} is not an executable browser: install Debian's chromium "
             "(scripts/install-deps.sh)")
    timeout_ms = args.timeout * 1000
    shots = dict(args.screenshot)

    with sync_playwright() as pw:
        try:
            # Chromium's sandbox refuses to run as root; headless in a test
            # has nothing of the user's to protect.
            browser = pw.chromium.launch(
                executable_path=args.chromium, headless=True,
                args=["--no-sandbox"] if os.geteuid() == 0 else [])
        except PlaywrightError as e:
            fail(f"cannot start {args.chromium}: {e}")
        try:
            pages = []
            for w, h in args.viewport:
                ctx = browser.new_context(viewport={"width": w, "height": h}, device_scale_factor=1)
                page = ctx.new_page()
                response = page.goto(url, timeout=timeout_ms)
                if response is not None and not response.ok:
                    fail(f"{url} answered {response.status} at {w}x{h}")
                settle(page, timeout_ms)
                pages.append(((w, h), page))
            report("load", pages, shots)
            if args.reload:
                if not sys.stdin.readline():
                    fail("standard input closed before the reload")
                for (w, h), page in pages:
                    page.reload(timeout=timeout_ms)
                    settle(page, timeout_ms)
                report("reload", pages, shots)
        except PlaywrightError as e:
            fail(f"{url}: {e}")
        finally:
            browser.close()


if __name__ == "__main__":
    main()
