"""Theory track: the paper's results checked exactly on small policies.

* `exact`: the building blocks (tabular and autoregressive policies, gradient flow, reward
  statistics, the paper's bounds and constructions).
* `common`, `theorem2`, `theorem6`, `rarity`: the setups and constructions the theory stages
  share (the stages themselves are in `rmteacher.stages.theory`).
"""
