"""Readers of every data format, on small invented files in the real layouts.

Each reader is checked against a plain-Python parse of the same fixture (the reference), then
on hand-picked values; bad inputs must raise DataError (ConfigError for bad options) naming
the file and the field or line, never any other exception. Fixtures: tests/fixtures/data/.
"""

from __future__ import annotations

import csv
import datetime as dt
import gzip
import json
import shutil
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path

import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from llmrec.data import build_dataset, load_dataset, read_path
from llmrec.data.formats import FORMATS, detect_format
from llmrec.errors import ConfigError, DataError

DATA = Path(__file__).parents[1] / "fixtures" / "data"
TAB = DATA / "tabular"
A18 = DATA / "amazon2018"
A23 = DATA / "amazon2023"

Row = tuple[str, str, float | None, int | None]
Edit = Callable[[bytes], bytes]            # a file's bytes -> damaged bytes
Make = Callable[[Path], Path]              # tmp_path -> the path to read


# ---------------------------------------------------------------- plain reference parsers

def ref_split(path: Path, sep: str, header: bool = False) -> list[Row]:
    lines = path.read_text(encoding="utf-8").splitlines()[1 if header else 0:]
    return [(u, i, float(r), int(float(t))) for u, i, r, t in
            (ln.split(sep) for ln in lines if ln)]


def ref_amazon(path: Path) -> list[Row]:
    opener = gzip.open if path.name.endswith(".gz") else open
    with opener(path, "rt", encoding="utf-8") as f:
        recs = [json.loads(ln) for ln in f if ln.strip()]
    if "reviewerID" in recs[0]:
        return [(r["reviewerID"], r["asin"], float(r["overall"]), r["unixReviewTime"])
                for r in recs]
    return [(r["user_id"], r["parent_asin"], float(r["rating"]), r["timestamp"] // 1000)
            for r in recs]


def ref_csv(path: Path, sep: str = ",") -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f, delimiter=sep))


def rows(df: pl.DataFrame) -> list[Row]:
    cols = [c for c in ("user_id", "item_id", "rating", "timestamp") if c in df.columns]
    return [tuple(r) for r in df.select(cols).iter_rows()]


def time_order(ref: list[Row]) -> dict[str, list[str]]:
    """Each user's items by timestamp, ties in file order (the documented rule)."""
    per_user: dict[str, list[tuple[int, int, str]]] = defaultdict(list)
    for n, (u, i, _, t) in enumerate(ref):
        per_user[u].append((t, n, i))
    return {u: [i for _, _, i in sorted(ev)] for u, ev in per_user.items()}


REFERENCES = {
    "recbole": (DATA / "recbole", lambda: ref_split(DATA / "recbole/films.inter", "\t",
                                                    header=True)),
    "recbole_crlf": (DATA / "recbole_crlf", lambda: ref_split(
        DATA / "recbole_crlf/films.inter", "\t", header=True)),
    "ml-100k": (DATA / "ml-100k", lambda: ref_split(DATA / "ml-100k/u.data", "\t")),
    "ml-1m": (DATA / "ml-1m", lambda: ref_split(DATA / "ml-1m/ratings.dat", "::")),
    "amazon2018": (A18, lambda: ref_amazon(A18 / "Toys_and_Games_5.json.gz")),
    "amazon2023": (A23, lambda: ref_amazon(A23 / "Toys_and_Games.jsonl")),
    "csv": (TAB / "ratings.csv", lambda: [(r["userId"], r["movieId"], float(r["rating"]),
                                           int(r["timestamp"]))
                                          for r in ref_csv(TAB / "ratings.csv")]),
}


# ---------------------------------------------------------------- every reader vs reference

@pytest.mark.parametrize("name", REFERENCES)
def test_reader_matches_plain_parse(name: str) -> None:
    path, reference = REFERENCES[name]
    raw = read_path(path)
    assert raw.interactions.schema == {"user_id": pl.String, "item_id": pl.String,
                                       "rating": pl.Float32, "timestamp": pl.Int64}
    assert rows(raw.interactions) == reference()


@pytest.mark.parametrize("name, n_rows, n_users, n_items", [
    ("recbole", 30, 6, 10), ("recbole_crlf", 30, 6, 10), ("ml-100k", 40, 8, 12),
    ("ml-1m", 30, 6, 10), ("amazon2018", 25, 8, 7), ("amazon2023", 25, 8, 6), ("csv", 30, 7, 9)])
