"""Fenced code blocks of Markdown pages, with where they start and what precedes them."""

from __future__ import annotations

import re
import shlex
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

_OPENING_FENCE = re.compile(r"^(?P<indent> *)(?P<fence>`{3,}|~{3,})(?P<info>.*)$")
_NOT_RUN = re.compile(r"^\s*<!--\s*not run:(?P<reason>.*?)-->\s*$")


@dataclass(frozen=True)
class CodeBlock:
    """One fenced block: `line` is the 1-based line of its opening fence."""

    path: Path
    line: int
    language: str
    text: str
    not_run_reason: str | None

    def where(self, root: Path | None = None) -> str:
        shown = self.path.relative_to(root) if root is not None else self.path
        return f"{shown}:{self.line}"


class UnclosedFenceError(ValueError):
    """A fence that is never closed: the rest of the page would be read as code."""


def documentation_pages(root: Path) -> list[Path]:
    """The pages whose blocks are checked: README.md, docs/*.md and the examples' READMEs."""
    pages = [root / "README.md", *sorted((root / "docs").glob("*.md"))]
    pages += sorted((root / "examples").glob("**/README.md"))
    return [page for page in pages if page.is_file()]


def code_blocks(path: Path) -> list[CodeBlock]:
    """Every fenced block of `path`, in order."""
    return list(_parse(path, path.read_text(encoding="utf-8").splitlines()))


def _parse(path: Path, lines: list[str]) -> Iterable[CodeBlock]:
    index = 0
    while index < len(lines):
        opening = _OPENING_FENCE.match(lines[index])
        if opening is None or (opening["fence"][0] == "`" and "`" in opening["info"]):
            index += 1
            continue
        fence, indent = opening["fence"], len(opening["indent"])
        closing = re.compile(rf"^\s*{re.escape(fence[0])}{{{len(fence)},}}\s*$")
        end = next((i for i in range(index + 1, len(lines)) if closing.match(lines[i])), None)
        if end is None:
            raise UnclosedFenceError(f"{path}:{index + 1}: the fence opened here is never closed")
        body = [_dedent(line, indent) for line in lines[index + 1 : end]]
        reason = _NOT_RUN.match(lines[index - 1]) if index > 0 else None
        yield CodeBlock(
            path=path,
            line=index + 1,
            language=opening["info"].strip().split(" ")[0].lower() if opening["info"].strip() else "",
            text="\n".join(body) + "\n" if body else "",
            not_run_reason=reason["reason"].strip() if reason is not None else None,
        )
        index = end + 1


def _dedent(line: str, indent: int) -> str:
    """A block inside a list item is indented like the item; its code is not."""
    stripped = len(line) - len(line.lstrip(" "))
    return line[min(indent, stripped) :]


_COMMAND_SEPARATORS = frozenset({"&&", "||", ";", "|", "&", "(", ")"})


def shell_commands(script: str) -> list[list[str]]:
    """The simple commands of a shell block, each as its words (comments dropped,
    `\\`-continued lines joined, `a && b | c` split into three)."""
    commands: list[list[str]] = []
    for line in script.replace("\\\n", " ").splitlines():
        lexer = shlex.shlex(line, posix=True, punctuation_chars=";&|()")
        lexer.whitespace_split = True
        commands.append([])
        for token in lexer:
            if token in _COMMAND_SEPARATORS:
                commands.append([])
            else:
                commands[-1].append(token)
    return [command for command in commands if command]


def program_of(command: list[str]) -> str:
    """The program a simple command runs, past `NAME=value` assignments."""
    words = [word for word in command if not _ASSIGNMENT.match(word)]
    return words[0] if words else ""


_ASSIGNMENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*=")
