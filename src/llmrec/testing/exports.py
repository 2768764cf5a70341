"""Synthetic real-world exports for tests and benchmarks (no real data is vendored).

:func:`write_bookcrossing` writes three files shaped like the Book-Crossing dump
(Ziegler et al. 2005, "Improving recommendation lists through topic diversification"), the
classic ratings export that breaks naive CSV readers:

- ``;``-separated, every field quoted, CRLF line ends, latin-1 (accented titles, authors
  and places), no timestamp column;
- quotes inside fields escaped both ways, alternating by row: ``\\"`` (as the original
  MySQL dump does) and ``""`` (RFC 4180); a title with a literal backslash, titles with
  ``;`` and ``,`` inside the quotes;
- years of ``0`` and ages of ``NULL`` for "unknown".

What was written is returned as plain Python values (:class:`BookCrossing`), so a test
compares a reader's output with the generator's input, not with hard-coded numbers.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path

WORDS = ("Garden", "Winter", "Crème", "Shadow", "River", "Señor", "Mädchen", "Light",
         "Glass", "Orchard", "Fox", "Night", "Café", "Island", "Stone", "Ölfeld")
SPECIAL_TITLES = ('The "Big" Sleep', "Les Misérables; Tome 1", "Café, Crème & Co",
                  'He said "no"; she said "yes"', "AC\\DC Live")
AUTHORS = ("Amélie Nothomb", "José Saramago", "Günter Grass", "Mark P. O. Morford",
           "Jane Doe", 'Dwayne "The Rock" Johnson')
PLACES = ("münchen, bayern, germany", "são paulo, são paulo, brazil", "nyc, new york, usa",
          "córdoba, andalucía, spain", "toronto, ontario, canada")


@dataclass(frozen=True)
class BookCrossing:
    """Paths of the files written and the values in them (all strings, as in the files)."""

    ratings_path: Path
    books_path: Path
    users_path: Path
    ratings: list[tuple[str, str, str]]          # (user, isbn, rating) in file order
    books: dict[str, dict[str, str]]             # isbn -> {title, author, year, publisher}
    users: dict[str, dict[str, str]]             # user -> {location, age}


def _isbn(rng: random.Random) -> str:
    digits = "".join(rng.choice("0123456789") for _ in range(9))
    return digits + rng.choice("0123456789X")


def _quote(value: str, backslash: bool) -> str:
    if backslash:
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return '"' + value.replace('"', '""') + '"'


def _write(path: Path, header: list[str], rows: list[list[str]], encoding: str,
           bom: bool) -> None:
    lines = [";".join(f'"{h}"' for h in header)]
    lines += [";".join(_quote(v, backslash=i % 2 == 1) for v in row)
              for i, row in enumerate(rows)]
    text = "\r\n".join(lines) + "\r\n"
    if encoding.replace("_", "-").lower() in ("utf-16", "utf-16-le", "utf-16-be"):
        data = text.encode("utf-16" if bom else encoding)       # Python's utf-16 adds a BOM
    else:
        data = (b"\xef\xbb\xbf" if bom else b"") + text.encode(encoding)
    path.write_bytes(data)


def write_bookcrossing(folder: str | Path, *, n_users: int = 60, n_books: int = 40,
                       per_user: int = 8, seed: int = 0, encoding: str = "latin-1",
                       bom: bool = False) -> BookCrossing:
    """Write ``BX-Book-Ratings.csv``, ``BX-Books.csv`` and ``BX-Users.csv`` into ``folder``.

    Every user rates ``per_user`` distinct books (ratings 0-10, 0 = implicit, as the
    original); ``bom`` writes a byte-order mark (UTF-8 or UTF-16 encodings)."""
    rng = random.Random(seed)
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    isbns: list[str] = []
    while len(isbns) < n_books:
        isbn = _isbn(rng)
        if isbn not in isbns:
            isbns.append(isbn)
    books = {}
    for k, isbn in enumerate(isbns):
        title = (SPECIAL_TITLES[k] if k < len(SPECIAL_TITLES)
                 else f"{rng.choice(WORDS)} {rng.choice(WORDS)} {k}")
        books[isbn] = {"title": title, "author": rng.choice(AUTHORS),
                       "year": "0" if k % 7 == 3 else str(rng.randint(1950, 2004)),
                       "publisher": rng.choice(("Gallimard", "Süddeutscher Verlag",
                                                "Oxford; University Press"))}
    users = {str(u): {"location": rng.choice(PLACES),
                      "age": "NULL" if u % 5 == 0 else str(rng.randint(12, 80))}
             for u in range(1, n_users + 1)}
    ratings = [(user, isbn, str(rng.choice((0, 0, 5, 7, 8, 9, 10))))
               for user in users for isbn in rng.sample(isbns, per_user)]
    rng.shuffle(ratings)                      # the dump is not grouped by user
    out = BookCrossing(folder / "BX-Book-Ratings.csv", folder / "BX-Books.csv",
                       folder / "BX-Users.csv", ratings, books, users)
    _write(out.ratings_path, ["User-ID", "ISBN", "Book-Rating"], [list(r) for r in ratings],
           encoding, bom)
    _write(out.books_path, ["ISBN", "Book-Title", "Book-Author", "Year-Of-Publication",
                            "Publisher", "Image-URL-S"],
           [[isbn, b["title"], b["author"], b["year"], b["publisher"],
             f"http://images.example.com/{isbn}.jpg"] for isbn, b in books.items()],
           encoding, bom)
    _write(out.users_path, ["User-ID", "Location", "Age"],
           [[u, v["location"], v["age"]] for u, v in users.items()], encoding, bom)
    return out
