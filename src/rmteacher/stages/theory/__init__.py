"""One module per theory stage: its parameter class (a `StageParams` subclass), helpers, and
`run(params)`, which returns a frozen result dataclass of tidy tables and metrics."""
