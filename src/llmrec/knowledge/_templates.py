"""Prompt templates: versioned TOML files rendered into :class:`~llmrec.llm.Request` objects.

A template file (``templates/NAME.toml``, see the packaged ones) holds::

    id, version            the template's identity ("item@1"); both go into every cache key
    output                 "factor_lines": one "factor: text" line per factor
                           "factor_list":  a numbered list of factor names (the factors step)
    max_tokens, temperature, retry_temperature, words_per_factor
    word                   GBNF of one word of a factor line (``constrain="grammar"``)
    system, user           text with {placeholders}
    [sampling]             more request fields, e.g. frequency_penalty (OpenAI and llama.cpp)
    [params]               numbers the prompt builders read (history length, ...)

The rendered prompt and the decoding parameters are part of the cache key, so an edited text
gives new keys by itself; raise ``version`` when the meaning changes without the text (a
parameter the builders read, the parser).

How the backend is asked to keep the format (``constrain``):

- ``"grammar"``: a GBNF grammar in the request (llama.cpp: the local backend and llama.cpp's
  server). Short structured output: at most ``words_per_factor`` words per line.
- ``"json"``: a JSON schema (``response_format``; vLLM, SGLang, Ollama, llama.cpp, OpenAI).
  The schema bounds each value with ``maxLength``; strict hosted APIs that refuse length
  constraints answer HTTP 400 (a ``bad_request`` failure): use ``"none"`` there.
- ``"none"``: free text, parsed leniently.

Whatever the constraint, output that does not parse raises :class:`MalformedOutput`; the
generator stores it as a failure and retries it with sampling (``retry_temperature``, a seed
per attempt), since greedy decoding would repeat the same answer.
"""

from __future__ import annotations

import json
import re
import string
import tomllib
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Literal

from ..errors import ConfigError
from ..llm import Request

Constrain = Literal["grammar", "json", "none"]
CONSTRAINTS: tuple[str, ...] = ("grammar", "json", "none")
OUTPUTS = ("factor_lines", "factor_list")
TEMPLATE_NAMES = ("factors", "item", "user", "cluster", "partition", "fold")


class MalformedOutput(ValueError):
    """LLM output that does not have the template's structure."""


@dataclass(frozen=True)
class Template:
    """One prompt template (see the module docstring)."""

    id: str
    version: int
    output: str
    system: str
    user: str
    max_tokens: int = 96
    temperature: float = 0.0
    retry_temperature: float = 0.8
    words_per_factor: int = 8
    word: str = "[^ \\n:;]{1,12}"
    sampling: dict[str, Any] = field(default_factory=dict)
    params: dict[str, Any] = field(default_factory=dict)
    source: str = ""

    def __post_init__(self) -> None:
        where = self.source or self.id
        if self.output not in OUTPUTS:
            raise ConfigError(f"{where}: output must be one of {OUTPUTS}, not {self.output!r}")
        if self.version < 1 or self.max_tokens < 1 or self.words_per_factor < 1:
            raise ConfigError(f"{where}: version, max_tokens and words_per_factor must be >= 1")

    @property
    def ref(self) -> str:
        """``id@version``, as stored with every record."""
        return f"{self.id}@{self.version}"

    def param(self, name: str) -> Any:
        try:
            return self.params[name]
        except KeyError:
            raise ConfigError(f"{self.source or self.id}: [params] has no {name!r}") from None

    def render(self, fields: dict[str, Any]) -> tuple[str, str]:
        """(system, user) text with the placeholders filled."""
        return _fill(self.system, fields, self), _fill(self.user, fields, self)

    def decoding(self, attempt: int = 1) -> dict[str, Any]:
        """Decoding parameters of an attempt: greedy first, then seeded sampling."""
        if attempt <= 1:
            return {"max_tokens": self.max_tokens, "temperature": self.temperature}
        return {"max_tokens": self.max_tokens, "temperature": self.retry_temperature,
                "seed": attempt}

    def request(self, fields: dict[str, Any], factors: list[str], constrain: str,
                attempt: int = 1) -> Request:
        """The chat request for ``fields`` (``factors`` fills ``{factors}`` and the format)."""
        if constrain not in CONSTRAINTS:
            raise ConfigError(f"constrain must be one of {CONSTRAINTS}, not {constrain!r}")
        system, user = self.render({**fields, "factors": ", ".join(factors)})
        extra: dict[str, Any] = dict(self.sampling)
        schema = None
        if constrain == "grammar":
            extra["grammar"] = self.grammar(factors)
        elif constrain == "json":
            schema = self.json_schema(factors)
        return Request.chat(user, system=system, json_schema=schema, extra=extra,
                            **self.decoding(attempt))

    def grammar(self, factors: list[str]) -> str:
        """GBNF for the output: factor lines with a word limit, or a numbered list."""
        if self.output == "factor_list":
            n = int(self.param("n_factors"))
            items = ' "\\n" '.join(f'"{i}. " f' for i in range(1, n + 1))
            return f'root ::= {items}\nf ::= [A-Za-z] [^\\n:*.]{{1,24}}\n'
        lines = ' "\\n" '.join(f'"{f}:" v' for f in factors)
        return (f"root ::= {lines}\nv ::= (\" \" w){{1,{self.words_per_factor}}}\n"
                f"w ::= {self.word}\n")

    def json_schema(self, factors: list[str]) -> dict[str, Any]:
        if self.output == "factor_list":
            n = int(self.param("n_factors"))
            return {"type": "object", "required": ["factors"], "additionalProperties": False,
                    "properties": {"factors": {"type": "array", "minItems": n, "maxItems": n,
                                               "items": {"type": "string", "maxLength": 30}}}}
        limit = 8 * self.words_per_factor
        return {"type": "object", "required": list(factors), "additionalProperties": False,
                "properties": {f: {"type": "string", "minLength": 1, "maxLength": limit}
                               for f in factors}}

    def parse(self, text: str, factors: list[str]) -> dict[str, Any]:
        """Parsed output: ``{factor: text}`` or ``{"factors": [names]}``; else MalformedOutput."""
        data = _maybe_json(text)
        if self.output == "factor_list":
            names = data.get("factors") if isinstance(data, dict) else None
            found = clean_factors(names if isinstance(names, list) else _list_items(text))
            lo, hi = int(self.param("min_factors")), int(self.param("n_factors"))
            if len(found) < lo:
                raise MalformedOutput(f"need at least {lo} distinct factor names, got {found}")
            return {"factors": found[:hi]}
        if isinstance(data, dict):
            values = {clean_factor(str(k)): str(v).strip() for k, v in data.items()}
        else:
            values = _factor_lines(text)
        missing = [f for f in factors if not values.get(f)]
        if missing:
            raise MalformedOutput(f"no line for factor(s) {', '.join(missing)}")
        return {f: values[f] for f in factors}


