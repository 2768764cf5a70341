"""Real-world CSV exports: separators, escapes, encodings, BOMs, CRLF, side files, no timestamps.

The Book-Crossing-style files come from :func:`llmrec.testing.exports.write_bookcrossing`,
and every check compares what a reader returns with what the generator wrote.
"""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from llmrec.data import load_dataset, read_path
from llmrec.data.formats._text import _unescape_backslashes, sniff_separator
from llmrec.errors import ConfigError, DataError
from llmrec.testing.exports import write_bookcrossing

RATING = {"rating": "Book-Rating"}
ITEM_COLUMNS = {"item_id": "ISBN", "title": "Book-Title", "author": "Book-Author",
                "year": "Year-Of-Publication"}
USER_COLUMNS = {"user_id": "User-ID", "age": "Age", "location": "Location"}


@pytest.fixture(scope="module")
def bx(tmp_path_factory):
    return write_bookcrossing(tmp_path_factory.mktemp("bx"))


def _bx_options(bx) -> dict:
    return {"columns": RATING, "encoding": "latin-1", "items": bx.books_path,
            "item_columns": ITEM_COLUMNS, "users": bx.users_path, "user_columns": USER_COLUMNS}


def _first_non_ascii_line(data: bytes) -> int:
    first = next(i for i, b in enumerate(data) if b >= 0x80)
    return data.count(b"\n", 0, first) + 1


# ---------------------------------------------------------------- the Book-Crossing export

def test_bookcrossing_export_reads_as_written(bx) -> None:
    raw = read_path(bx.ratings_path, **_bx_options(bx))
    assert raw.interactions.columns == ["user_id", "item_id", "rating"]   # no timestamp
    assert list(raw.interactions.iter_rows()) == [(u, i, float(r)) for u, i, r in bx.ratings]
    items = raw.items.rows_by_key("item_id", named=True, unique=True)
    assert raw.items.columns == ["item_id", "title", "author", "year"]
    assert set(items) == set(bx.books)
    for isbn, book in bx.books.items():
        assert items[isbn]["title"] == book["title"]          # both escape styles, ; and ,
        assert items[isbn]["author"] == book["author"]
        assert items[isbn]["year"] == (None if book["year"] == "0" else int(book["year"]))
    assert any('"' in b["title"] for b in bx.books.values())    # the cases are really there
    assert any("\\" in b["title"] for b in bx.books.values())
    users = raw.users.rows_by_key("user_id", named=True, unique=True)
    for uid, user in bx.users.items():
        assert users[uid]["location"] == user["location"]
        assert users[uid]["age"] == (None if user["age"] == "NULL" else int(user["age"]))


@pytest.mark.parametrize("encoding, bom", [("utf-8", False), ("utf-8", True),
                                           ("utf-16", True), ("cp1252", False)])
def test_encodings_and_byte_order_marks_read_alike(bx, tmp_path, encoding, bom) -> None:
    other = write_bookcrossing(tmp_path, encoding=encoding, bom=bom)
    head = other.books_path.read_bytes()[:4]
    assert head.startswith((b"\xef\xbb\xbf", b"\xff\xfe", b"\xfe\xff")) == bom
    options = _bx_options(other)
    if bom or encoding == "utf-8":
        del options["encoding"]                    # a BOM, or UTF-8, needs no option
    else:
        options["encoding"] = encoding
    got, want = read_path(other.ratings_path, **options), read_path(bx.ratings_path,
                                                                   **_bx_options(bx))
    assert got.interactions.equals(want.interactions)
    assert got.items.equals(want.items) and got.users.equals(want.users)
    assert got.items.columns[0] == "item_id"       # not "\ufeffISBN"


def test_bom_wins_over_encoding_option(bx, tmp_path) -> None:
    other = write_bookcrossing(tmp_path, encoding="utf-8", bom=True)
    options = _bx_options(other)                   # still says latin-1
    assert read_path(other.ratings_path, **options).items.equals(
        read_path(bx.ratings_path, **_bx_options(bx)).items)


def test_not_utf8_names_the_line_and_suggests_latin1(bx) -> None:
    with pytest.raises(DataError) as info:
        read_path(bx.ratings_path, columns=RATING, items=bx.books_path)
    message = str(info.value)
    line = _first_non_ascii_line(bx.books_path.read_bytes())
    assert message.startswith(f"{bx.books_path}: line {line}: not valid UTF-8")
    assert "--encoding latin-1" in message and "\n" not in message


def test_unknown_encoding_and_separator_are_config_errors(bx) -> None:
    with pytest.raises(ConfigError, match="unknown encoding 'latin-9000'"):
        read_path(bx.ratings_path, encoding="latin-9000")
    with pytest.raises(ConfigError, match="separator ':' is not one of"):
        read_path(bx.ratings_path, separator=":")


# ---------------------------------------------------------------- separators, escapes, CRLF

