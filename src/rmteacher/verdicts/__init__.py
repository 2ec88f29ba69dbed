"""Verdicts a reviewer would sign: the claims registry (`claims`), the manipulation checks
(`checks`), intervals and tests over the units that vary (`resampling`), the evidence for each
kind of claim (`evidence`), the verdict rules (`rules`), the deviations record (`deviations`)
and the rules as they were before it (`legacy`).

Sits at the metrics floor: imports `rmteacher.core`, `rmteacher.metrics`, numpy, scipy and
pandas only, so every stage and the outcome writer can use it."""
