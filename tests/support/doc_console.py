"""Run the ```console blocks of an operator doc and check what they show (so the doc stays true).

A block is a list of `$ command` lines, each followed by the output the doc shows for it. Every
shown line must appear in what the command printed (stdout and stderr together); a line ending in
`...` is a prefix; a line that is only `...` stands for lines the doc leaves out.
"""

from __future__ import annotations

import re
import textwrap
from dataclasses import dataclass, field


@dataclass
class Step:
    command: str
    shown: list[str] = field(default_factory=list)


def console_steps(markdown: str, *, section: str | None = None) -> list[Step]:
    """The steps of every ```console block (under heading `section` only, when given)."""
    if section is not None:
        markdown = _section(markdown, section)
    steps: list[Step] = []
    for block in re.findall(r"```console\n(.*?)^\s*```", markdown, re.S | re.M):
        for line in textwrap.dedent(block).splitlines():
            if line.startswith("$ "):
                steps.append(Step(line[2:]))
            elif line.strip() and line.strip() != "..." and steps:
                steps[-1].shown.append(line)
    return steps


def _section(markdown: str, heading: str) -> str:
    """From `heading` to the next heading of its level or higher, outside code blocks."""
    level = len(heading) - len(heading.lstrip("#"))
    lines = markdown[markdown.index(heading):].splitlines(keepends=True)
    fenced = False
    for i, line in enumerate(lines[1:], start=1):
        if line.lstrip().startswith("```"):
            fenced = not fenced
        elif not fenced and re.match(rf"#{{1,{level}}} ", line):
            return "".join(lines[:i])
    return "".join(lines)


def missing(step: Step, output: str) -> list[str]:
    """The lines the doc shows for `step` that `output` does not contain."""
    return [line for line in step.shown if (line[:-3] if line.endswith("...") else line) not in output]
