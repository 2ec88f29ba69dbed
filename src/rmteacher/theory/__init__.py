"""Theory track: the paper's results checked exactly on small policies.

* `exact`: the building blocks (tabular and autoregressive policies, gradient flow, reward
  statistics, the paper's bounds and constructions).
* `experiments`: one module per DVC stage (its parameter class, helpers and `run(params)`).
"""
