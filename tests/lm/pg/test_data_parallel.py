"""The policy-gradient loop on two processes (accelerate's launcher, gloo on this CPU machine).

What the batch arithmetic implies, and what is checked: the B prompts of a step are split into
two equal shards, each process's loss is the mean over its shard, and the gradients are averaged,
so the update equals the gradient of the whole batch's mean loss — up to float32 summation order
(checked on a fixed batch: at most 1e-6 of the largest gradient entry). The two replicas must end
bit-identical, and the logged statistics are batch means, the same on both processes. Trajectories
of a 1-process and a 2-process run are not compared step by step: process r samples from seed + r,
so the two runs are two samples of the same run."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np

SCRIPT = Path(__file__).with_name("two_process_run.py")


def test_two_processes_give_the_batch_gradient_and_stay_in_sync(tiny_policy_dir, tmp_path):
    accelerate = Path(sys.executable).with_name("accelerate")
    out = tmp_path / "out"
    env = {
        **os.environ,
        "OMP_NUM_THREADS": "1",
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        "CUDA_VISIBLE_DEVICES": "",  # two CPU processes even where a GPU exists
    }
    command = [str(accelerate), "launch", "--multi_gpu", "--num_processes", "2"]
    command += ["--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no"]
    result = subprocess.run(
        [*command, str(SCRIPT), tiny_policy_dir, str(out)],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    ranks = [json.loads((out / f"rank{r}.json").read_text()) for r in (0, 1)]
    assert [r["rank"] for r in ranks] == [0, 1] and {r["world"] for r in ranks} == {2}
    for seen in ranks:
        assert seen["gradient_max_abs"] > 0
        assert seen["gradient_max_abs_difference"] <= 1e-6 * seen["gradient_max_abs"]
        assert seen["replica_max_abs_difference"] == 0.0
    assert ranks[0]["log"] == ranks[1]["log"]  # statistics reduced over both shards
    log = ranks[0]["log"]
    assert log["step"] == [1, 2, 3] and log["completions"] == [8, 8, 8]  # B x k over processes
    for column in ("loss", "grad_norm", "reward", "within_group_variance", "kl"):
        assert np.all(np.isfinite(log[column])), column
