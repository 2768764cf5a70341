"""Every ``llmrec ...`` command line shown in README.md, DEVELOPERS.md and docs/ parses.

Each line goes through ``llmrec.cli.build_parser().parse_args`` (the parser only, not the
work), so a renamed or removed flag or subcommand fails here with the file and line of the
stale documentation.

What counts as a command line:

- in a fenced code block (except ``python`` blocks) or an indented code block: a line that
  starts with ``llmrec``, ``python -m llmrec`` (any ``python``/``python3``, any path before it)
  or ``.../llmrec``, after optional ``VAR=value`` assignments; a line ending in ``\\``
  continues on the next one;
- in prose: an inline code span that starts the same way (a span may wrap across lines).

Conventions of the docs, applied before parsing:

- ``# ...`` after whitespace is a comment;
- ``[--option value]`` (a bracket group after whitespace whose content starts with ``-``) is
  an optional part: the command is checked both without it and with it;
- a ``...`` token elides text: directly after an option it stands for that option's value,
  anywhere else it is dropped;
- placeholders such as ``RUN_DIR`` are ordinary arguments;
- in prose, a span of command names alone (``llmrec knowledge``, ``llmrec serve``) names that
  command and is only checked to exist (``llmrec ...`` names any command);
- options are spelled in full (the parser is checked with abbreviations off).
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import io
import re
import shlex
from dataclasses import dataclass
from pathlib import Path

import pytest

from llmrec.cli import build_parser

ROOT = Path(__file__).resolve().parents[1]
PREFIX = re.compile(r"^(?:[A-Za-z_][A-Za-z0-9_]*=\S*\s+)*"             # VAR=value ...
                    r"(?:(?:\S*/)?bin/)?(?:llmrec|(?:\S*/)?python3?(?:\.\d+)?\s+-m\s+llmrec)")
START = re.compile(PREFIX.pattern + r"\s+\S")      # the program and at least one argument
FENCE = re.compile(r"^\s*(```|~~~)\s*([\w+-]*)")
OPTIONAL = re.compile(r"(?<!\S)\[(-[^\[\]]*)\]")
INLINE = re.compile(r"(?<!`)`([^`]+)`(?!`)")


@dataclass(frozen=True)
class Command:
    path: str          # relative to the repository root
    line: int          # 1-based line of the command's first line
    text: str          # as written, continuations joined
    inline: bool = False   # an inline code span in prose (else a code block line)

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.text}"


def doc_files(root: Path = ROOT) -> list[Path]:
    files = [root / "README.md", root / "DEVELOPERS.md", *sorted((root / "docs").rglob("*.md"))]
    return [f for f in files if f.is_file()]


def _is_command(text: str) -> bool:
    return bool(START.match(text.strip()))


def extract(path: Path, root: Path = ROOT) -> list[Command]:
    """The command lines of one Markdown file (see the module docstring)."""
    rel = str(path.relative_to(root)) if path.is_relative_to(root) else str(path)
    lines = path.read_text(encoding="utf-8").splitlines()
    out: list[Command] = []
    prose: list[tuple[int, str]] = []        # (line number, text) of a paragraph outside code

    def flush_prose() -> None:
        if not prose:
            return
        text = "\n".join(t for _, t in prose)
        starts = [0]
        for _, t in prose:
            starts.append(starts[-1] + len(t) + 1)
        for m in INLINE.finditer(text):
            span = " ".join(m.group(1).split())
            if _is_command(span):
                offset = sum(1 for s in starts[1:] if s <= m.start())
                out.append(Command(rel, prose[offset][0], span, inline=True))
        prose.clear()

    fence: str | None = None
    lang = ""
    pending: tuple[int, str] | None = None   # a command continued with a backslash
    for no, raw in enumerate(lines, 1):
        if fence is None:
            m = FENCE.match(raw)
            if m:
                flush_prose()
                fence, lang = m.group(1), m.group(2).lower()
                continue
            indented = raw.startswith("    ") or raw.startswith("\t")
            code = indented and (not prose or pending is not None)   # after a blank line
            if code and (pending is not None or _is_command(raw)):
                flush_prose()
                pending = _code_line(out, rel, no, raw, pending)
                continue
            if not raw.strip():
                flush_prose()
                continue
            prose.append((no, raw))
            continue
        if raw.strip().startswith(fence):
            fence, pending = None, None
            continue
        if lang in ("python", "py", "pycon", "toml", "json"):
            continue
        if pending is not None or _is_command(raw):
            pending = _code_line(out, rel, no, raw, pending)
    flush_prose()
    return out


def _code_line(out: list[Command], rel: str, no: int, raw: str,
               pending: tuple[int, str] | None) -> tuple[int, str] | None:
    text = raw.strip()
    if text.startswith("$ "):
        text = text[2:]
    first, sofar = pending if pending else (no, "")
    joined = f"{sofar} {text}".strip()
    if joined.endswith("\\"):
        return first, joined[:-1].rstrip()
    out.append(Command(rel, first, joined))
    return None


def strip_comment(text: str) -> str:
    """Cut a ``#`` comment that starts after whitespace, outside quotes."""
    quote = None
    for i, ch in enumerate(text):
        if quote:
            if ch == quote:
                quote = None
        elif ch in "'\"":
            quote = ch
        elif ch == "#" and (i == 0 or text[i - 1].isspace()):
            return text[:i].rstrip()
    return text


