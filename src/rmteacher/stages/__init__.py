"""The top floor of the library: one module per DVC stage, in `theory/` and `lm/`. A stage
module holds its parameter class and `run(params)`; stages exchange data only through declared
DVC outputs, never by importing each other."""
