"""The environment settings: defaults, values, one-line refusals, and all of them documented."""

from __future__ import annotations

from pathlib import Path

import pytest

from samia.errors import ConfigurationError
from samia.settings import ANNOTATE_CACHE_MB, LEASE_SECONDS, SETTINGS, cache_root

ARCHITECTURE = Path(__file__).parents[1] / "docs" / "architecture.md"


def test_a_setting_is_its_default_its_value_or_a_one_line_refusal(monkeypatch) -> None:
    monkeypatch.delenv("SAMIA_LEASE_SECONDS", raising=False)
    assert LEASE_SECONDS.value() == 30
    monkeypatch.setenv("SAMIA_LEASE_SECONDS", " 7.5 ")
    assert LEASE_SECONDS.value() == 7.5
    monkeypatch.setenv("SAMIA_LEASE_SECONDS", "soon")
    with pytest.raises(ConfigurationError, match=r"^SAMIA_LEASE_SECONDS='soon' is not a number of seconds$"):
        LEASE_SECONDS.value()
    monkeypatch.setenv("SAMIA_ANNOTATE_CACHE_MB", "1")
    with pytest.raises(ConfigurationError, match=r"^SAMIA_ANNOTATE_CACHE_MB must be >= 16 MiB, got 1$"):
        ANNOTATE_CACHE_MB.value()
    monkeypatch.setenv("SAMIA_ANNOTATE_CACHE_MB", "nan")
    with pytest.raises(ConfigurationError, match="must be >= 16 MiB, got nan"):
        ANNOTATE_CACHE_MB.value()


def test_the_cache_root_follows_samia_cache(monkeypatch, tmp_path) -> None:
    monkeypatch.setenv("SAMIA_CACHE", str(tmp_path))
    assert cache_root() == tmp_path
    monkeypatch.setenv("SAMIA_CACHE", "")
    assert cache_root() == Path.home() / ".cache" / "samia"


def test_every_setting_is_documented() -> None:
    text = ARCHITECTURE.read_text()
    assert [s.variable for s in SETTINGS if f"`{s.variable}`" not in text] == []
