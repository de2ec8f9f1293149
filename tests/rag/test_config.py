"""Configuration: a user's TOML file and overrides, with errors that say what is wrong."""

from __future__ import annotations

import pytest

from rag.config import Config, IngestConfig, load_config
from rag.errors import ConfigError


def test_toml_file_sets_sections_and_overrides_win(tmp_path):
    path = tmp_path / "mmrag.toml"
    path.write_text('[ingest]\ndpi = 150\nocr = "never"\n[ask]\ntop_k = 3\n[store]\nbackend = "qdrant"\nurl = "http://q:6333"\n')
    config = load_config(path, ask__top_k=0)
    assert config.ingest.dpi == 150 and config.ingest.ocr == "never"
    assert config.store.backend == "qdrant" and config.store.url == "http://q:6333"
    # a falsy override still wins over the file
    assert config.ask.top_k == 0
    assert load_config().ingest == IngestConfig() == Config().ingest


@pytest.mark.parametrize(
    "text, match",
    [
        ("[ingest]\ndpi = 5\n", "dpi must be within"),
        ("[ingest]\nresolution = 100\n", "unknown keys \\['resolution'\\]"),
        ("[search]\nx = 1\n", "unknown tables \\['search'\\]"),
        ("[ingest\n", "not valid TOML"),
        ('[store]\nbackend = "redis"\n', "store.backend must be edge or qdrant"),
    ],
)
def test_bad_config_names_the_problem(tmp_path, text, match):
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=match):
        load_config(path)


def test_missing_config_file(tmp_path):
    with pytest.raises(ConfigError, match="config file not found"):
        load_config(tmp_path / "nope.toml")
