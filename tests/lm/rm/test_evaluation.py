"""Reading back what the RM evaluation stages saved."""

from rmteacher.lm.rm.evaluation import reward_specs


def test_reward_specs_map_trained_rm_names_to_their_directories():
    manifest = {"gold": "vader", "rms": [{"name": "rm_onpolicy_100", "path": "artifacts/x"}]}
    assert reward_specs(["afinn", "rm_onpolicy_100"], manifest) == {
        "afinn": "afinn",
        "rm_onpolicy_100": "artifacts/x",
    }