def test_fixture_sizes(name: str, n_rows: int, n_users: int, n_items: int) -> None:
    inter = read_path(REFERENCES[name][0]).interactions
    assert (inter.height, inter["user_id"].n_unique(), inter["item_id"].n_unique()) == (
        n_rows, n_users, n_items)


# ---------------------------------------------------------------- RecBole

def test_recbole_items_users_and_file_path() -> None:
    raw = read_path(DATA / "recbole/films.inter")  # the .inter file itself works too
    items = raw.items.rows_by_key("item_id", named=True, unique=True)
    assert items["5"] == {"title": "Operation Kestrel", "year": 1996,
                          "genres": ["Action", "Thriller", "War"]}
    assert raw.items.schema["year"] == pl.Int32 and raw.items.height == 10
    assert raw.users.columns == ["user_id", "age", "gender", "occupation", "zip_code"]
    assert raw.users.height == 6
    assert rows(raw.interactions)[0] == ("4", "9", 3.0, 878789740)  # first data line


def test_recbole_crlf_equals_lf() -> None:
    assert b"\r\n" in (DATA / "recbole_crlf/films.inter").read_bytes()  # git kept the CRs
    lf, crlf = read_path(DATA / "recbole"), read_path(DATA / "recbole_crlf")
    for a, b in ((lf.interactions, crlf.interactions), (lf.items, crlf.items),
                 (lf.users, crlf.users)):
        assert a.equals(b)
        assert not any("\r" in c for c in b.columns)
    assert crlf.users["zip_code"][0] == "93631"


# ---------------------------------------------------------------- MovieLens

def test_ml100k_items_latin1_titles_years_genres() -> None:
    raw = read_path(DATA / "ml-100k")
    items = raw.items.rows_by_key("item_id", named=True, unique=True)
    assert raw.items.height == 12
    assert items["3"]["title"] == "Café Émeraude"  # latin-1 bytes 0xE9 / 0xC9 in u.item
    assert b"Caf\xe9 \xc9meraude" in (DATA / "ml-100k/u.item").read_bytes()
    assert (items["3"]["year"], items["3"]["genres"]) == (1996, ["Comedy", "Romance"])
    assert items["2"]["title"] == "Glass Orchard, The"
    assert items["6"]["genres"] == ["Animation", "Children's", "Comedy"]
    assert (items["12"]["title"], items["12"]["year"], items["12"]["genres"]) == (
        "unknown", None, ["unknown"])
    assert raw.users.height == 8 and raw.users["occupation"][0] == "technician"


def test_ml100k_genre_names_come_from_u_genre(tmp_path: Path) -> None:
    folder = shutil.copytree(DATA / "ml-100k", tmp_path / "ml")
    genre = folder / "u.genre"
    genre.write_text(genre.read_text().replace("Western|18", "Frontier|18"))
    items = read_path(folder).items.rows_by_key("item_id", named=True, unique=True)
    assert items["10"]["genres"] == ["Frontier"]


def test_ml1m_items_and_users() -> None:
    raw = read_path(DATA / "ml-1m")
    items = raw.items.rows_by_key("item_id", named=True, unique=True)
    assert sorted(items, key=int) == ["1", "5", "12", "19", "23", "31", "40", "47", "52", "60"]
    assert items["5"] == {"title": "Niños del Sol", "year": 1998, "genres": ["Comedy", "Drama"]}
    assert items["19"]["title"] == "Quiet Harvest, The"
    assert items["23"]["genres"] == ["Children's", "Comedy", "Mystery"]
    assert raw.users.columns == ["user_id", "gender", "age", "occupation", "zip_code"]
    assert raw.users.height == 6


# ---------------------------------------------------------------- Amazon

def test_amazon2018_meta() -> None:
    raw = read_path(A18)
    items = raw.items.rows_by_key("item_id", named=True, unique=True)
    assert raw.items.height == 7  # 7 records; the repeated B004V6JFGG kept once (first)
    assert items["B004V6JFGG"]["title"] == "Magnetic Tile Set (64 pcs)"
    first = items["B00EUAUI5T"]
    assert first["description"] == "Wooden Stacking Rainbow, 7 Pieces. Ages 3 and up."
    assert first["genres"] == ["Toys & Games", "Building Toys"]
    assert (first["brand"], first["price"]) == ("TinyWorks", "$38.99")
    assert first["features"] == ["Non-toxic paint", "Gift box"]
    assert first["main_category"] == "Toys & Games"
    assert items["B009KBW6F6"]["price"] is None                      # "" in the file
    assert items["B00HGSHD0V"]["description"] is None                # []
    assert items["B00LH5KAVB"]["genres"] is None                     # no category field
    assert items["B00W3LF1BL"]["description"] == "A single string, not a list."
    assert "B00ZZZZZZZ" in items                                    # never reviewed: kept
    no_meta = set(raw.interactions["item_id"]) - set(raw.items["item_id"])
    assert no_meta == {"B00O3BW0BJ"}                                # reviewed, no metadata


