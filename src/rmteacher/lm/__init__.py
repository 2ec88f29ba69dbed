"""The language-model track: `world/` (corpus to initial policies), `rm/` (reward models),
`pg/` (policy gradient), `analysis/` (the paper's tables) and `experiments/` (one module per
stage)."""
