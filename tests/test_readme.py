"""The README's test command is the one CI runs."""

from __future__ import annotations

import argparse
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _readme_commands() -> list[str]:
    return re.findall(r"```bash\n(.*?)\n```", (ROOT / "README.md").read_text(), flags=re.DOTALL)


def test_readme_opens_with_two_commands_and_ci_runs_the_second() -> None:
    commands = _readme_commands()
    assert len(commands) >= 2
    run_cmd, test_cmd = commands[0], commands[1]
    assert "torch==2.13.0" in run_cmd and "maxent-mdn" in run_cmd
    assert "torch==2.13.0" in test_cmd and "pytest" in test_cmd
    ci = (ROOT / ".ci" / "run").read_text()
    assert test_cmd in ci, "CI must run exactly the README's test command"


def _readme_usage() -> dict[str, set[str]]:
    """Options the README's usage blocks give each command (``""``: the global line)."""
    usage: dict[str, set[str]] = {}
    fenced, command = False, None
    for line in (ROOT / "README.md").read_text().splitlines():
        if line.startswith("```"):
            fenced, command = not fenced, None
            continue
        words = line.split()
        if fenced and words and words[0] == "maxent-mdn":
            command = "" if words[1].startswith("[") else words[1]
        elif not (fenced and line.startswith(" ")):
            command = None  # usage continues only on indented lines of the same block
        if command is not None:
            usage.setdefault(command, set()).update(re.findall(r"(?<![\w-])--[a-z][a-z-]*", line))
    return usage


def _parser_options() -> dict[str, set[str]]:
    from maxent_mdn.cli import _parser

    parser = _parser()
    (sub,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    found = {"": {o for a in parser._actions for o in a.option_strings if o.startswith("--")}}
    for name, command in sub.choices.items():
        found[name] = {o for a in command._actions for o in a.option_strings if o.startswith("--")}
    return found


def test_readme_usage_matches_the_help_of_every_command() -> None:
    """Every option of ``maxent-mdn CMD --help`` is in the README's usage of CMD, and no stale one is."""
    readme, parser = _readme_usage(), _parser_options()
    shared = {"--help", "--debug", "--threads"}  # global: on the README's `maxent-mdn [--debug] ...` line
    assert parser[""] - {"--help", "--version"} <= readme[""]
    for command, options in parser.items():
        if command:
            assert command in readme, f"the README has no usage line for `maxent-mdn {command}`"
            assert options - shared == readme[command], f"maxent-mdn {command}: README vs --help"


def test_the_readme_python_examples_import_what_exists() -> None:
    """Every name a README ``python`` block imports from maxent_mdn exists; the solve example needs only the top."""
    import importlib

    blocks = re.findall(r"```python\n(.*?)\n```", (ROOT / "README.md").read_text(), flags=re.DOTALL)
    imports = [
        m for b in blocks for m in re.findall(r"^from (maxent_mdn[\w.]*) import (.+)$", b, flags=re.MULTILINE)
    ]
    assert imports
    for module, names in imports:
        loaded = importlib.import_module(module)
        for name in (n.strip() for n in names.split(",")):
            assert hasattr(loaded, name), f"README: {module} has no {name}"
    solve_block = next(b for b in blocks if "solve(" in b)
    assert all(
        m == "maxent_mdn" for m, _ in re.findall(r"^from (\S+) import (.+)$", solve_block, flags=re.MULTILINE)
    )
