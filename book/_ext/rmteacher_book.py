"""The book's own Sphinx extension.

- ``{outcome-table}``: the outcome table, rendered by the same function that writes the README's
  (`outcomes_markdown`, the one place to re-point when the claims move), with each claim's stage
  linked to the book page that tests it.
- Undefined glued numbers: a glued NaN (an interval from one seed, a slope from one point) is
  printed as "–", never as "nan".
"""

from __future__ import annotations

import re
from pathlib import Path

from docutils import nodes
from docutils.statemachine import StringList
from sphinx.transforms.post_transforms import SphinxPostTransform
from sphinx.util.docutils import SphinxDirective

UNDEFINED = "–"
NOT_A_NUMBER = re.compile(r"(?<![\w.])[-+]?nan%?(?![\w.])", re.IGNORECASE)
# the book page that tests each stage's claims
STAGE_PAGES = {
    "theory_gradient_bound": ("theory/gradient_bound", "gradient bound"),
    "theory_escape_time": ("theory/escape_time", "escape time"),
    "theory_accuracy_speed": ("theory/accuracy_speed", "accuracy and speed"),
    "theory_policy_dependence": ("theory/policy_dependence", "policy dependence"),
    "theory_best_of_n": ("theory/best_of_n", "Best-of-N"),
    "rm_eval": ("sec41/index", "Section 4.1"),
    "sec41_report": ("sec41/findings", "Section 4.1 findings"),
    "sec42_eval": ("sec42/index", "Section 4.2"),
    "sec42_report": ("sec42/index", "Section 4.2"),
    "alt_normalization": ("sec42/variants", "variants"),
    "reward_scaling": ("sec42/variants", "variants"),
}


def outcomes_markdown(root: Path) -> str:
    """The README's outcome table (Markdown) from the metrics of the run in `root`."""
    from rmteacher import outcomes

    return outcomes.table(outcomes.read_metrics(root / "metrics"))


def linked(markdown: str) -> str:
    """Stage names (code spans) as links to their book pages; undefined numbers as "–"."""

    def link(match: re.Match) -> str:
        if match[1] not in STAGE_PAGES:
            return match[0]
        page, name = STAGE_PAGES[match[1]]
        return f"{{doc}}`{name} </{page}>`"

    text = re.sub(r"`([a-z0-9_]+)`", link, markdown)
    return NOT_A_NUMBER.sub(UNDEFINED, text).replace("| stage |", "| where |")


class OutcomeTable(SphinxDirective):
    """The outcome table of the committed run (see the module docstring)."""

    has_content = False

    def run(self):
        root = Path(self.env.srcdir).parent
        container = nodes.container(classes=["rmt-outcomes"])
        text = linked(outcomes_markdown(root))
        self.state.nested_parse(StringList(text.splitlines()), self.content_offset, container)
        return [container]


class UndefinedNumbers(SphinxPostTransform):
    """A pasted glue value that is NaN reads "–" (after myst-nb resolves glue references)."""

    default_priority = 900

    def run(self, **kwargs):
        for node in list(self.document.findall(nodes.inline)) + list(
            self.document.findall(nodes.literal)
        ):
            if "pasted-text" in node["classes"] or isinstance(node, nodes.literal):
                text = node.astext()
                if NOT_A_NUMBER.fullmatch(text.strip()):
                    node.replace_self(nodes.inline(UNDEFINED, UNDEFINED, classes=node["classes"]))


def setup(app):
    app.add_directive("outcome-table", OutcomeTable)
    app.add_post_transform(UndefinedNumbers)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