def test_amazon2023_parent_asin_and_milliseconds() -> None:
    raw = read_path(A23 / "Toys_and_Games.jsonl")
    first = json.loads((A23 / "Toys_and_Games.jsonl").read_text().splitlines()[0])
    assert first["timestamp"] == 1594767171109
    assert rows(raw.interactions)[0] == (first["user_id"], "B0K2WVB8FC", 2.0, 1594767171)
    text = (A23 / "Toys_and_Games.jsonl").read_text()
    assert "B0VARIANT1" in text and "B0VARIANT2" in text
    assert not raw.interactions["item_id"].str.starts_with("B0VARIANT").any()
    assert (raw.interactions["item_id"] == "B0CXD9LFJX").sum() == 4  # both variants counted
    items = raw.items.rows_by_key("item_id", named=True, unique=True)
    bubble = items["B04BWATIPY"]
    assert (bubble["title"], bubble["price"], bubble["brand"]) == (
        "Bubble Machine", "from 12.50", "TinyWorks")
    assert bubble["description"] == "Product Description Bubble Machine for ages 3+."
    assert (bubble["average_rating"], bubble["rating_number"]) == (4.1, 605)
    assert items["B0CXD9LFJX"]["price"] is None and items["B0FDRN2KPM"]["price"] == "56.15"
    assert items["B0K2WVB8FC"]["genres"] == []
    assert items["B0PDDIOG8M"]["description"] is None


def test_amazon_gzip_equals_plain(tmp_path: Path) -> None:
    for name in ("Toys_and_Games.jsonl", "meta_Toys_and_Games.jsonl"):
        (tmp_path / f"{name}.gz").write_bytes(gzip.compress((A23 / name).read_bytes()))
    plain, gz = read_path(A23), read_path(tmp_path / "Toys_and_Games.jsonl.gz")
    assert gz.interactions.equals(plain.interactions) and gz.items.equals(plain.items)


def test_amazon_meta_option_and_reviews_name(tmp_path: Path) -> None:
    assert read_path(A18, meta=False).items is None
    shutil.copy(A18 / "Toys_and_Games_5.json.gz", tmp_path / "reviews_Toys_and_Games_5.json.gz")
    shutil.copy(A18 / "meta_Toys_and_Games.json.gz", tmp_path)
    assert read_path(tmp_path / "reviews_Toys_and_Games_5.json.gz").items.height == 7
    other = read_path(tmp_path / "reviews_Toys_and_Games_5.json.gz",
                      meta=A23 / "meta_Toys_and_Games.jsonl")
    assert other.items.height == 6


# ---------------------------------------------------------------- tabular

def test_csv_with_item_and_user_tables() -> None:
    raw = read_path(TAB / "ratings.csv", items=TAB / "movies.csv", users=TAB / "users.csv")
    items = raw.items.rows_by_key("item_id", named=True, unique=True)
    assert raw.items.columns == ["item_id", "title", "genres"]
    assert items["1"] == {"title": "Glass Orchard, The (1996)", "genres": ["Drama"]}  # quoted
    assert items["4"]["title"] == "Sparrow, Crane & Fox (2001)"
    assert items["3"]["genres"] == ["Animation", "Children's", "Comedy"]
    assert raw.users.columns == ["user_id", "age", "country"] and raw.users.height == 7


def _iso_reference(text: str) -> int:
    d = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    return int((d if d.tzinfo else d.replace(tzinfo=dt.timezone.utc)).timestamp())


def test_tsv_iso_datetimes_to_epoch_seconds() -> None:
    ref = ref_csv(TAB / "events.tsv", "\t")
    expected = [_iso_reference(r["datetime"]) for r in ref]
    raw = read_path(TAB / "events.tsv")
    assert raw.interactions["timestamp"].to_list() == expected
    assert raw.interactions["user_id"].to_list() == [r["user"] for r in ref]
    assert raw.interactions["rating"].to_list() == [float(r["score"]) for r in ref]
    # 2019-04-21T18:12:46+02:00 is 16:12:46 UTC
    assert raw.interactions["timestamp"][2] == 1555863166