def variants(text: str) -> list[list[str]]:
    """The argv lists to check for one command: optional parts left out, and put in."""
    text = strip_comment(text)
    text = PREFIX.sub("", text, count=1).strip()
    forms = [OPTIONAL.sub("", text), OPTIONAL.sub(r"\1", text)] if OPTIONAL.search(text) else [text]
    argvs = []
    for form in dict.fromkeys(forms):
        tokens = shlex.split(form)
        argv: list[str] = []
        for tok in tokens:
            if tok == "...":
                if argv and argv[-1].startswith("-"):
                    argv.append("VALUE")       # an elided option value
                continue                       # elided text
            argv.append(tok)
        argvs.append(argv)
    return argvs


@functools.cache
def strict_parser() -> argparse.ArgumentParser:
    """The real parser, with abbreviations off: the docs spell every option in full, so that
    renaming ``--seed`` to ``--seeds`` cannot leave ``--seed`` working as a prefix."""
    parser = build_parser()
    todo = [parser]
    while todo:
        p = todo.pop()
        p.allow_abbrev = False
        for action in p._actions:
            if isinstance(action, argparse._SubParsersAction):
                todo.extend(action.choices.values())
    return parser


def parse_error(argv: list[str]) -> str | None:
    """None if the parser accepts ``argv``, else argparse's message."""
    err = io.StringIO()
    try:
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
            strict_parser().parse_args(argv)
    except SystemExit as e:
        if e.code not in (0, None):          # --help and --version exit 0
            return err.getvalue().strip() or f"exit status {e.code}"
    return None


def names_command(argv: list[str]) -> bool:
    """True if ``argv`` is only the names of an existing (sub)command, e.g. ``knowledge`` or
    ``serve``: in prose, "`llmrec serve` answers ..." names the command, it is no command line
    (a renamed command still fails)."""
    parser = strict_parser()
    for name in argv:
        subs = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
        if not subs or name not in subs[0].choices:
            return False
        parser = subs[0].choices[name]
    return True                 # every token named a command; none at all: `llmrec ...`


def check(cmd: Command) -> str | None:
    """A one-line report for a stale command, else None."""
    for argv in variants(cmd.text):
        error = None if cmd.inline and names_command(argv) else parse_error(argv)
        if error:
            return f"{cmd.path}:{cmd.line}: stale command `{cmd.text}`: {error}"
    return None


ALL = [c for f in doc_files() for c in extract(f)]


@pytest.mark.parametrize("cmd", ALL, ids=[f"{c.path}:{c.line}" for c in ALL])
def test_documented_command_parses(cmd: Command) -> None:
    problem = check(cmd)
    assert problem is None, problem


