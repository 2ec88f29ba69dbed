"""Building blocks every track stands on: stage parameters, the stage helper notebooks use,
every file path, and generic Hugging Face helpers. Imports nothing heavy at module level."""
