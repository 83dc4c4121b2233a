"""The static apps as files: layout the broker serves, ES2017 syntax, no HTML sinks."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from kds_web import STATIC_DIR

SCRIPTS = sorted(STATIC_DIR.rglob("*.js"))
PAGES = [
    STATIC_DIR / "kds" / "index.html",
    STATIC_DIR / "kds" / "expo" / "index.html",
    STATIC_DIR / "hq" / "index.html",
    STATIC_DIR / "board" / "index.html",
    STATIC_DIR / "hq" / "reports.html",
]

# Chrome 61-era Android (ES2017 + modules): syntax and APIs that came later, and the
# DOM calls that would turn order text into markup.
FORBIDDEN = {
    r"\?\.(?!\d)": "optional chaining (ES2020)",
    r"\?\?": "nullish coalescing (ES2020)",
    r"\.flat(Map)?\(": "Array.prototype.flat (ES2019)",
    r"\.finally\(": "Promise.prototype.finally (ES2018)",
    r"\{\s*\.\.\.": "object spread (ES2018)",
    r"\bAbortController\b": "AbortController (Chrome 66)",
    r"\bimport\(": "dynamic import (Chrome 63)",
    r"\.replaceAll\(": "String.prototype.replaceAll (ES2021)",
    r"\bstructuredClone\b": "structuredClone (Chrome 98)",
    r"innerHTML|outerHTML|insertAdjacentHTML|document\.write": "an HTML sink",
}


def code_of(path: Path) -> str:
    """The file without comments (good enough for these patterns)."""
    text = path.read_text(encoding="utf-8")
    text = re.sub(r"/\*.*?\*/", "", text, flags=re.S)
    return re.sub(r"(^|[^:'\"\\])//.*$", r"\1", text, flags=re.M)


def test_the_broker_finds_each_app_where_it_looks() -> None:
    # broker/rest.py mounts STATIC_DIR/kds at /kds, STATIC_DIR/hq at /hq and STATIC_DIR/board
    # at /board (html=True)
    for page in PAGES:
        assert page.is_file(), page
    assert SCRIPTS, "no scripts found"


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(STATIC_DIR)))
def test_pages_load_only_files_that_exist(page: Path) -> None:
    html = page.read_text(encoding="utf-8")
    refs = re.findall(r'(?:src|href)="([^"]+)"', html)
    assert any(r.endswith("main.js") for r in refs)
    for ref in refs:
        if ref.startswith("data:"):
            continue
        assert not ref.startswith(("/", "http")), f"{ref}: keep it relative (reverse proxies)"
        assert (page.parent / ref).resolve().is_file(), ref


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: str(p.relative_to(STATIC_DIR)))
def test_scripts_stay_within_es2017_and_never_write_html(script: Path) -> None:
    code = code_of(script)
    for pattern, what in FORBIDDEN.items():
        hit = re.search(pattern, code, flags=re.M)
        assert hit is None, f"{script.name}: {what}: {hit.group(0) if hit else ''!r}"
