"""Templates: versioned files, rendering, output constraints and parsing (no LLM)."""

from __future__ import annotations

import json

import pytest

from llmrec.errors import ConfigError
from llmrec.knowledge import MalformedOutput, load_templates, read_template
from llmrec.knowledge._runner import Job

FACTORS = ["genre", "mood", "user rating"]


@pytest.fixture(scope="module")
def templates():
    return load_templates()


def test_packaged_templates_are_versioned_files(templates) -> None:
    assert set(templates) == {"factors", "item", "user", "cluster", "partition", "fold"}
    for name, t in templates.items():
        assert t.ref == f"{t.id}@{t.version}" and t.version >= 1
        assert t.source.endswith(f"templates/{name}.toml")


def test_request_carries_factors_and_constraint(templates) -> None:
    t = templates["item"]
    req = t.request({"scenario": "movie", "facts": "Movie: Heat (1995)"}, FACTORS, "grammar")
    system, user = req.messages[0]["content"], req.messages[1]["content"]
    assert "genre, mood, user rating" in system and user == "Movie: Heat (1995)"
    assert req.extra["grammar"].startswith('root ::= "genre:" v "\\n" "mood:" v')
    assert f"{{1,{t.words_per_factor}}}" in req.extra["grammar"]
    js = t.request({"scenario": "movie", "facts": "x"}, FACTORS, "json")
    assert js.json_schema["required"] == FACTORS and "grammar" not in js.extra
    retry = t.request({"scenario": "movie", "facts": "x"}, FACTORS, "grammar", attempt=2)
    assert retry.temperature == t.retry_temperature and retry.seed == 2


def test_parse_factor_lines_leniently(templates) -> None:
    t = templates["user"]
    text = "**Genre**: dark comedies\n- Mood: tense, slow\n3. User rating (overall): high\n"
    assert t.parse(text, FACTORS) == {"genre": "dark comedies", "mood": "tense, slow",
                                      "user rating": "high"}
    assert t.parse(json.dumps({"genre": "a", "mood": "b", "user rating": "c"}),
                   FACTORS)["mood"] == "b"
    with pytest.raises(MalformedOutput, match="user rating"):
        t.parse("genre: a\nmood: b", FACTORS)
    with pytest.raises(MalformedOutput, match="mood"):
        t.parse("genre: a\nmood:\nuser rating: c", FACTORS)
    with pytest.raises(MalformedOutput, match="invalid JSON"):
        t.parse('{"genre": "a", ', FACTORS)


def test_parse_factor_list(templates) -> None:
    t = templates["factors"]
    assert t.parse("1. Genre\n2. **Director**: who made it\n3. Era (release)\n4. Genre\n"
                   "5. Target Audience", [])["factors"] == ["genre", "director", "era",
                                                            "target audience"]
    assert t.parse("genre, era, mood", [])["factors"] == ["genre", "era", "mood"]
    with pytest.raises(MalformedOutput, match="at least 3"):
        t.parse("1. Genre\n2. Genre", [])


def test_cache_key_changes_with_version_model_and_input(templates) -> None:
    t = templates["item"]
    ident = {"backend": "local", "model": "m"}

    def key(template=t, identity=ident, facts="Movie: Heat (1995)") -> str:
        return Job("item", "item:1", template, {"scenario": "movie", "facts": facts},
                   tuple(FACTORS), "grammar", identity).key

    base = key()
    assert base == key() and len(base) == 64
    from dataclasses import replace
    assert key(template=replace(t, version=t.version + 1)) != base
    assert key(template=replace(t, max_tokens=t.max_tokens + 1)) != base
    assert key(identity={"backend": "local", "model": "other"}) != base
    assert key(facts="Movie: Heat (1996)") != base


def test_bad_template_files_give_clear_errors(tmp_path) -> None:
    bad = tmp_path / "item.toml"
    bad.write_text('id = "item"\nversion = 1\noutput = "prose"\nsystem = "s"\nuser = "u"\n')
    with pytest.raises(ConfigError, match="output must be one of"):
        read_template(bad)
    bad.write_text('id = "item"\nversion = 1\n')
    with pytest.raises(ConfigError, match="missing key 'output'"):
        read_template(bad)
    bad.write_text('id = "item"\nversion = 1\noutput = "factor_lines"\nsystem = "s"\n'
                   'user = "{nope}"\ncolour = 1\n')
    with pytest.raises(ConfigError, match="unknown key 'colour'"):
        read_template(bad)
    bad.write_text('id = "item"\nversion = 1\noutput = "factor_lines"\nsystem = "s"\n'
                   'user = "{nope}"\n')
    custom = load_templates(tmp_path)["item"]
    assert custom.source == str(bad)
    with pytest.raises(ConfigError, match=r"unknown placeholder \{nope\}"):
        custom.request({"scenario": "movie"}, FACTORS, "grammar")
    with pytest.raises(ConfigError, match="invalid TOML"):
        read_template(bad, "id = ")


def test_missing_template_folder_is_a_clear_error(tmp_path) -> None:
    with pytest.raises(ConfigError, match="template folder not found"):
        load_templates(tmp_path / "nope")
