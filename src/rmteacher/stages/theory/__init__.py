"""One module per theory stage: `run(params)`, which returns a frozen result dataclass of tidy
tables and metrics; its parameter class (a `StageParams` subclass) is in `params/<name>.py`."""
