"""One module per language-model stage: `run(params)`, which does all of the stage's computation
and returns a typed result; its parameter class (each field documented where it is declared) is
in `params/<stage>.py`, which `rmteacher check` imports without the heavy libraries."""
