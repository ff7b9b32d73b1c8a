"""Headless-chromium helper for the report tests (no extra Python packages).

``check_page(html)`` copies the page, injects a small test-only script at the top of <head> that
records window errors, console.error calls and unhandled rejections, and - after the load event -
whether every <img> decoded (complete and naturalWidth > 0), how many inline SVGs rendered with a
non-empty box, which network resources were fetched (Performance API), and whether the sortable
results table reorders on a header click.  The results land in a <pre id="__report_check__"> that
``--dump-dom`` prints.  The browser runs with networking disabled as far as flags allow (the host
resolver maps every name to NOTFOUND), so a page that needs the network fails the check.

``screenshot(html, png)`` writes a PNG of the top of the page with ``--screenshot``.
"""

from __future__ import annotations

import html as html_mod
import json
import os
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

CANDIDATES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
BASE_FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--disable-extensions", "--disable-default-apps", "--mute-audio", "--no-default-browser-check",
    "--disable-dev-shm-usage", "--host-resolver-rules=MAP * ~NOTFOUND",
]

CHECK_SCRIPT = r"""<script data-test-only="report-check">
(function () {
  var errors = [];
  window.addEventListener("error", function (e) {
    var t = e.target;
    if (t && t !== window && t.tagName) {
      errors.push("resource error: " + t.tagName + " " + String(t.src || t.href || "").slice(0, 120));
    } else {
      errors.push("error: " + e.message + " at " + e.filename + ":" + e.lineno);
    }
  }, true);
  window.addEventListener("unhandledrejection", function (e) { errors.push("unhandled rejection: " + e.reason); });
  var original = console.error;
  console.error = function () {
    errors.push("console.error: " + Array.prototype.join.call(arguments, " "));
    return original.apply(console, arguments);
  };
  window.addEventListener("load", function () {
    setTimeout(function () {
      var imgs = Array.prototype.slice.call(document.images);
      var broken = imgs.filter(function (i) { return !(i.complete && i.naturalWidth > 0); })
                       .map(function (i) { return i.alt || i.src.slice(0, 80); });
      var svgs = Array.prototype.slice.call(document.querySelectorAll("figure svg"));
      var emptySvgs = svgs.filter(function (s) {
        var r = s.getBoundingClientRect(); return !(r.width > 0 && r.height > 0) || !s.querySelector("g, text, path");
      }).length;
      var resources = (performance.getEntriesByType ? performance.getEntriesByType("resource") : [])
        .map(function (r) { return r.name; })
        .filter(function (n) { return n.indexOf("data:") !== 0; });
      var sort = null;
      var table = document.querySelector("table.results.sortable");
      if (table) {
        try {
          var th = table.tHead.rows[0].cells[1];  // parameters column
          var col = function () {
            return Array.prototype.map.call(table.tBodies[0].rows, function (r) {
              return parseFloat(r.cells[1].getAttribute("data-value"));
            });
          };
          th.click(); var asc = col(); th.click(); var desc = col();
          var sorted = function (a, up) { for (var k = 1; k < a.length; k++) { if (up ? a[k] < a[k - 1] : a[k] > a[k - 1]) return false; } return true; };
          sort = sorted(asc, true) && sorted(desc, false);
        } catch (err) { errors.push("sort check: " + err); sort = false; }
      }
      var result = { images: imgs.length, broken: broken, svgs: svgs.length, empty_svgs: emptySvgs,
                     resources: resources, errors: errors, sort_ok: sort,
                     title: document.title, sections: document.querySelectorAll("section.dataset").length };
      var pre = document.createElement("pre");
      pre.id = "__report_check__";
      pre.textContent = JSON.stringify(result);
      document.body.appendChild(pre);
    }, 50);
  });
})();
</script>"""


class BrowserUnavailable(RuntimeError):
    pass


@dataclass
class PageCheck:
    images: int
    broken: list
    svgs: int
    empty_svgs: int
    resources: list
    errors: list
    sort_ok: bool | None
    title: str
    sections: int
    stderr: str = ""


def find_chromium() -> str | None:
    for name in CANDIDATES:
        path = shutil.which(name)
        if path:
            return path
    return None


def ensure_chromium(install: bool = True) -> str:
    """The chromium binary; installs Debian's `chromium` when missing and running as root."""
    path = find_chromium()
    if path:
        return path
    if not install:
        raise BrowserUnavailable("chromium is not installed")
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        raise BrowserUnavailable("chromium is not installed and cannot be installed here (not root or no apt-get); "
                                 "install it with `apt-get install -y chromium`")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for cmd in (["apt-get", "update"], ["apt-get", "install", "-y", "--no-install-recommends", "chromium"]):
        done = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=900)
        if done.returncode != 0:
            raise BrowserUnavailable(f"{' '.join(cmd)} failed: {done.stderr[-500:]}")
    path = find_chromium()
    if not path:
        raise BrowserUnavailable("chromium still missing after apt-get install")
    return path


def _run(chromium: str, args: list[str], timeout: float) -> subprocess.CompletedProcess:
    with tempfile.TemporaryDirectory(prefix="chromium-profile-") as profile:
        cmd = [chromium, *BASE_FLAGS, f"--user-data-dir={profile}", *args]
        return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout,
                              env={**os.environ, "HOME": profile})


def inject(page_html: str) -> str:
    match = re.search(r"<head[^>]*>", page_html, flags=re.I)
    if not match:
        raise ValueError("page has no <head>")
    return page_html[:match.end()] + CHECK_SCRIPT + page_html[match.end():]


def check_page(html_path: Path, chromium: str | None = None, timeout: float = 45.0) -> PageCheck:
    chromium = chromium or ensure_chromium()
    html_path = Path(html_path)
    with tempfile.TemporaryDirectory(prefix="report-check-") as tmp:
        page = Path(tmp) / html_path.name
        page.write_text(inject(html_path.read_text()))
        done = _run(chromium, ["--virtual-time-budget=15000", "--dump-dom", page.as_uri()], timeout)
    match = re.search(r'<pre id="__report_check__">(.*?)</pre>', done.stdout, flags=re.S)
    if not match:
        raise AssertionError(f"no check result in the dumped DOM (rc {done.returncode}); stderr: {done.stderr[-2000:]}")
    return PageCheck(**json.loads(html_mod.unescape(match.group(1))), stderr=done.stderr[-2000:])


def screenshot(html_path: Path, png_path: Path, chromium: str | None = None, size: tuple[int, int] = (1400, 2600),
               timeout: float = 45.0) -> Path:
    chromium = chromium or ensure_chromium()
    png_path = Path(png_path).resolve()
    png_path.parent.mkdir(parents=True, exist_ok=True)
    if png_path.exists():
        png_path.unlink()
    done = _run(chromium, ["--hide-scrollbars", f"--window-size={size[0]},{size[1]}", "--virtual-time-budget=10000",
                           f"--screenshot={png_path}", Path(html_path).resolve().as_uri()], timeout)
    if not png_path.exists():
        raise AssertionError(f"no screenshot written (rc {done.returncode}); stderr: {done.stderr[-2000:]}")
    return png_path
