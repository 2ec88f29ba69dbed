"""Analyses of the language-model runs: Table 2 (Section 4.1), Tables 10 and 12 (Section 4.2) and
the robustness variants."""
