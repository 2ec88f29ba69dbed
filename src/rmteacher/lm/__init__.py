"""The language-model track's library: `world/` (corpus to initial policies), `rm/` (reward models,
their names and the teacher evaluation), `pg/` (the policy-gradient settings, loop and sweeps) and
`analysis/` (the paper's tables). Its stages are in `rmteacher.stages.lm`."""