def test_iso_dates_and_fractions(tmp_path: Path) -> None:
    path = tmp_path / "x.csv"
    path.write_text("user,item,date\na,b,2019-05-03\na,c,2019-05-03 12:00:00.750\n"
                    "a,d,2019-05-03T12:00\n")
    assert read_path(path).interactions["timestamp"].to_list() == [
        1556841600, 1556884800, 1556884800]


def test_millisecond_epochs_become_seconds() -> None:
    ref = ref_csv(TAB / "clicks.csv")
    raw = read_path(TAB / "clicks.csv")
    assert "rating" not in raw.interactions.columns
    assert raw.interactions["timestamp"].to_list() == [int(r["ts"]) // 1000 for r in ref]
    assert rows(raw.interactions)[0] == ("C001", "P003", 1610798429)


def test_parquet_typed_columns_equal_csv(tmp_path: Path) -> None:
    csv_raw = read_path(TAB / "ratings.csv")
    df = pl.read_csv(TAB / "ratings.csv").with_columns(
        pl.from_epoch("timestamp", "s").alias("timestamp"))  # Int ids, Float, Datetime
    df.write_parquet(tmp_path / "ratings.parquet")
    df.rename({"timestamp": "date"}).with_columns(pl.col("date").dt.date()).write_parquet(
        tmp_path / "days.pq")
    pq = read_path(tmp_path / "ratings.parquet")
    assert detect_format(tmp_path / "ratings.parquet") == "tabular"
    assert pq.interactions.equals(csv_raw.interactions)
    days = read_path(tmp_path / "days.pq").interactions["timestamp"]
    assert (days == csv_raw.interactions["timestamp"] // 86400 * 86400).all()


def test_column_mapping_and_separators(tmp_path: Path) -> None:
    text = (TAB / "ratings.csv").read_text().replace("userId,movieId,rating,timestamp",
                                                     "visitor,sku,stars_given,when")
    (tmp_path / "r.csv").write_text(text)
    (tmp_path / "r.txt").write_text(text.replace(",", ";"))
    (tmp_path / "r.dat.csv").write_text(text.replace(",", "|"))
    mapping = {"user_id": "visitor", "item_id": "sku", "rating": "stars_given",
               "timestamp": "when"}
    expected = read_path(TAB / "ratings.csv").interactions
    assert read_path(tmp_path / "r.csv", columns=mapping).interactions.equals(expected)
    assert read_path(tmp_path / "r.txt", columns=mapping).interactions.equals(expected)
    assert read_path(tmp_path / "r.dat.csv", columns=mapping,
                     separator="|").interactions.equals(expected)
    partial = read_path(tmp_path / "r.csv", columns={"user_id": "visitor", "item_id": "sku"})
    assert partial.interactions.columns == ["user_id", "item_id"]  # no alias for the rest


# ---------------------------------------------------------------- detection, end to end

@pytest.mark.parametrize("path, expected", [
    (DATA / "recbole", "recbole"), (DATA / "recbole_crlf/films.inter", "recbole"),
    (DATA / "ml-100k", "movielens"), (DATA / "ml-100k/u.data", "movielens"),
    (DATA / "ml-1m", "movielens"), (A18, "amazon"), (A18 / "Toys_and_Games_5.json.gz", "amazon"),
    (A23, "amazon"), (A23 / "Toys_and_Games.jsonl", "amazon"),
    (TAB / "ratings.csv", "tabular"), (TAB / "events.tsv", "tabular")])
def test_detect_format(path: Path, expected: str) -> None:
    assert detect_format(path) == expected
    assert list(FORMATS) == ["recbole", "movielens", "amazon", "tabular"]


@pytest.mark.parametrize("name", REFERENCES)
def test_build_dataset_time_order(name: str) -> None:
    path, reference = REFERENCES[name]
    ref = reference()
    assert len({(u, i) for u, i, _, _ in ref}) == len(ref)  # no repeats: dedup is a no-op
    ds = load_dataset(path)
    assert (ds.n_users, ds.n_items, len(ds.interactions)) == (
        len({r[0] for r in ref}), len({r[1] for r in ref}), len(ref))
    for user, items in time_order(ref).items():
        assert ds.items.to_raw(ds.history(user)).tolist() == items
    titles = dict(zip(ds.items.ids.tolist(), ds.item_titles()))
    raw = read_path(path)
    if raw.items is not None and "title" in raw.items.columns:
        for item_id, title in raw.items.select("item_id", "title").iter_rows():
            if item_id in titles and title:
                assert titles[item_id] == title


@pytest.mark.parametrize("path, user, last_two", [
    (DATA / "ml-100k", "1", ["7", "2"]), (DATA / "ml-100k", "2", ["3", "9"]),
    (DATA / "ml-1m", "1", ["47", "12"]), (DATA / "recbole", "1", ["6", "4"]),
    (TAB / "ratings.csv", "2", ["3", "9"])])
def test_same_timestamp_keeps_file_order(path: Path, user: str, last_two: list[str]) -> None:
    """The fixtures end these users with two events at one timestamp, listed in this order."""
    ds = load_dataset(path)
    end = ds.interactions.indptr[ds.users.index(user) + 1]
    assert ds.interactions.timestamp[end - 2] == ds.interactions.timestamp[end - 1]
    assert ds.items.to_raw(ds.history(user)).tolist()[-2:] == last_two


def test_tabular_end_to_end_with_features() -> None:
    ds = load_dataset(TAB / "ratings.csv", items=TAB / "movies.csv", users=TAB / "users.csv")
    assert ds.item_features.columns == ["item_id", "title", "genres"]
    assert ds.item_titles()[ds.items.index("1")] == "Glass Orchard, The (1996)"
    assert ds.user_features["country"].null_count() == 0


# ---------------------------------------------------------------- bad input

def _edit(tmp_path: Path, fixture: str, name: str, edit: Edit) -> Path:
    """A copy of fixture folder ``fixture`` with file ``name`` passed through ``edit``."""
    folder = shutil.copytree(DATA / fixture, tmp_path / fixture)
    target = folder / name
    data = target.read_bytes()
    gz = data[:2] == b"\x1f\x8b"
    new = edit(gzip.decompress(data) if gz else data)
    target.write_bytes(gzip.compress(new) if gz else new)
    return folder


def _field(n: int, k: int, sep: bytes, new: bytes) -> Edit:
    """Set field ``k`` (0-based) of line ``n`` (1-based) to ``new``."""
    def edit(data: bytes) -> bytes:
        lines = data.split(b"\n")
        fields = lines[n - 1].split(sep)
        fields[k] = new
        lines[n - 1] = sep.join(fields)
        return b"\n".join(lines)
    return edit


def _replace(n: int, old: bytes, new: bytes) -> Edit:
    """Replace ``old`` by ``new`` on line ``n`` (1-based) only."""
    def edit(data: bytes) -> bytes:
        lines = data.split(b"\n")
        assert old in lines[n - 1], (n, old, lines[n - 1])
        lines[n - 1] = lines[n - 1].replace(old, new, 1)
        return b"\n".join(lines)
    return edit


def _truncate(sep: bytes) -> Edit:
    """Cut the last line two bytes after its first separator (a download cut short)."""
    def edit(data: bytes) -> bytes:
        body = data.rstrip(b"\r\n")
        start = body.rfind(b"\n") + 1
        return body[:start + body[start:].index(sep) + 2]
    return edit


def _write(name: str, data: bytes) -> Make:
    def make(tmp_path: Path) -> Path:
        (tmp_path / name).write_bytes(data)
        return tmp_path / name
    return make


def _file(fixture: str, name: str, edit: Edit, result: str = "") -> Make:
    """make(tmp_path): the fixture copied with one file edited; its folder or ``result``."""
    def make(tmp_path: Path) -> Path:
        folder = _edit(tmp_path, fixture, name, edit)
        return folder / result if result else folder
    return make


def _parquet(name: str, **columns: list) -> Make:
    def make(tmp_path: Path) -> Path:
        pl.DataFrame(columns).write_parquet(tmp_path / name)
        return tmp_path / name
    return make


def _two_inter(tmp_path: Path) -> Path:
    folder = shutil.copytree(DATA / "recbole", tmp_path / "recbole")
    shutil.copy(folder / "films.inter", folder / "more.inter")
    return folder


def _damaged_gzip(cut: bool) -> Make:
    """make(tmp_path): the 2018 reviews with the gzip stream cut in half or zeroed inside."""
    def make(tmp_path: Path) -> Path:
        folder = shutil.copytree(A18, tmp_path / "amazon2018")
        data = (folder / "Toys_and_Games_5.json.gz").read_bytes()
        half = len(data) // 2
        data = data[:half] if cut else data[:half] + bytes(40) + data[half + 40:]
        (folder / "Toys_and_Games_5.json.gz").write_bytes(data)
        return folder
    return make


def _two_reviews(tmp_path: Path) -> Path:
    for name in ("Games.jsonl", "Toys.jsonl"):
        shutil.copy(A23 / "Toys_and_Games.jsonl", tmp_path / name)
    return tmp_path


R, I, C = "films.inter", "u.data", "ratings.csv"
# (id, make(tmp_path) -> path, read options, fragments the one-line message must contain);
# option values "items"/"meta" are file names inside tmp_path
BAD = [
    ("recbole-truncated", _file("recbole", R, _truncate(b"\t")), {},
     [R, "line 31", "fewer fields", "truncated"]),
    ("recbole-header", _file("recbole", R, _replace(1, b"rating:float", b"rating")), {},
     [R, "header field 'rating'"]),
    ("recbole-no-user", _file("recbole", R, _replace(1, b"user_id:", b"uid:")), {},
     [R, "missing column 'user_id'", "found: uid"]),
    ("recbole-timestamp", _file("recbole", R, _field(5, 3, b"\t", b"yesterday")), {},
     [R, "line 5", "'timestamp'", "'yesterday'"]),
    ("recbole-rating", _file("recbole", R, _field(7, 2, b"\t", b"five")), {},
     [R, "line 7", "'rating'", "'five'"]),
    ("recbole-utf8", _file("recbole", "films.item", _field(3, 1, b"\t", b"Gl\xffass")), {},
     ["films.item", "not valid utf-8"]),
    ("recbole-empty", _file("recbole", R, lambda d: b""), {}, [R, "empty"]),
    ("recbole-header-only", _file("recbole", R, lambda d: d.split(b"\n")[0] + b"\n"), {},
     [R, "no data rows"]),
    ("recbole-two-inter", _two_inter, {}, ["recbole", "several .inter files"]),
    ("recbole-token-timestamp", _file("recbole", R, lambda d: _field(4, 3, b"\t", b"abc")(
        d.replace(b"timestamp:float", b"timestamp:token"))), {},
     [R, "line 4", "'timestamp'", "'abc'"]),
    ("ml100k-truncated", _file("ml-100k", I, _truncate(b"\t")), {},
     [I, "line 40", "fewer fields"]),
    ("ml100k-rating", _file("ml-100k", I, _field(3, 2, b"\t", b"good")), {},
     [I, "line 3", "'rating'", "'good'"]),
    ("ml100k-timestamp", _file("ml-100k", I, _field(10, 3, b"\t", b"x8")), {},
     [I, "line 10", "'timestamp'", "'x8'"]),
    ("ml100k-inf-timestamp", _file("ml-100k", I, _field(7, 3, b"\t", b"inf")), {},
     [I, "line 7", "'timestamp'", "'inf'"]),
    ("ml100k-utf8", _file("ml-100k", I, _field(2, 0, b"\t", b"\xe9")), {},
     [I, "not valid utf-8"]),
    ("ml100k-item-truncated", _file("ml-100k", "u.item", _truncate(b"|")), {},
     ["u.item", "line 12", "fewer fields"]),
    ("ml100k-genre", _file("ml-100k", "u.genre", _replace(2, b"|1", b" 1")), {},
     ["u.genre", "line 2", "genre|index"]),
    ("ml1m-truncated", _file("ml-1m", "ratings.dat", _truncate(b"::")), {},
     ["ratings.dat", "line 30", "fewer fields"]),
    ("ml1m-tab", _file("ml-1m", "movies.dat", _replace(4, b"::", b"\t::")), {},
     ["movies.dat", "tab character"]),
    ("ml1m-rating", _file("ml-1m", "ratings.dat", _field(12, 2, b"::", b"?")), {},
     ["ratings.dat", "line 12", "'rating'", "'?'"]),
    ("movielens-missing", lambda t: t, {"format": "movielens"}, ["neither u.data"]),
    ("a23-truncated", _file("amazon2023", "Toys_and_Games.jsonl", _truncate(b",")), {},
     ["Toys_and_Games.jsonl", "line 25", "not JSON", "truncated"]),
    ("a18-truncated", _file("amazon2018", "Toys_and_Games_5.json.gz", _truncate(b",")), {},
     ["Toys_and_Games_5.json.gz", "line 25", "not JSON"]),
    ("a18-cut-gzip", _damaged_gzip(cut=True), {}, ["Toys_and_Games_5.json.gz", "decompress"]),
    ("a18-corrupt-gzip", _damaged_gzip(cut=False), {},
     ["Toys_and_Games_5.json.gz", "decompress"]),
    ("a18-rating", _file("amazon2018", "Toys_and_Games_5.json.gz",
                         _replace(4, b'"overall": 3', b'"overall": "five"')), {},
     ["Toys_and_Games_5.json.gz", "line 4", "'overall'", "'five'"]),
    ("a18-no-user", _file("amazon2018", "Toys_and_Games_5.json.gz",
                          _replace(2, b'"reviewerID"', b'"reviewer"')), {},
     ["line 2", "'reviewerID'", "missing"]),
    ("a23-timestamp", _file("amazon2023", "Toys_and_Games.jsonl",
                            _replace(6, b'"timestamp": ', b'"timestamp": "soon", "x": ')), {},
     ["Toys_and_Games.jsonl", "line 6", "'timestamp'", "'soon"]),
    ("a23-utf8", _file("amazon2023", "Toys_and_Games.jsonl",
                       _replace(3, b'"text": "', b'"text": "\xff')), {},
     ["Toys_and_Games.jsonl", "line 3", "UTF-8"]),
    ("a23-not-object", _file("amazon2023", "Toys_and_Games.jsonl", lambda d: d + b"[1, 2]\n"),
     {}, ["Toys_and_Games.jsonl", "line 26", "not a JSON object"]),
    ("a14-meta", _file("amazon2018", "meta_Toys_and_Games.json.gz",
                       lambda d: b"{'asin': '0000000001', 'title': 'Paper Kite', "
                                 b"'categories': [['Sports']]}\n"), {},
     ["meta_Toys_and_Games.json.gz", "Python-literal", "2014"]),
    ("amazon-not-reviews", _write("orders.jsonl", b'{"order": 1, "sku": "x"}\n'), {},
     ["orders.jsonl", "not Amazon reviews", "order, sku"]),
    ("amazon-empty", _write("Books.json", b"\n\n"), {}, ["Books.json", "empty"]),
    ("amazon-two-reviews", _two_reviews, {"format": "amazon"},
     ["expected one Amazon reviews file", "found 2"]),
    ("amazon-meta-given", lambda t: A23 / "meta_Toys_and_Games.jsonl", {},
     ["meta_Toys_and_Games.jsonl", "metadata file"]),
    ("amazon-meta-missing", lambda t: A23, {"meta": "nowhere.jsonl"},
     ["nowhere.jsonl", "not found"]),
    ("csv-truncated", _file("tabular", C, _truncate(b","), C), {},
     [C, "line 31 has fewer fields (2) than the header (4)", "truncated"]),
    ("csv-long-line", _file("tabular", C, _replace(5, b",", b",9,"), C), {},
     [C, "line 5 has more fields (5) than the header (4)"]),
    ("csv-mapped-missing", lambda t: TAB / C, {"columns": {"user_id": "visitor"}},
     [C, "'visitor'", "found: userId, movieId, rating, timestamp"]),
    ("csv-no-user", _write("x.csv", b"who,movieId\na,b\n"), {},
     ["x.csv", "no user_id column", "found: who, movieId"]),
    ("csv-rating", _file("tabular", C, _field(8, 2, b",", b"good"), C), {},
     [C, "line 8", "'rating'", "'good'"]),
    ("csv-mixed-time", _file("tabular", C, _field(3, 3, b",", b"2019-01-01"), C), {},
     [C, "line 3", "'timestamp'", "'2019-01-01'"]),
    ("csv-huge-time", _file("tabular", C, _field(9, 3, b",", b"1e400"), C), {},
     [C, "line 9", "'timestamp'", "'1e400'"]),
    ("csv-empty-time", _file("tabular", C, _field(3, 3, b",", b""), C), {},
     [C, "line 3", "'timestamp'", "empty"]),
    ("tsv-time", _file("tabular", "events.tsv", _field(4, 3, b"\t", b"yesterday"),
                       "events.tsv"), {}, ["events.tsv", "line 4", "'datetime'", "'yesterday'"]),
    ("csv-empty-id", _file("tabular", C, _field(6, 0, b",", b" "), C), {},
     [C, "line 6", "'userId'", "empty id"]),
    ("csv-utf8", _file("tabular", "clicks.csv", _field(9, 0, b",", b"\xc3C009"), "clicks.csv"),
     {}, ["clicks.csv", "line 9", "UTF-8"]),
    ("csv-empty", _write("e.csv", b""), {}, ["e.csv", "empty"]),
    ("csv-header-only", _write("h.csv", b"user_id,item_id\n"), {}, ["h.csv", "no data rows"]),
    ("parquet-corrupt", _write("p.parquet", b"PAR1 not really"), {},
     ["p.parquet", "not a readable Parquet file"]),
    ("parquet-list-ids", _parquet("l.parquet", user_id=[[1], [2]], item_id=["a", "b"]), {},
     ["l.parquet", "'user_id'", "not ids"]),
    ("parquet-null-id", _parquet("n.parquet", user_id=["x", "y"], item_id=["a", None]), {},
     ["n.parquet", "row 2", "'item_id'", "empty id"]),
    ("items-duplicate", lambda t: TAB / C, {"items": "dup.csv"},
     ["dup.csv", "line 3", "'movieId'", "repeats"]),
    ("items-year", lambda t: TAB / C, {"items": "multi.csv"},
     ["multi.csv", "line 4", "'year'", "'abc'"]),  # line 4: the quoted title spans 2 lines
    ("items-missing", lambda t: TAB / C, {"items": "nowhere.csv"},
     ["nowhere.csv", "not found"]),
    ("no-such-path", lambda t: t / "absent", {}, ["absent", "no such file"]),
    ("undetectable", _write("notes.md", b"# hello\n"), {}, ["notes.md", "cannot tell"]),
]


@pytest.mark.parametrize("case", BAD, ids=[c[0] for c in BAD])
def test_bad_input_is_a_data_error(case: tuple[str, Make, dict, list[str]],
                                   tmp_path: Path) -> None:
    name, make, options, fragments = case
    (tmp_path / "multi.csv").write_text('movieId,title,year\n1,"Two\nLines",1995\n2,Other,abc\n')
    (tmp_path / "dup.csv").write_text("movieId,title\n1,One\n1,Again\n")
    path = make(tmp_path)
    options = {k: (tmp_path / v if k in ("items", "meta") else v) for k, v in options.items()}
    with pytest.raises(DataError) as info:
        read_path(path, **options)
    message = str(info.value)
    assert "\n" not in message
    for fragment in fragments:
        assert fragment in message, (fragment, message)


@pytest.mark.parametrize("path, options", [
    (TAB / "ratings.csv", {"format": "excel"}),
    (TAB / "ratings.csv", {"sheet": 1}),
    (TAB / "ratings.csv", {"columns": {"user": "userId"}}),
    (A23, {"columns": {"user_id": "user_id"}}),
])
def test_bad_options_are_config_errors(path: Path, options: dict) -> None:
    with pytest.raises(ConfigError):
        read_path(path, **options)


# (fixture folder, file to damage, what to read: "" = the folder)
FUZZ_TARGETS = [("recbole", "films.inter", ""), ("recbole", "films.item", ""),
                ("ml-100k", "u.data", ""), ("ml-100k", "u.item", ""), ("ml-100k", "u.genre", ""),
                ("ml-1m", "ratings.dat", ""), ("ml-1m", "movies.dat", ""),
                ("amazon2018", "Toys_and_Games_5.json.gz", ""),
                ("amazon2018", "meta_Toys_and_Games.json.gz", ""),
                ("amazon2023", "Toys_and_Games.jsonl", ""),
                ("amazon2023", "meta_Toys_and_Games.jsonl", ""),
                ("tabular", "ratings.csv", "ratings.csv"), ("tabular", "events.tsv", "events.tsv"),
                ("tabular", "clicks.csv", "clicks.csv")]
SPLICE = st.sampled_from([b"\n", b"\t", b",", b"|", b"::", b'"', b"{", b"]", b"inf", b"1e400",
                          b"-", b"\xff", b"\r\n", b""]) | st.binary(max_size=3)


@settings(max_examples=80, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(target=st.sampled_from(FUZZ_TARGETS), keep=st.floats(0.5, 1), at=st.floats(0, 1),
       splice=SPLICE, overwrite=st.booleans())
def test_damaged_files_raise_only_data_errors(
        tmp_path_factory: pytest.TempPathFactory, target: tuple[str, str, str], keep: float,
        at: float, splice: bytes, overwrite: bool) -> None:
    """Cut a fixture short and splice in bytes: it loads, or raises DataError; nothing else."""
    fixture, name, read = target

    def damage(data: bytes) -> bytes:
        data = data[:round(len(data) * keep)]
        i = round(len(data) * at)
        return data[:i] + splice + data[i + (len(splice) if overwrite else 0):]

    folder = _edit(tmp_path_factory.mktemp("fuzz"), fixture, name, damage)
    try:
        raw = read_path(folder / read if read else folder)
        build_dataset("fuzz", raw.interactions, raw.items, raw.users)
    except DataError as e:
        assert "\n" not in str(e)
