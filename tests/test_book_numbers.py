"""No typed numbers in the book's prose: every number a run produced is glued (a typed one goes
stale on the next `dvc repro`). Digits may appear only inside glue roles and directives, math,
code, tables of the paper's constants (a table whose first row names the paper),
and names: Section/Table/Figure/Theorem... references, model and package names, citations.

The same holds for the markdown cells of the stage notebooks (they become the executed
notebooks of the book), and for counts spelled out in words that describe a run ("six RMs",
"three seeds"): the tiny profile runs fewer of everything, so such a count is a typed number."""

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGES = sorted(p for p in (ROOT / "book").rglob("*.md") if not {"_build", "_vendor"} & set(p.parts))
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
COUNT_WORDS = (
    "two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|thirteen|fourteen|fifteen|"
    "sixteen|seventeen|eighteen|nineteen|twenty|a dozen|dozens of"
)
RUN_NOUNS = (
    "RMs?|reward models?|mix(?:es)?|mix RMs|seeds?|polic(?:y|ies)|runs?|epochs?|checks?|"
    "prompts|samples|statistics|members|steps|RLOO runs|variants"
)
# a count in words, then up to two modifiers, then something a run has a number of
SPELLED_COUNT = re.compile(
    rf"\b(?:{COUNT_WORDS})\s+(?:[A-Za-z&-]+\s+){{0,2}}?(?:{RUN_NOUNS})\b", re.IGNORECASE
)
# a number standing on its own (not part of a name such as GPT-2, Llama-3.2-1B, AFINN-165)
NUMBER = re.compile(r"(?<![\w.\-/])[-+−]?\d+(?:[.,]\d+)*%?(?![\w\-/])")
REFERENCE = re.compile(
    r"\b(?:Sections?|Tables?|Figures?|Fig\.|Theorems?|Propositions?|Lemmas?|Definitions?|"
    r"Remarks?|Appendix|Appendices|Claims?|Eq\.|Equations?|Chapters?|Steps?|[Ii]ssues?|[Ii]tems?)"
    r"(?:\s+(?:and|to|or|,)?\s*[A-Z]?\d+(?:\.\d+)*[a-z]?)+",
)
CITATION = re.compile(r"\b(?:19|20)\d\d\b(?=[);,]|$)|arXiv:?\s*\d{4}\.\d{4,5}|NeurIPS \d{4}")


def prose(text: str) -> list[tuple[int, str]]:
    """(line number, text) of prose lines with code, math, glue and link targets removed."""
    out, fenced, math_block, paper_table = [], False, False, False
    for number, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        if not stripped.startswith("|"):
            paper_table = False
        elif not paper_table and "paper" in stripped.lower():
            paper_table = True  # a table whose header names the paper: its constants
        if paper_table:
            continue
        if stripped.startswith(("```", "~~~")):
            fenced = not fenced
            continue
        if stripped.startswith("$$"):
            math_block = not math_block if stripped.count("$$") == 1 else math_block
            continue
        if (
            fenced
            or math_block
            or stripped.startswith((":", "(", "---"))
            and stripped.endswith(("=", ")=", "---"))
        ):
            continue
        line = re.sub(r"\{[a-z:]+\}`[^`]*`", " ", line)  # roles: glue, prf:ref, doc, ref
        line = re.sub(r"`[^`]*`", " ", line)  # inline code
        line = re.sub(r"\$[^$]*\$", " ", line)  # inline math
        line = re.sub(r"\]\([^)]*\)", "]", line)  # link targets
        line = re.sub(r"<[^>]+>", " ", line)  # html
        line = REFERENCE.sub(" ", line)
        line = CITATION.sub(" ", line)
        out.append((number, line))
    return out


def typed_numbers(text: str) -> list[str]:
    return [
        f"line {number}: {match!r} in {line.strip()[:90]!r}"
        for number, line in prose(text)
        for match in [*NUMBER.findall(line), *SPELLED_COUNT.findall(line)]
    ]


def notebook_markdown(path: Path) -> str:
    """The markdown cells of a notebook, one after another."""
    import json

    cells = json.loads(path.read_text())["cells"]
    return "\n\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "markdown")


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT / "book")))
def test_no_typed_numbers_in_prose(page):
    found = typed_numbers(page.read_text())
    assert not found, "\n".join(found)


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda p: p.name)
def test_no_typed_numbers_in_notebook_markdown(notebook):
    found = typed_numbers(notebook_markdown(notebook))
    assert not found, "\n".join(found)


def test_spelled_out_counts_of_a_run_are_typed_numbers():
    text = (
        "Table 2 is over six RMs.\n"
        "The five trained mix RMs and three seeds.\n"
        "Both normalisations agree; the two tracks never import each other.\n"
    )
    assert [f.split(":")[0] for f in typed_numbers(text)] == ["line 1", "line 2", "line 2"]


def test_the_check_finds_typed_numbers_and_spares_glue_math_and_names():
    text = (
        "Variance rose to 0.78 here.\n"
        "It is {glue:text}`../executed/x.ipynb::v:.2f` in Table 2 and Section 4.1, $k = 2$.\n"
        "GPT-2 and Llama-3.2-1B with `n_prompts=500` (Razin et al., 2025).\n"
        "| rm | paper variance |\n|---|---|\n| a | 0.630 |\n\n| rm | ours |\n| b | 0.5 |\n"
    )
    assert [f.split(":")[0] for f in typed_numbers(text)] == ["line 1", "line 9"]
