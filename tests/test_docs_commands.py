"""Every `passline …` command in README.md and docs/*.md runs as written (issue #7).

Commands are taken from ```sh blocks (whole lines, `&&`/`;`/`|` segments and `$(…)`
substitutions) and from `passline …` code spans in the prose. Each must name a real (sub)command and pass options it accepts, with
values it accepts. The cheap ones are also run (tokens, schemas, a dry-run apply, --help);
the long-running ones (broker, demo, store-client, printer-sim, a real apply) have their
own tests. Also: every relative link and #anchor in the docs resolves.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass
from pathlib import Path

import click
import pytest
from click.core import ParameterSource
from click.testing import CliRunner

from passline.cli import cli

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
SHELL_LANGS = {"sh", "bash", "shell", "console"}
FENCE = re.compile(r"^\s*```(\S*)\s*$")
#: `$(…)` without nesting; quoted parts may hold parentheses.
SUBSTITUTION = re.compile(r"""\$\(((?:[^()'"]|'[^']*'|"[^"]*")*)\)""")
SEPARATORS = {"&&", "||", ";", "|", "&"}
INLINE = re.compile(r"`((?:\S*/)?passline [^`]+)`")
#: Code spans that quote output, not a command.
NOT_COMMANDS = {"passline broker listening http=HOST:PORT ws=HOST:PORT"}
PLACEHOLDER = "X"
SECRET = "docs-test-secret-0123456789abcdef-0123456789"
#: Subcommands run for real by this test (fast, no servers); `stores apply` only as --dry-run.
RUNNABLE = {("token", "issue"), ("schema",)}


@dataclass(frozen=True)
class DocCommand:
    where: str
    args: tuple[str, ...]
    prose: bool = False
    """A code span in the text: may name just a group or a command without its options."""

    def __str__(self) -> str:
        return f"{self.where}: passline {shlex.join(self.args)}"


def shell_lines(path: Path) -> list[tuple[int, str]]:
    """(line number, logical line) of every shell block; `\\` continuations joined."""
    out: list[tuple[int, str]] = []
    lang: str | None = None
    pending, start = "", 0
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        fence = FENCE.match(line)
        if fence:
            lang = None if lang is not None else fence.group(1)
            continue
        if lang not in SHELL_LANGS:
            continue
        start = start or n
        if line.rstrip().endswith("\\"):
            pending += line.rstrip()[:-1] + " "
            continue
        if not balanced(pending + line):  # a quoted argument goes on on the next line
            pending += line + "\n"
            continue
        out.append((start, pending + line))
        pending, start = "", 0
    return out


def balanced(line: str) -> bool:
    try:
        shlex.split(line, comments=True)
    except ValueError:
        return False
    return True


def commands_in(line: str) -> list[tuple[str, ...]]:
    """The argument lists of every `passline` invocation in one shell line."""
    pieces = [line]
    while m := SUBSTITUTION.search(pieces[0]):
        pieces.append(m.group(1))
        pieces[0] = pieces[0][: m.start()] + PLACEHOLDER + pieces[0][m.end() :]
    found = []
    for piece in pieces:
        lexer = shlex.shlex(piece, posix=True, punctuation_chars=";&|")
        lexer.whitespace_split = True
        lexer.commenters = "#"
        segment: list[str] = []
        for token in [*lexer, ";"]:
            if token not in SEPARATORS:
                segment.append(token)
                continue
            words = [w for w in segment if not re.match(r"^[A-Z_][A-Z0-9_]*=", w)]
            if words and Path(words[0]).name == "passline":
                found.append(tuple(words[1:]))
            segment = []
    return found


def inline_commands(path: Path) -> list[tuple[int, str]]:
    """`passline …` code spans in the prose (not in fenced blocks)."""
    out = []
    fenced = False
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if FENCE.match(line):
            fenced = not fenced
        elif not fenced:
            out += [(n, span) for span in INLINE.findall(line) if span not in NOT_COMMANDS]
    return out


def doc_commands() -> list[DocCommand]:
    found = []
    for path in DOCS:
        where = path.relative_to(ROOT)
        for n, line in shell_lines(path):
            found += [DocCommand(f"{where}:{n}", args) for args in commands_in(line)]
        for n, line in inline_commands(path):
            found += [DocCommand(f"{where}:{n}", args, True) for args in commands_in(line)]
    return sorted(set(found), key=str)


COMMANDS = doc_commands()


def resolve(args: tuple[str, ...]) -> tuple[list[str], click.Command, list[str]]:
    """(command path, command, remaining args) for `passline ARGS`."""
    command: click.Command = cli
    names: list[str] = []
    rest = list(args)
    while isinstance(command, click.Group) and rest and not rest[0].startswith("-"):
        sub = command.get_command(click.Context(command), rest[0])
        assert sub is not None, f"no such command: passline {' '.join([*names, rest[0]])}"
        names.append(rest.pop(0))
        command = sub
    return names, command, rest


def test_the_docs_have_commands() -> None:
    seen = {tuple(resolve(c.args)[0]) for c in COMMANDS}
    for expected in [("demo",), ("broker",), ("store-client",), ("token", "issue")]:
        assert expected in seen, f"no `passline {' '.join(expected)}` in the docs"
    assert ("stores", "apply") in seen


@pytest.mark.parametrize("doc", COMMANDS, ids=str)
def test_documented_command_parses(doc: DocCommand) -> None:
    names, command, rest = resolve(doc.args)
    if "--help" in rest or "-h" in rest or (doc.prose and not rest):
        return
    assert not isinstance(command, click.Group), f"{doc}: names a group, not a command"
    known = {o for p in command.params for o in (*p.opts, *p.secondary_opts)}
    for word in rest:  # resilient parsing skips unknown options: check them here
        name = word.split("=", 1)[0]
        assert not name.startswith("-") or name in known, f"{doc}: no option {name}"
    try:
        ctx = command.make_context(" ".join(names), list(rest), resilient_parsing=True)
    except click.UsageError as exc:
        pytest.fail(f"{doc}: {exc.format_message()}")
    assert not ctx.args, f"{doc}: unexpected arguments {ctx.args}"
    for param in command.params:
        if ctx.get_parameter_source(param.name or "") is not ParameterSource.COMMANDLINE:
            continue
        if ctx.params.get(param.name) is None and not isinstance(param.type, click.Path):
            pytest.fail(f"{doc}: bad value for {param.opts[0]} ({param.type.name} expected)")


def runnable(doc: DocCommand) -> bool:
    names, _, rest = resolve(doc.args)
    if doc.prose and not rest:  # a mention such as `passline token issue`
        return False
    helps = "--help" in doc.args or "-h" in doc.args
    dry_apply = names == ["stores", "apply"] and "--dry-run" in doc.args
    return helps or tuple(names) in RUNNABLE or dry_apply


@pytest.mark.parametrize("doc", [c for c in COMMANDS if runnable(c)], ids=str)
def test_cheap_documented_command_runs(
    doc: DocCommand, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "examples").symlink_to(ROOT / "examples")
    monkeypatch.chdir(tmp_path)
    env = {"PASSLINE_SECRET": SECRET, "PASSLINE_TOKEN": None, "PASSLINE_BROKER_HTTP": None}
    result = CliRunner().invoke(cli, list(doc.args), env=env, catch_exceptions=False)
    assert result.exit_code == 0, f"{doc}\n{result.output}"
    if tuple(resolve(doc.args)[0]) == ("token", "issue") and "--help" not in doc.args:
        assert re.fullmatch(r"[\w-]+\.[\w-]+\.[\w-]+\n", result.output), result.output


def all_commands(group: click.Group, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    out = []
    for name in group.list_commands(click.Context(group)):
        sub = group.get_command(click.Context(group), name)
        assert sub is not None
        out.append((*prefix, name))
        if isinstance(sub, click.Group):
            out += all_commands(sub, (*prefix, name))
    return out


@pytest.mark.parametrize("names", all_commands(cli), ids=" ".join)
def test_every_command_has_help(names: tuple[str, ...]) -> None:
    result = CliRunner().invoke(cli, [*names, "--help"], catch_exceptions=False)
    assert result.exit_code == 0 and "Usage: " in result.output, result.output


def test_readme_starts_with_the_two_commands() -> None:
    first = shell_lines(ROOT / "README.md")[:2]
    assert [n for n, _ in first] == [first[0][0], first[0][0] + 1]
    assert "passline demo" in first[0][1] and first[1][1].startswith("./scripts/test")


# -- links -----------------------------------------------------------------------------------
LINK = re.compile(r"\]\(([^)\s]+)\)")


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to dashes."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def anchors(path: Path) -> set[str]:
    text = re.sub(r"```.*?```", "", path.read_text(encoding="utf-8"), flags=re.S)
    return {slug(m) for m in re.findall(r"^#{1,6} (.+)$", text, flags=re.M)}


@pytest.mark.parametrize("path", DOCS, ids=lambda p: p.name)
def test_links_resolve(path: Path) -> None:
    text = re.sub(r"```.*?```", "", path.read_text(encoding="utf-8"), flags=re.S)
    for target in LINK.findall(text):
        if re.match(r"^[a-z]+:", target):
            continue
        file, _, anchor = target.partition("#")
        dest = (path.parent / file).resolve() if file else path
        assert dest.exists(), f"{path.name}: broken link {target}"
        if anchor and dest.suffix == ".md":
            assert anchor in anchors(dest), f"{path.name}: no #{anchor} in {dest.name}"
