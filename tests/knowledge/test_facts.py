"""Item facts: titles, genres and knowledge-graph relations named by other items (no LLM)."""

from __future__ import annotations

import polars as pl
import pytest

from llmrec.data import build_dataset
from llmrec.errors import DataError
from llmrec.knowledge import ItemFacts
from llmrec.knowledge._facts import text_problem


def dataset(tmp_path, with_kg: bool = True):
    inter = pl.DataFrame({"user_id": ["u"] * 4, "item_id": ["1", "2", "3", "4"]})
    items = pl.DataFrame({"item_id": ["1", "2", "3", "4"],
                          "title": ["Heat", "The Insider", "Collateral", "Babe"],
                          "year": [1995, 1999, 2004, 1995],
                          "genres": [["Crime", "Thriller"], ["Drama"], ["Crime"], []]})
    meta = {}
    if with_kg:
        (tmp_path / "x.kg").write_text(
            "head_id:token\trelation_id:token\ttail_id:token\n"
            "m.heat\tfilm.film.directed_by\tm.mann\n"
            "m.insider\tfilm.film.directed_by\tm.mann\n"
            "m.collateral\tfilm.film.directed_by\tm.mann\n"
            "m.heat\tfilm.film.actor\tm.pacino\n"
            "m.insider\tfilm.film.actor\tm.pacino\n"
            "m.heat\tfilm.film.actor\tm.deniro\n"
            "m.insider\tfilm.film.actor\tm.crowe\n"
            "m.collateral\tfilm.film.actor\tm.deniro\n"
            "m.heat\tfilm.film.actor\tm.voight\n"
            "m.collateral\tfilm.film.actor\tm.voight\n"
            "m.heat\tfilm.film.country\tm.usa\n"
            "m.babe\tfilm.film.country\tm.usa\n")
        (tmp_path / "x.link").write_text("item_id:token\tentity_id:token\n1\tm.heat\n"
                                         "2\tm.insider\n3\tm.collateral\n4\tm.babe\n")
        meta = {"extra_files": {"kg": str(tmp_path / "x.kg"), "link": str(tmp_path / "x.link")}}
    return build_dataset("x", inter, items, meta=meta)


def test_item_facts_name_related_items_of_the_data_set(tmp_path) -> None:
    facts = ItemFacts(dataset(tmp_path), "movie", kg=True, related_per_relation=3)
    # Collateral shares two actors with Heat, The Insider one: most shared first
    assert facts.text(0) == ("Movie: Heat (1995)\nGenres: Crime, Thriller\n"
                             "Same director as: The Insider (1999), Collateral (2004)\n"
                             "Shares cast with: Collateral (2004), The Insider (1999)")
    assert facts.text(3) == "Movie: Babe (1995)"          # countries are not a relation used
    plain = ItemFacts(dataset(tmp_path), "movie")           # kg off by default
    assert plain.text(0) == "Movie: Heat (1995)\nGenres: Crime, Thriller"


def test_kg_needs_the_files(tmp_path) -> None:
    with pytest.raises(DataError, match="no knowledge graph"):
        ItemFacts(dataset(tmp_path, with_kg=False), "movie", kg=True)


def test_ml100k_kg_facts_build(ml100k_split) -> None:
    ds, _ = ml100k_split
    facts = ItemFacts(ds, "movie", kg=True)
    assert sum(1 for i in range(ds.n_items) if "Shares cast with:" in facts.text(i)) > 1000


def test_text_problems() -> None:
    assert text_problem("Heat") is None
    assert text_problem("  ") == "empty item text" and text_problem(None) == "empty item text"
    assert "not valid UTF-8" in text_problem("Caf\ufffd")
    assert "not valid UTF-8" in text_problem("bad\udcffbyte")
    assert "not valid UTF-8" in text_problem("bell\x07")
