"""Mutation testing of the Jinja2 templates, which mutmut does not mutate (README, "Mutation
testing").

A mutant changes one token of the Python text of one template: an arithmetic, comparison or
boolean operator, or a number (mutmut's operators). Jinja tags and expressions, strings,
comments and docstrings are left alone. Each mutant is written into a copy of the source tree,
and the tests of the code generated from that template run against it with a fresh module
cache. The committed-code comparison (``test_examples_generated``) is not among them: it
notices any change, not an error.

    python tests/mutate_templates.py                        # every template
    python tests/mutate_templates.py numpy/network.py.j2    # one template
    python tests/mutate_templates.py --list                 # the mutants, without running
    python tests/mutate_templates.py --sample 40            # 40 mutants drawn at random

Outcomes are kept in ``mutants-templates.json`` (``--results``): a second run skips the
mutants decided before, so an interrupted run resumes; delete the file after changing the
tests or the templates.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
import time
import tokenize
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

TESTS = {
    "numpy/module.py.j2": ["test_generated.py", "test_solve.py", "test_partitioned.py",
                           "test_bounded.py", "test_free_parameters.py", "test_hostile_names.py"],
    "casadi/module.py.j2": ["test_casadi.py", "test_generated.py", "test_bounded.py",
                            "test_partitioned.py", "test_free_parameters.py",
                            "test_hostile_names.py"],
    "numpy/network.py.j2": ["test_network_matrix.py", "test_nets.py"],
}
"""The tests that run the code generated from each template."""

OPERATORS = {"+": "-", "-": "+", "*": "/", "/": "*", "**": "*", "//": "/", "%": "/",
             "<": "<=", "<=": "<", ">": ">=", ">=": ">", "==": "!=", "!=": "==",
             "and": "or", "or": "and", "True": "False", "False": "True"}
"""One replacement per token, as mutmut's operator mutations."""

_JINJA = re.compile(r"\{\{.*?\}\}|\{#.*?#\}")


@dataclass(frozen=True)
class Mutant:
    template: str
    line: int  # 1-based
    column: int
    before: str
    after: str

    def __str__(self) -> str:
        return f"{self.template}:{self.line}:{self.column + 1}: {self.before} → {self.after}"

    def apply(self, text: str) -> str:
        lines = text.split("\n")
        row = lines[self.line - 1]
        assert row[self.column:self.column + len(self.before)] == self.before
        lines[self.line - 1] = (row[:self.column] + self.after
                                + row[self.column + len(self.before):])
        return "\n".join(lines)


def _mutated_number(text: str) -> str | None:
    """n → n + 1, as mutmut (``1e-13`` → ``1.0000000000001``); None for complex literals."""
    for kind in (int, float):
        try:
            return repr(kind(text) + 1)
        except ValueError:
            pass
    return None


def _code_lines(text: str):
    """(line number, line with Jinja expressions masked) of the Python text of a template:
    not Jinja statements, not inside a docstring or a Jinja expression spanning lines."""
    in_docstring = in_expression = False
    for number, line in enumerate(text.split("\n"), start=1):
        stripped = line.strip()
        if in_expression:
            in_expression = "}}" not in line
            continue
        if in_docstring or stripped.startswith('"""'):
            if line.count('"""') % 2 == 1:
                in_docstring = not in_docstring
            continue
        if stripped.startswith(("{%", "{#")):
            continue
        masked = _JINJA.sub(lambda m: "_" * len(m.group()), line)
        if "{{" in masked:  # a Jinja expression continued on the next line
            in_expression = True
            continue
        yield number, masked


