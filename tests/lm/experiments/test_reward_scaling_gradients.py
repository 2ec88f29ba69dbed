"""The reward-scaling figure's gradient norms: at the first step of each run (the initial
policy, where the norm is linear in the scale) and over the whole run, per optimizer and scale."""

import pandas as pd

from rmteacher.stages.lm.reward_scaling import FIRST_STEP, OVER_THE_RUN, gradient_norms


def test_first_step_and_run_medians_per_optimizer_and_scale():
    logs = pd.DataFrame(
        {
            "optimizer": ["sgd"] * 6,
            "scale": [1.0, 1.0, 1.0, 4.0, 4.0, 4.0],
            "seed": [0, 0, 1, 0, 0, 1],
            "step": [1, 2, 1, 1, 2, 1],
            "grad_norm": ["1.0", "9.0", "3.0", "4.0", "0.5", "12.0"],  # trl logs them as text
        }
    )
    norms = gradient_norms(logs).set_index(["when", "scale"]).grad_norm
    assert norms[FIRST_STEP, 1.0] == 2.0 and norms[FIRST_STEP, 4.0] == 8.0  # linear in c
    assert norms[OVER_THE_RUN, 1.0] == 3.0 and norms[OVER_THE_RUN, 4.0] == 4.0