def _table(sep: str) -> str:
    """Quoted fields that hold every other separator, so only the right one fits."""
    rows = [["user", "item", "rating", "title"], ["u1", "i1", "4", "a,b;c|d\te"],
            ["u1", "i2", "5", "plain"], ["u2", "i1", "3", "x;y,z"]]
    return "".join(sep.join(f'"{v}"' if k == 3 else v for k, v in enumerate(r)) + "\n"
                   for r in rows)


@pytest.mark.parametrize("sep", [",", ";", "\t", "|"])
@pytest.mark.parametrize("suffix", [".csv", ".tsv", ".txt"])
def test_separator_is_detected(tmp_path, sep, suffix) -> None:
    path = tmp_path / f"t{suffix}"
    path.write_text(_table(sep))
    assert sniff_separator(path, _table(sep)) == sep
    raw = read_path(path)
    assert raw.interactions["item_id"].to_list() == ["i1", "i2", "i1"]
    assert raw.interactions["rating"].to_list() == [4.0, 5.0, 3.0]


def test_forced_separator_wins_over_detection(tmp_path) -> None:
    path = tmp_path / "amb.txt"
    path.write_text("user|item,rating\nu1|i1,4\nu2|i2,5\n")   # both , and | fit every line
    detected = read_path(path, columns={"user_id": "user|item", "item_id": "rating"})
    assert detected.interactions["item_id"].to_list() == ["4", "5"]      # comma
    forced = read_path(path, separator="pipe", columns={"item_id": "item,rating"})
    assert forced.interactions.rows() == [("u1", "i1,4"), ("u2", "i2,5")]
    assert read_path(path, separator="|", columns={"item_id": "item,rating"}).interactions.equals(
        forced.interactions)


def test_one_column_file_asks_for_a_separator(tmp_path) -> None:
    path = tmp_path / "one.csv"
    path.write_text("user:item\nu1:i1\n")
    with pytest.raises(DataError, match=r"one\.csv: cannot tell the separator .* pass --sep"):
        read_path(path)


def test_both_quote_escapes_and_backslashes(tmp_path) -> None:
    path = tmp_path / "esc.csv"
    path.write_text('user,item,title\n'
                    'u1,i1,"He said \\"hi\\""\n'
                    'u1,i2,"She said ""bye"""\n'
                    'u2,i3,"back\\\\slash, \\"end\\""\n'
                    'u2,i4,"AC\\DC"\n')
    items = tmp_path / "items.csv"
    items.write_bytes(path.read_bytes().replace(b"user,item,title", b"u,item_id,title"))
    raw = read_path(path, items=items, item_columns={"item_id": "item_id", "title": "title"})
    assert raw.items["title"].to_list() == ['He said "hi"', 'She said "bye"',
                                            'back\\slash, "end"', "AC\\DC"]


def test_crlf_and_cr_line_ends_read_like_lf(bx, tmp_path) -> None:
    data = bx.books_path.read_bytes()
    assert b"\r\n" in data
    lf, cr = tmp_path / "lf.csv", tmp_path / "cr.csv"
    lf.write_bytes(data.replace(b"\r\n", b"\n"))
    cr.write_bytes(data.replace(b"\r\n", b"\r"))
    opts = {"encoding": "latin-1", "item_columns": ITEM_COLUMNS}
    want = read_path(bx.ratings_path, items=bx.books_path, **opts).items
    for path in (lf, cr):
        got = read_path(bx.ratings_path, items=path, **opts).items
        assert got.equals(want)
        assert not any(t.endswith("\r") for t in got["title"].to_list())


# ---------------------------------------------------------------- side-file mistakes

def test_side_file_mistakes_are_one_line(bx) -> None:
    base = {"columns": RATING, "encoding": "latin-1"}
    with pytest.raises(DataError, match=r"BX-Books\.csv: missing column 'Title' \(mapped to "
                       r"title; found: ISBN, Book-Title"):
        read_path(bx.ratings_path, items=bx.books_path,
                  item_columns={"item_id": "ISBN", "title": "Title"}, **base)
    with pytest.raises(ConfigError, match="item_columns needs the items file"):
        read_path(bx.ratings_path, item_columns=ITEM_COLUMNS, **base)


def test_bad_year_names_file_line_and_value(tmp_path) -> None:
    (tmp_path / "r.csv").write_text("user,item\nu,a\nu,b\n")
    (tmp_path / "i.csv").write_text("item,title,year\na,A,NULL\nb,B,soon\n")
    with pytest.raises(DataError, match=r"i\.csv: line 3: column 'year' is not a year: 'soon'"):
        read_path(tmp_path / "r.csv", items=tmp_path / "i.csv")


# ---------------------------------------------------------------- no timestamps, time order

def test_no_timestamps_file_order_is_time_order(bx) -> None:
    ds = load_dataset(bx.ratings_path, **_bx_options(bx))
    assert ds.meta["timestamps"] is False and ds.meta["time_order"] == "file"
    first_seen: dict[str, list[str]] = {}
    for user, isbn, _ in bx.ratings:                           # dedup keeps the first
        if isbn not in first_seen.setdefault(user, []):
            first_seen[user].append(isbn)
    for user, isbns in first_seen.items():
        assert ds.items.ids[ds.history(user)].tolist() == isbns


