"""What a person types, read into the same :class:`UserReply` the strategies already consume.

The simulated user speaks a small grammar (``genre: Comedy``) that :func:`parse_reply` reads.
A person types free text; :func:`understand` first applies that same parser (so the grammar
still works, and so do its accept/reject/bye cues), then finds what the grammar missed, using
the catalogue's own vocabulary::

    "I want a comedy"                    -> answer  genre (Comedy,)
    "something romantic from the 90s"    -> answer  genre (Romance,), also decade (1990s,)
    "no, older: the seventies"           -> reject  decade (1970s,)        (after a list)
    "a sci-fi or animated film from 1995" -> answer genre (Sci-Fi, Animation), decade (1990s,)
    "no comedies please"                  -> other  (a negated genre is not a wish)
    "don't know" / "any" (after a question about the decade) -> answer decade ()
    "yes, great" / "thanks!"              -> accept
    "bye" / "quit"                        -> ends

Genres are matched by their catalogue names (case, punctuation and a plural ``s`` ignored) and a
few common words for them (``funny``, ``scary``, ``animated``, ``kids``, ``science fiction``);
decades by ``1990s``, ``90s``, ``'90s``, ``nineties`` or a year (``1995`` -> 1990s). Only values
the catalogue has are kept. Deviation from the LLM strategies' papers: there the LLM reads the
text; this reader is rule-based, so every strategy (the non-LLM ones included) hears the same
constraints, and a test can check them.
"""

from __future__ import annotations

import re

from ._catalog import Catalog, normalize
from ._messages import UserReply, parse_reply

# common words for ML-style genres (normalised; matched only when the catalogue has the genre)
GENRE_WORDS = {
    "funny": "Comedy", "comedic": "Comedy", "comedies": "Comedy", "humor": "Comedy",
    "humour": "Comedy", "romantic": "Romance", "romances": "Romance", "love story": "Romance",
    "animated": "Animation", "cartoon": "Animation", "cartoons": "Animation",
    "kids": "Children's", "kid": "Children's", "children": "Children's",
    "childrens": "Children's", "family": "Children's",
    "science fiction": "Sci-Fi", "scifi": "Sci-Fi", "sci fi": "Sci-Fi", "space": "Sci-Fi",
    "scary": "Horror", "horror": "Horror", "thrilling": "Thriller", "suspense": "Thriller",
    "mysteries": "Mystery", "documentaries": "Documentary", "dramatic": "Drama",
    "dramas": "Drama", "noir": "Film-Noir", "cowboy": "Western", "westerns": "Western",
    "musicals": "Musical", "wars": "War", "criminal": "Crime", "gangster": "Crime",
    "adventures": "Adventure", "action packed": "Action",
}
DECADE_WORDS = {"twenties": 1920, "thirties": 1930, "forties": 1940, "fifties": 1950,
                "sixties": 1960, "seventies": 1970, "eighties": 1980, "nineties": 1990}
NEGATIONS = frozenset("no not without except but hate dislike nothing avoid never".split())
UNSURE = re.compile(r"\b(don t know|dont know|not sure|no idea|any|anything|whatever|"
                    r"doesn t matter|does not matter|no preference|don t care|dont care)\b")
ACCEPT = re.compile(r"^(yes|yeah|yep|great|perfect|thanks|thank you|sounds good|"
                    r"i ll take|love it|nice)\b")
REJECT = re.compile(r"^(no|nope|none|nah|not those|not these|neither|something else|"
                    r"other|others|different|more|seen)\b")
BYE = re.compile(r"\b(bye|goodbye|quit|exit|i m done|i have to go)\b")


def _genre_phrases(catalog: Catalog) -> dict[str, str]:
    """Normalised phrase -> the catalogue's genre, longest phrases first."""
    if "genre" not in catalog.attrs:
        return {}
    known = set(catalog.vocabulary("genre"))
    out = {}
    for g in known:
        n = normalize(g)
        if n in ("unknown", ""):
            continue
        out[n] = g
        out[n.replace(" ", "")] = g                          # "scifi", "filmnoir"
        out[n + "s"] = g                                     # "comedys" never hurts
        if n.endswith("y"):
            out[n[:-1] + "ies"] = g                          # comedies, mysteries
    out.update({w: g for w, g in GENRE_WORDS.items() if g in known})
    return dict(sorted(out.items(), key=lambda kv: -len(kv[0])))


def _negated(tokens: list[str], start: int) -> bool:
    """A negation among the two words before ``start`` ("no comedies", "not a comedy")."""
    return any(t in NEGATIONS for t in tokens[max(0, start - 2):start])


def find_genres(text: str, catalog: Catalog) -> tuple[str, ...]:
    """The catalogue genres ``text`` asks for (negated mentions left out), in order."""
    tokens = normalize(text).split()
    found: dict[str, int] = {}                           # genre -> first position
    taken = [False] * len(tokens)
    for phrase, genre in _genre_phrases(catalog).items():
        parts = phrase.split()
        for i in range(len(tokens) - len(parts) + 1):
            if tokens[i:i + len(parts)] == parts and not any(taken[i:i + len(parts)]):
                taken[i:i + len(parts)] = [True] * len(parts)
                if not _negated(tokens, i):
                    found.setdefault(genre, i)
    return tuple(sorted(found, key=found.__getitem__))


def find_decade(text: str, catalog: Catalog) -> str | None:
    """The decade ``text`` names (``1990s``, ``90s``, ``nineties``, a year), if the catalogue
    has it."""
    if "decade" not in catalog.attrs:
        return None
    low = normalize(text)
    start = None
    if m := re.search(r"\b(1[89]|20)(\d)0 ?s\b", low):
        start = int(m.group(1) + m.group(2) + "0")
    elif m := re.search(r"\b(\d)0 ?s\b", low):
        d = int(m.group(1))
        start = (2000 if d <= 2 else 1900) + 10 * d
    elif m := re.search(r"\b(" + "|".join(DECADE_WORDS) + r")\b", low):
        start = DECADE_WORDS[m.group(1)]
    elif m := re.search(r"\b(1[89]\d\d|20\d\d)\b", low):
        start = int(m.group(1)) // 10 * 10
    if start is None:
        return None
    return catalog.canonical("decade", f"{start}s")


def understand(text: str, catalog: Catalog, asked: str | None = None,
               after_recommendation: bool = False) -> UserReply:
    """Read one typed utterance (see the module docstring). ``asked``: the attribute the
    agent's last message asked about (an "I don't know" answers it); ``after_recommendation``:
    the last message was a list (a leading "no" rejects it)."""
    grammar = parse_reply(text)
    if grammar.attribute is not None and grammar.values:
        return grammar                                    # the simulator's grammar
    low = normalize(text)
    ends = grammar.ends or bool(BYE.search(low))
    stated: list[tuple[str, tuple[str, ...]]] = []
    genres = find_genres(text, catalog)
    if genres:
        stated.append(("genre", genres))
    decade = find_decade(text, catalog)
    if decade:
        stated.append(("decade", (decade,)))
    if not stated and asked and UNSURE.search(low) and not after_recommendation:
        stated.append((asked, ()))
    if after_recommendation and REJECT.match(low):
        kind = "reject"
    elif ACCEPT.match(low) and not stated:
        kind = "accept"
    elif stated:
        kind = "answer"
    else:
        kind = "bye" if ends else "other"
    if not stated:
        return UserReply(kind, ends=ends)
    (attr, values), *rest = stated
    return UserReply(kind, attr, values, ends, also=tuple(rest))
