"""The report in a real headless browser (Debian's chromium; installed when missing and root).

Checks: no console/script errors, every <img> decoded (naturalWidth > 0), every inline SVG rendered,
no network resource fetched, the sortable results table sorts.  Writes a screenshot to
tests/artifacts/report_screenshot.png (or $REPORT_ARTIFACTS_DIR).
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

import browser
from fixtures_report import rendered_report

ARTIFACTS = Path(os.environ.get("REPORT_ARTIFACTS_DIR", Path(__file__).resolve().parent / "artifacts"))


@pytest.fixture(scope="module")
def chromium():
    try:
        return browser.ensure_chromium(install=True)
    except browser.BrowserUnavailable as error:
        pytest.skip(f"headless browser check needs chromium: {error}")


def test_report_loads_cleanly_in_headless_chromium(tmp_path_factory, chromium):
    rep = rendered_report(tmp_path_factory)
    check = browser.check_page(rep.html_path, chromium)
    assert check.errors == [], check.errors
    assert check.resources == [], f"page fetched resources: {check.resources}"
    assert check.images == rep.html.count("<img ") and check.images > 0
    assert check.broken == [], f"images not decoded: {check.broken}"
    assert check.svgs == len(re.findall(r'<div class="svg-wrap"><svg', rep.html)) and check.svgs > 0
    assert check.empty_svgs == 0
    assert check.sort_ok is True
    assert check.sections == len(rep.tree.datasets)
    assert check.title == "Fixture report"

    shot = browser.screenshot(rep.html_path, ARTIFACTS / "report_screenshot.png", chromium)
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 10_000
    print(f"\nreport screenshot: {shot}\nreport page: {rep.html_path}")


def test_checker_detects_a_broken_page(tmp_path, chromium):
    page = tmp_path / "broken.html"
    page.write_text('<!DOCTYPE html><html><head><title>t</title></head><body>'
                    '<img src="data:image/png;base64,AAAA" alt="bad">'
                    '<script>undefinedFunction();</script></body></html>')
    check = browser.check_page(page, chromium)
    assert check.broken == ["bad"]
    assert any("undefinedFunction" in e for e in check.errors)
