"""Delimited text as real-world exports write it: encodings, byte-order marks, escapes, separators.

:func:`prepare_text` turns the bytes of a CSV/TSV file into UTF-8 bytes that ``polars.read_csv``
parses in one columnar pass, plus the separator to parse them with. What it handles:

- **encoding**: UTF-8 by default; any Python codec by name (``latin-1``, ``cp1252``, ...). A
  file that is not valid in the encoding is one :class:`DataError` naming the file and the
  line of the first bad byte, suggesting ``--encoding latin-1``.
- **byte-order marks**: a UTF-8, UTF-16 or UTF-32 BOM decides the encoding and is dropped (a
  header column is never called ``"\\ufeffuser_id"``). Excel's "Unicode text" export is
  UTF-16 with a BOM and tabs.
- **CRLF / CR line ends**: read as line ends (polars itself accepts CRLF; lone CR, the old Mac
  ending, is turned into LF first).
- **escaped quotes**: ``""`` inside a quoted field (RFC 4180) is what polars reads; files that
  escape with a backslash instead (``\\"``, MySQL / PHP exports such as Book-Crossing) are
  rewritten to ``""`` first, with ``\\\\`` read as one backslash. Both styles may occur in one
  file. The rewrite only runs when the file holds ``\\"``.
- **separator**: comma, semicolon, tab or pipe, detected from the first lines (each candidate
  is tried with a quote-aware parse; the one that gives every sampled line the same number
  of fields, at least two, wins: the extension's own separator (``.csv`` comma, ``.tsv`` tab)
  first, then the one giving the most fields) unless one is forced (``--sep``).

The Python loops here run over a sample of at most :data:`SNIFF_BYTES` characters; the rest of
the file is only decoded, and, where it needs them, rewritten by :func:`re.sub` in C.
"""

from __future__ import annotations

import codecs
import csv
import io
import re
from dataclasses import dataclass
from pathlib import Path

from ...errors import ConfigError, DataError

SEPARATORS = {",": "comma", ";": "semicolon", "\t": "tab", "|": "pipe"}
SEPARATOR_NAMES = {"comma": ",", "semicolon": ";", "tab": "\t", "\\t": "\t", "pipe": "|"}
SNIFF_BYTES = 64 * 1024
BOMS = ((codecs.BOM_UTF32_LE, "utf-32"), (codecs.BOM_UTF32_BE, "utf-32"),
        (codecs.BOM_UTF8, "utf-8-sig"), (codecs.BOM_UTF16_LE, "utf-16"),
        (codecs.BOM_UTF16_BE, "utf-16"))
_BACKSLASH = re.compile(r'\\(["\\])')


def parse_separator(value: str) -> str:
    """``","`` / ``"comma"`` / ``"\\t"`` / ``"tab"`` ... -> the one-character separator."""
    sep = SEPARATOR_NAMES.get(value.lower(), value) if isinstance(value, str) else value
    if sep not in SEPARATORS:
        raise ConfigError(f"separator {value!r} is not one of: comma (,), semicolon (;), "
                          "tab (\\t), pipe (|)")
    return sep


def check_encoding(name: str) -> str:
    """The codec's canonical name; a ConfigError for a name Python does not know."""
    try:
        return codecs.lookup(name).name
    except (LookupError, TypeError):
        raise ConfigError(f"unknown encoding {name!r} (e.g. utf-8, latin-1, cp1252, "
                          "utf-16)") from None


@dataclass(frozen=True)
class Text:
    """A delimited file made ready for ``polars.read_csv``."""

    text: str            # decoded, BOM dropped, backslash escapes rewritten (for messages)
    data: bytes          # the same as UTF-8 (the original bytes when nothing changed)
    separator: str
    encoding: str        # what decoded it, e.g. "UTF-8", "UTF-16 (BOM)", "iso8859-1"
    backslash_escapes: bool


def decode(path: Path, data: bytes, encoding: str = "utf-8") -> tuple[str, str]:
    """(text, how it was decoded); a BOM overrides ``encoding``."""
    codec = check_encoding(encoding)
    label = codec.upper() if codec.startswith("utf") else codec
    for bom, name in BOMS:
        if data.startswith(bom):
            codec, label = name, f"{name.removesuffix('-sig').upper()} (BOM)"
            break
    try:
        text = data.decode(codec)
    except UnicodeDecodeError as e:
        line = data.count(b"\n", 0, e.start) + 1
        raise DataError(f"{path}: line {line}: not valid {label} text (byte "
                        f"0x{data[e.start]:02x}); pass --encoding latin-1 (or the file's "
                        "encoding)") from None
    return text.removeprefix("\ufeff"), label


def _widths(sample: str, separator: str) -> list[int]:
    """Field counts of the complete, non-blank records of ``sample`` (quote-aware)."""
    rows = csv.reader(io.StringIO(sample, newline=""), delimiter=separator)
    try:
        return [len(r) for r in rows if r]
    except csv.Error:
        return []


def sniff_separator(path: Path, text: str) -> str:
    """The separator of ``text`` (see the module docstring)."""
    sample = text[:SNIFF_BYTES]
    if len(text) > SNIFF_BYTES and "\n" in sample:
        sample = sample[:sample.rindex("\n")]                 # drop a cut last line
    default = {".csv": ",", ".tsv": "\t"}.get(path.suffix.lower(), ",")
    order = [default] + [s for s in SEPARATORS if s != default]
    widths = {s: _widths(sample, s) for s in order}
    consistent = [s for s in order if widths[s] and widths[s][0] >= 2
                  and all(w == widths[s][0] for w in widths[s])]
    if consistent:
        if default in consistent:
            return default
        return max(consistent, key=lambda s: widths[s][0])   # max keeps the first of equals
    # no separator fits every line: take the one most lines agree with (the reader then names
    # the first line that does not fit)
    scored = [(sum(w == widths[s][0] for w in widths[s]), s) for s in order
              if widths[s] and widths[s][0] >= 2]
    if not scored:
        raise DataError(f"{path}: cannot tell the separator (the first lines have one field "
                        "with comma, semicolon, tab and pipe); pass --sep")
    return max(scored, key=lambda t: t[0])[1]


def _unescape_backslashes(text: str) -> str:
    """``\\"`` -> ``""`` and ``\\\\`` -> ``\\``, pairing backslashes left to right (three
    ``str.replace`` passes in C; the regular expression where the text holds NUL)."""
    if "\0" in text:
        return _BACKSLASH.sub(lambda m: '""' if m.group(1) == '"' else "\\", text)
    return text.replace("\\\\", "\0").replace('\\"', '""').replace("\0", "\\")


def prepare_text(path: Path, data: bytes, separator: str | None = None,
                 encoding: str = "utf-8") -> Text:
    """Decode, normalise and sniff one delimited file (see the module docstring)."""
    text, label = decode(path, data, encoding)
    changed = label != "UTF-8"
    if "\r" in text and "\r\n" not in text:                   # old Mac line ends
        text, changed = text.replace("\r", "\n"), True
    backslash = '\\"' in text
    if backslash:
        text, changed = _unescape_backslashes(text), True
    sep = parse_separator(separator) if separator is not None else sniff_separator(path, text)
    return Text(text, text.encode("utf-8") if changed else data, sep, label, backslash)