def test_time_order_file_ignores_timestamps(tmp_path) -> None:
    from llmrec.data import Preprocessing

    path = tmp_path / "t.csv"
    path.write_text("user,item,timestamp\nu,a,30\nu,b,10\nu,c,20\n")
    by_time = load_dataset(path)
    by_file = load_dataset(path, preprocessing=Preprocessing(time_order="file"))
    assert by_time.items.ids[by_time.history("u")].tolist() == ["b", "c", "a"]
    assert by_file.items.ids[by_file.history("u")].tolist() == ["a", "b", "c"]
    assert by_time.meta["time_order"] == "timestamp" and by_file.meta["timestamps"] is True


def test_new_data_options_keep_existing_run_hashes() -> None:
    from llmrec.testing.options import check_added_option

    check_added_option('data.time_order="timestamp"', 'data.time_order="file"')
    check_added_option('data.encoding="utf-8"', 'data.encoding="latin-1"')
    for name in ("sep", "items", "users"):
        from llmrec.runs import load_config
        base = load_config(model="sasrec", dataset="ml-100k")
        assert name not in base.to_dict()["data"]
        other = load_config(model="sasrec", dataset="x.csv", sets=[f'data.{name}=";"'])
        assert other.to_dict()["data"][name] == ";"


def test_temporal_split_refuses_without_timestamps(bx) -> None:
    from llmrec.runs import load_config, prepare

    cfg = load_config(model="pop", dataset=str(bx.ratings_path),
                      sets=['data.encoding="latin-1"', 'data.split="temporal"'])
    with pytest.raises(DataError, match="a global temporal split needs timestamps and it has "
                       "no timestamp column"):
        prepare(cfg)


def test_run_config_records_file_order(bx, caplog) -> None:
    from llmrec.runs import load_config, resolve_time_order

    cfg = load_config(model="pop", dataset=str(bx.ratings_path),
                      sets=['data.encoding="latin-1"'])
    with caplog.at_level("WARNING", logger="llmrec"):
        resolved, data = resolve_time_order(cfg)
    assert resolved.data.time_order == "file" and data is not None
    warnings = [r for r in caplog.records if "file order is used as time order" in r.message]
    assert len(warnings) == 1
    again, _ = resolve_time_order(resolved)                     # explicit: no second warning
    assert again.hash() == resolved.hash() != cfg.hash()
    assert len([r for r in caplog.records if "file order" in r.message]) == 1


# ---------------------------------------------------------------- side files feed the LLM stages

def test_side_files_give_the_texts_of_encode_and_knowledge(bx) -> None:
    from llmrec.encode import item_metadata_texts
    from llmrec.knowledge._facts import ItemFacts
    from llmrec.runs import DataConfig, prepare

    cfg = DataConfig(dataset=str(bx.ratings_path), columns=RATING, encoding="latin-1",
                     items=str(bx.books_path), item_columns=ITEM_COLUMNS,
                     users=str(bx.users_path), user_columns=USER_COLUMNS, item_core=0)
    ds, _ = prepare(SimpleNamespace(data=cfg))
    keys, texts = item_metadata_texts(ds)
    facts = ItemFacts(ds, "book")
    for i, (isbn, text) in enumerate(zip(keys, texts)):
        book = bx.books[isbn]
        year = "" if book["year"] == "0" else f" ({book['year']})"
        assert text == f"{book['title']}{year}."
        assert facts.problem(i) is None
        lines = facts.text(i).splitlines()
        assert lines[0] == f"Book: {' '.join(book['title'].split())}{year}"
        assert f"Author: {book['author']}" in lines
    assert pl.Series(ds.user_features["age"]).null_count() == sum(
        u["age"] == "NULL" for u in bx.users.values())


def test_reader_options_of_csv_files_are_refused_for_other_formats() -> None:
    folder = Path(__file__).resolve().parents[1] / "fixtures" / "data" / "recbole"
    with pytest.raises(ConfigError, match="option 'encoding' applies to CSV/TSV/Parquet files"):
        read_path(folder, encoding="latin-1")
    assert read_path(folder).interactions.height > 0


def _reference_unescape(text: str) -> str:
    """A left-to-right scan: a backslash before \\ or " escapes it (\\\\ -> \\, \\" -> "")."""
    out, i = [], 0
    while i < len(text):
        if text[i] == "\\" and i + 1 < len(text) and text[i + 1] in '\\"':
            out.append("\\" if text[i + 1] == "\\" else '""')
            i += 2
        else:
            out.append(text[i])
            i += 1
    return "".join(out)


@settings(max_examples=500, deadline=None)
@given(st.text(alphabet='\\"a;\n\0', max_size=30))
def test_backslash_rewrite_equals_the_plain_rule(text) -> None:
    """The three str.replace passes (and the regex used when the text holds NUL) equal the
    plain scan."""
    for t in (text, text.replace("\0", "")):
        assert _unescape_backslashes(t) == _reference_unescape(t)