def mutants(template: str) -> list[Mutant]:
    """Every mutant of one template (a path relative to templates/)."""
    text = (ROOT / "templates" / template).read_text()
    found = []
    for number, line in _code_lines(text):
        tokens = []
        try:
            tokens.extend(tokenize.generate_tokens(io.StringIO(line.strip() + "\n").readline))
        except (tokenize.TokenError, IndentationError, SyntaxError):
            pass  # a line continued from or onto another: its complete tokens are kept
        indent = len(line) - len(line.lstrip())
        for token in tokens:
            if token.type == tokenize.OP or token.type == tokenize.NAME:
                after = OPERATORS.get(token.string)
            elif token.type == tokenize.NUMBER:
                after = _mutated_number(token.string)
            else:
                continue
            if after is not None:
                found.append(Mutant(template, number, indent + token.start[1], token.string,
                                    after))
    return found


def _copy_tree(destination: Path) -> None:
    for folder in ("ocgen", "templates", "tests", "examples"):
        shutil.copytree(ROOT / folder, destination / folder,
                        ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", destination)


def run(mutant: Mutant, tree: Path, timeout: float) -> str:
    """"killed", "survived" or "timeout" (counted as killed, as mutmut does)."""
    path = tree / "templates" / mutant.template
    original = path.read_text()
    path.write_text(mutant.apply(original))
    try:
        with tempfile.TemporaryDirectory() as cache:
            command = [sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider",
                       "-n", "2", *(f"tests/{name}" for name in TESTS[mutant.template])]
            result = subprocess.run(command, cwd=tree, capture_output=True, timeout=timeout,
                                    env={**os.environ, "PYTHONPATH": ".", "OCGEN_CACHE": cache})
        return "survived" if result.returncode == 0 else "killed"
    except subprocess.TimeoutExpired:
        return "timeout"
    finally:
        path.write_text(original)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("templates", nargs="*", metavar="TEMPLATE",
                        help=f"templates to mutate: {', '.join(TESTS)} (default: all)")
    parser.add_argument("--list", action="store_true", help="list the mutants and stop")
    parser.add_argument("--sample", type=int, metavar="N",
                        help="run N mutants drawn at random (seed 0) from those chosen")
    parser.add_argument("--results", type=Path, default=Path("mutants-templates.json"),
                        help="outcomes by mutant, read and extended (default: %(default)s)")
    parser.add_argument("--timeout", type=float, default=900.0,
                        help="seconds per mutant before it counts as killed (default 900)")
    args = parser.parse_args()
    unknown = set(args.templates) - set(TESTS)
    if unknown:
        parser.error(f"unknown template(s) {', '.join(sorted(unknown))}")
    chosen = [m for template in args.templates or TESTS for m in mutants(template)]
    if args.sample is not None and args.sample < len(chosen):
        picked = set(random.Random(0).sample(range(len(chosen)), args.sample))
        chosen = [m for i, m in enumerate(chosen) if i in picked]
    if args.list:
        print("\n".join(map(str, chosen)))
        print(f"{len(chosen)} mutants")
        return 0
    decided = json.loads(args.results.read_text()) if args.results.is_file() else {}
    with tempfile.TemporaryDirectory() as folder:
        tree = Path(folder)
        _copy_tree(tree)
        for index, mutant in enumerate(chosen, start=1):
            if str(mutant) in decided:
                continue
            start = time.monotonic()
            decided[str(mutant)] = run(mutant, tree, args.timeout)
            args.results.write_text(json.dumps(decided, indent=1, ensure_ascii=False) + "\n")
            print(f"[{index}/{len(chosen)}] {decided[str(mutant)]:8} "
                  f"{time.monotonic() - start:5.0f} s  {mutant}", flush=True)
    for template in dict.fromkeys(m.template for m in chosen):
        outcomes = [decided[str(m)] for m in chosen if m.template == template]
        killed = outcomes.count("killed") + outcomes.count("timeout")
        print(f"{template}: {len(outcomes)} mutants, {killed} killed "
              f"({outcomes.count('timeout')} by time-out), {outcomes.count('survived')} survived")
    for mutant in chosen:
        if decided[str(mutant)] == "survived":
            print(f"survived: {mutant}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