def format_factor_lines(parsed: dict[str, Any]) -> str:
    """The canonical text of parsed factor lines (what is exported and shown)."""
    return "\n".join(f"{k}: {v}" for k, v in parsed.items())


def clean_factor(name: str) -> str:
    """``"**User Rating (overall)**"`` -> ``"user rating"``: lower case, at most 3 words."""
    name = re.sub(r"\(.*?\)|\*|_|\d", " ", name.lower())
    name = re.sub(r"[^a-z&/ -]", " ", name)
    words = [w for w in name.split() if w not in ("the", "a", "an")]
    return " ".join(words[:3])


def clean_factors(names: list[Any]) -> list[str]:
    """Clean names, dropping repeats (``genres`` repeats ``genre``)."""
    out: list[str] = []
    seen: set[str] = set()
    for n in names:
        c = clean_factor(str(n))
        stem = " ".join(w.rstrip("s") for w in c.split())
        if c and stem not in seen:
            out.append(c)
            seen.add(stem)
    return out


_BULLET = re.compile(r"^\s*(?:[-*\u2022#]+|\d+[.)])?\s*")


def _list_items(text: str) -> list[str]:
    lines = [ln for ln in text.splitlines() if ln.strip()]
    if len(lines) == 1:
        lines = lines[0].split(",")
    return [_BULLET.sub("", ln).split(":")[0] for ln in lines]


def _factor_lines(text: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for line in text.splitlines():
        key, sep, value = _BULLET.sub("", line).partition(":")
        if sep:
            out.setdefault(clean_factor(key), value.strip(" *\t"))
    return out


def _maybe_json(text: str) -> Any:
    stripped = text.strip()
    if not stripped.startswith("{"):
        return None
    try:
        return json.loads(stripped)
    except ValueError:
        raise MalformedOutput(f"invalid JSON: {stripped[:80]!r}") from None


def _fill(text: str, fields: dict[str, Any], template: Template) -> str:
    for _, name, _, _ in string.Formatter().parse(text):
        if name is not None and name not in fields:
            raise ConfigError(f"{template.source or template.id}: unknown placeholder "
                              f"{{{name}}}; available: {', '.join(sorted(fields))}")
    return text.format_map(fields)


def read_template_fields(path: str | Path, text: str | None, cls: type,
                         required: set[str]) -> dict[str, Any]:
    """The keys of a template TOML file (``text`` if given, else the file) checked against
    the fields of dataclass ``cls`` (``source`` excluded) and the ``required`` keys: one clear
    error naming the file for a missing file, bad TOML, an unknown or a missing key."""
    source = str(path)
    try:
        raw = tomllib.loads(Path(path).read_text(encoding="utf-8") if text is None else text)
    except FileNotFoundError:
        raise ConfigError(f"{source}: template file not found") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise ConfigError(f"{source}: invalid TOML ({e})") from None
    known = {f for f in cls.__dataclass_fields__ if f != "source"}
    unknown = sorted(set(raw) - known)
    missing = sorted(required - set(raw))
    if unknown or missing:
        raise ConfigError(f"{source}: " + (f"unknown key {unknown[0]!r}" if unknown
                                            else f"missing key {missing[0]!r}"))
    return raw


def read_template(path: str | Path, text: str | None = None) -> Template:
    """A :class:`Template` from a TOML file, with a clear error for a bad one."""
    source = str(path)
    raw = read_template_fields(path, text, Template, {"id", "version", "output", "system", "user"})
    try:
        return Template(**raw, source=source)
    except TypeError as e:
        raise ConfigError(f"{source}: {e}") from None


def load_templates(directory: str | Path | None = None) -> dict[str, Template]:
    """The six templates by name: the packaged ones, each replaced by ``directory/NAME.toml``
    where that file exists."""
    if directory is not None and not Path(directory).is_dir():
        raise ConfigError(f"{directory}: template folder not found")
    out: dict[str, Template] = {}
    packaged = resources.files("llmrec.knowledge") / "templates"
    for name in TEMPLATE_NAMES:
        custom = Path(directory) / f"{name}.toml" if directory else None
        if custom is not None and custom.exists():
            out[name] = read_template(custom)
        else:
            res = packaged / f"{name}.toml"
            out[name] = read_template(f"llmrec/knowledge/templates/{name}.toml",
                                      res.read_text(encoding="utf-8"))
    return out