def _subcommand_paths(parser: argparse.ArgumentParser, prefix: str = "") -> list[str]:
    paths = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                path = f"{prefix} {name}".strip()
                children = _subcommand_paths(sub, path)
                paths.extend(children or [path])
    return paths


def test_cli_guide_shows_every_subcommand() -> None:
    """docs/cli.md has at least one example of every (sub)command the parser knows."""
    shown = [" ".join(a for a in variants(c.text)[0] if not a.startswith("-"))
             for c in extract(ROOT / "docs" / "cli.md")]
    missing = [p for p in _subcommand_paths(strict_parser())
               if not any(s == p or s.startswith(p + " ") for s in shown)]
    assert not missing, f"docs/cli.md shows no example of: {', '.join(missing)}"


def test_the_docs_show_commands() -> None:
    """The extraction finds the README's tour and the guide's examples (it cannot go blind)."""
    by_file = {c.path for c in ALL}
    assert {"README.md", "docs/cli.md"} <= by_file
    assert sum(c.path == "README.md" for c in ALL) >= 20


def test_a_renamed_flag_fails_with_file_and_line(tmp_path: Path) -> None:
    doc = tmp_path / "guide.md"
    doc.write_text(
        "# Guide\n\n"
        "Train with `llmrec train --model sasrec\n--dataset ml-100k` first.\n\n"
        "```\n"
        "llmrec evaluate RUN_DIR [--mask none]   # comment\n"
        "python -m llmrec recommend RUN_DIR \\\n"
        "    --user 196 -n 10\n"
        "llmrec knowledge show --item 50 --store ...\n"
        "llmrec bench knowledge ... --user-mode collective\n"
        "llmrec train --model sasrec --data-set ml-100k\n"
        "llmrec evaluate RUN_DIR [--masking none]\n"
        "```\n\n"
        "    LLMREC_HOME=/tmp/h .venv/bin/llmrec data fetch ml-100k\n", encoding="utf-8")
    cmds = extract(doc, tmp_path)
    assert [(c.line, c.text) for c in cmds] == [
        (3, "llmrec train --model sasrec --dataset ml-100k"),
        (7, "llmrec evaluate RUN_DIR [--mask none]   # comment"),
        (8, "python -m llmrec recommend RUN_DIR --user 196 -n 10"),
        (10, "llmrec knowledge show --item 50 --store ..."),
        (11, "llmrec bench knowledge ... --user-mode collective"),
        (12, "llmrec train --model sasrec --data-set ml-100k"),
        (13, "llmrec evaluate RUN_DIR [--masking none]"),
        (16, "LLMREC_HOME=/tmp/h .venv/bin/llmrec data fetch ml-100k"),
    ]
    problems = [p for p in map(check, cmds) if p]
    assert len(problems) == 2
    assert problems[0].startswith("guide.md:12: stale command")
    assert "unrecognized arguments: --data-set" in problems[0]
    assert problems[1].startswith("guide.md:13: stale command")
    assert "--masking" in problems[1]


def test_an_abbreviated_option_counts_as_stale() -> None:
    """argparse would take ``--mod`` for ``--model``; the docs must not lean on that, or renaming
    ``--seed`` to ``--seeds`` would leave ``--seed`` looking valid."""
    assert build_parser().parse_args(["train", "--mod", "pop"]).model == "pop"
    problem = check(Command("guide.md", 3, "llmrec train --mod pop"))
    assert problem is not None and problem.startswith("guide.md:3: stale command")
    assert check(Command("guide.md", 3, "llmrec train --model pop")) is None


def test_a_command_named_in_prose_must_exist() -> None:
    assert check(Command("guide.md", 5, "llmrec serve", inline=True)) is None
    assert check(Command("guide.md", 5, "llmrec knowledge show", inline=True)) is None
    assert check(Command("guide.md", 5, "llmrec ...", inline=True)) is None
    problem = check(Command("guide.md", 5, "llmrec knowledge display", inline=True))
    assert problem is not None and problem.startswith("guide.md:5: stale command")
    # in a code block a bare command is run as written, and `llmrec serve` needs RUN_DIR
    assert check(Command("guide.md", 5, "llmrec serve")) is not None
