"""Small real data sets for tests: the first users of a RecBole atomic data set."""

from __future__ import annotations

from pathlib import Path


def recbole_slice(source: Path, out: Path, users: int, *, stem: str = "slice",
                  name: str = "ml-100k", side: tuple[str, ...] = ("item",)) -> Path:
    """Write ``out/STEM.inter`` holding the events of users ``1..users`` of
    ``source/NAME.inter`` (RecBole atomic, tab-separated, user id first) and a copy of each
    side file ``source/NAME.<side>``; returns ``out`` (created)."""
    out.mkdir(parents=True, exist_ok=True)
    lines = (source / f"{name}.inter").read_text().splitlines()
    keep = [ln for ln in lines[1:] if int(ln.split("\t")[0]) <= users]
    (out / f"{stem}.inter").write_text("\n".join([lines[0], *keep]) + "\n")
    for kind in side:
        (out / f"{stem}.{kind}").write_bytes((source / f"{name}.{kind}").read_bytes())
    return out
