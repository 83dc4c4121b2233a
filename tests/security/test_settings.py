"""The issue 14 limits are ordinary settings: TOML file < PASSLINE_* environment < flags
(DESIGN.md §5.1), shown in examples/broker.toml with their defaults."""

from __future__ import annotations

import dataclasses
import tomllib
from pathlib import Path

import pytest

from broker.admission import Admission
from broker.config import Settings, load_settings
from broker.errors import ConfigError

ROOT = Path(__file__).resolve().parents[2]
NEW = {
    "max_body",
    "max_batch_body",
    "http_header_timeout",
    "http_body_timeout",
    "http_keepalive_timeout",
    "http_max_connections",
    "ws_max_connections",
    "ws_max_per_address",
    "browser_hello_timeout",
    "store_hello_rate",
    "store_hello_burst",
    "trusted_proxies",
}


def test_file_then_environment_then_flags(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    conf = tmp_path / "broker.toml"
    conf.write_text(
        "[broker]\nmax_body = 1000\nws_max_per_address = 7\n"
        'trusted_proxies = ["10.0.0.0/8", "127.0.0.1"]\n'
    )
    for name in NEW:
        monkeypatch.delenv(f"PASSLINE_{name.upper()}", raising=False)
    s = load_settings(conf)
    assert (s.max_body, s.ws_max_per_address) == (1000, 7)
    assert s.trusted_proxies == ("10.0.0.0/8", "127.0.0.1")
    monkeypatch.setenv("PASSLINE_MAX_BODY", "2000")
    monkeypatch.setenv("PASSLINE_TRUSTED_PROXIES", "192.168.0.0/16, ::1")
    s = load_settings(conf)
    assert (s.max_body, s.ws_max_per_address) == (2000, 7)
    assert s.trusted_proxies == ("192.168.0.0/16", "::1")
    s = load_settings(conf, max_body=3000, http_header_timeout=2.5)
    assert (s.max_body, s.http_header_timeout) == (3000, 2.5)
    with pytest.raises(ConfigError, match="trusted_proxies"):
        Admission(load_settings(conf, trusted_proxies=("not-an-address",)))


def test_example_file_shows_every_new_setting_with_its_default() -> None:
    text = (ROOT / "examples" / "broker.toml").read_text(encoding="utf-8")
    example = tomllib.loads(text)["broker"]
    defaults = {f.name: f.default for f in dataclasses.fields(Settings)}
    for name in sorted(NEW - {"trusted_proxies"}):
        assert example.get(name) == defaults[name], name
    assert "trusted_proxies" in text  # commented out: there is no proxy by default
