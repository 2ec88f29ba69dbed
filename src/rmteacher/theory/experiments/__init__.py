"""One runner per theory stage: each takes the stage's params and returns tidy tables + metrics."""
