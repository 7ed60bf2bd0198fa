"""The parser behind the documentation's code-block test: fences, languages, markers, commands."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.markdown_blocks import (
    UnclosedFenceError,
    code_blocks,
    documentation_pages,
    program_of,
    shell_commands,
)

PAGE = """# A page

```json
{"a": 1}
```

Some text.
<!-- not run: needs your identity provider -->
```sh
mcp-front serve --config config.json
```

<!-- not run: the blank line below detaches this marker -->

```python
print("runs")
```

```
no language
```

1. A step:

   ```Python title="step.py"
   if True:
       print("indented")
   ```

````text
```json
{"inside": "a longer fence"}
```
````

~~~yaml
key: value
~~~
"""


@pytest.fixture
def page(tmp_path: Path) -> Path:
    path = tmp_path / "page.md"
    path.write_text(PAGE)
    return path


def test_blocks_come_with_their_language_line_and_text(page: Path) -> None:
    blocks = code_blocks(page)
    assert [(b.language, b.line) for b in blocks] == [
        ("json", 3),
        ("sh", 9),
        ("python", 15),
        ("", 19),
        ("python", 25),
        ("text", 30),
        ("yaml", 36),
    ]
    assert blocks[0].text == '{"a": 1}\n'
    assert blocks[0].where(page.parent) == "page.md:3"


def test_a_marker_counts_only_on_the_line_before_the_fence(page: Path) -> None:
    reasons = [block.not_run_reason for block in code_blocks(page)]
    assert reasons == [None, "needs your identity provider", None, None, None, None, None]


def test_a_fence_inside_a_list_item_loses_the_item_indentation(page: Path) -> None:
    indented = code_blocks(page)[4]
    assert indented.text == 'if True:\n    print("indented")\n'


def test_a_longer_fence_holds_a_shorter_one(page: Path) -> None:
    assert code_blocks(page)[5].text == '```json\n{"inside": "a longer fence"}\n```\n'


def test_an_unclosed_fence_is_an_error_naming_its_line(tmp_path: Path) -> None:
    path = tmp_path / "broken.md"
    path.write_text("text\n\n```sh\nmcp-front --version\n")
    with pytest.raises(UnclosedFenceError, match=r"broken\.md:3"):
        code_blocks(path)


def test_inline_code_with_three_backticks_opens_no_fence(tmp_path: Path) -> None:
    path = tmp_path / "inline.md"
    path.write_text("Write ```json``` fences.\n\n```sh\nmcp-front --version\n```\n")
    assert [(b.language, b.line) for b in code_blocks(path)] == [("sh", 3)]


def test_shell_commands_split_lines_continuations_and_operators() -> None:
    script = (
        "# a comment\n"
        "mcp-front serve --config config.json \\\n"
        "    --log-level debug   # trailing comment\n"
        "python3 -m venv .venv && .venv/bin/pip install -e . | tee log; TOKEN=x curl -s 'http://a/b;c'\n"
    )
    commands = shell_commands(script)
    assert commands == [
        ["mcp-front", "serve", "--config", "config.json", "--log-level", "debug"],
        ["python3", "-m", "venv", ".venv"],
        [".venv/bin/pip", "install", "-e", "."],
        ["tee", "log"],
        ["TOKEN=x", "curl", "-s", "http://a/b;c"],
    ]
    assert [program_of(command) for command in commands] == [
        "mcp-front",
        "python3",
        ".venv/bin/pip",
        "tee",
        "curl",
    ]


def test_the_pages_are_the_readme_the_docs_and_the_examples_readmes(tmp_path: Path) -> None:
    for name in [
        "README.md",
        "docs/b.md",
        "docs/a.md",
        "docs/images/x.md",
        "examples/app/README.md",
        "src/c.md",
    ]:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("# page\n")
    found = [page.relative_to(tmp_path).as_posix() for page in documentation_pages(tmp_path)]
    assert found == ["README.md", "docs/a.md", "docs/b.md", "examples/app/README.md"]
