"""One module per language-model stage: its parameter class (each field documented where it
is declared) and `run(params)`, which does all of the stage's computation and returns a typed
result. Importing a module here is cheap; heavy libraries are imported inside `run`."""
