"""Summarise the last ``mutmut run`` as markdown: scores per module and function, and every survivor.

Run from the repository root after ``mutmut run`` (see docs/mutation-testing.md)::

    python scripts/mutation_report.py --title "after" --out docs/mutation/after.md

The score is killed / all mutants; a mutant no selected test reaches counts as not killed.
State's reservation code (try_reserve, release, _ship, ship, apply) is also scored on its own.
"""

from __future__ import annotations

import argparse
import subprocess
from collections import Counter, defaultdict
from pathlib import Path

RESERVATION_FUNCTIONS = ("try_reserve", "release", "_ship", "ship", "apply")


def function_of(name: str) -> tuple[str, str]:
    """(module, function) of a mutant name such as ``router.state.xǁLiveStateǁ_ship__mutmut_3``."""
    module, rest = name.rsplit(".", 1)
    rest = rest[1:].rsplit("__mutmut_", 1)[0]  # drop the leading "x" and the number
    if rest.startswith("ǁ"):  # a method: xǁClassǁname
        cls, fn = rest.strip("ǁ").split("ǁ")
        return module.removeprefix("router."), f"{cls}.{fn}"
    return module.removeprefix("router."), rest[1:]  # a function: x_name


def parse_results(text: str) -> list[tuple[str, str, str, str]]:
    """(mutant name, module, function, status) per line of ``mutmut results --all true``."""
    rows = []
    for line in text.splitlines():
        line = line.strip()
        if "__mutmut_" not in line or ": " not in line:
            continue
        name, status = line.rsplit(": ", 1)
        rows.append((name, *function_of(name), status))
    return rows


def change_of(name: str) -> str:
    """The lines a mutant removes and adds, from ``mutmut show``."""
    diff = subprocess.run(["mutmut", "show", name], capture_output=True, text=True, check=True).stdout
    lines = [ln for ln in diff.splitlines() if ln[:2] in ("- ", "+ ")]
    return " / ".join(f"`{ln[0]} {ln[1:].strip()}`" for ln in lines) or "(no diff)"


def score_line(label: str, c: Counter) -> str:
    total = sum(c.values())
    pct = 100.0 * c["killed"] / total if total else 0.0
    return f"| {label} | {c['killed']} / {total} | {pct:.1f}% | {c['survived']} | {c['no tests']} | {c['timeout']} |"


def report(rows: list[tuple[str, str, str, str]], title: str) -> str:
    per_module: dict[str, Counter] = defaultdict(Counter)
    per_function: dict[tuple[str, str], Counter] = defaultdict(Counter)
    for _, module, fn, status in rows:
        per_module[module][status] += 1
        per_function[(module, fn)][status] += 1
        if module == "state" and fn.split(".")[-1] in RESERVATION_FUNCTIONS and fn.startswith("LiveState."):
            per_module["state: reservation code"][status] += 1

    head = "| scope | killed / total | score | survived | no tests | timeout |\n|---|---|---|---|---|---|"
    out = [f"# Mutation results: {title}", "", head]
    out += [score_line(m, per_module[m]) for m in sorted(per_module)]
    out += ["", "## Per function", "", head]
    out += [score_line(f"{m}: {f}", per_function[(m, f)]) for m, f in sorted(per_function)]
    out += ["", "## Surviving and untested mutants", ""]
    for name, _module, _fn, status in rows:
        if status in ("survived", "no tests"):
            out.append(f"- {status}: `{name}` {change_of(name)}")
    return "\n".join(out) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--title", default="last run")
    ap.add_argument("--out", type=Path, help="markdown file to write (default: print)")
    args = ap.parse_args()
    text = subprocess.run(["mutmut", "results", "--all", "true"], capture_output=True, text=True, check=True).stdout
    md = report(parse_results(text), args.title)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(md, encoding="utf-8")
    else:
        print(md, end="")


if __name__ == "__main__":
    main()
