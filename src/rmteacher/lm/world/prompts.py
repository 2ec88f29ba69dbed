"""The Section 4.1 world written by the lm_sft stage and read by every later stage: prompt splits
(RM training / policy gradient / test), the initial policy and the generation settings."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

from rmteacher.core.paths import BASE_LM, SFT_POLICY, WORLD
from rmteacher.lm.world.corpus import Passage, split_prompts, to_passage


@dataclass
class World:
    """Everything later stages need to sample from the initial policy the same way."""

    prompts: dict[str, list[Passage]]
    max_new_tokens: int
    temperature: float
    policy_dir: str = str(SFT_POLICY)
    base_dir: str = str(BASE_LM)

    def save(self, path: Path = WORLD) -> Path:
        payload = asdict(self)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(payload, indent=1, ensure_ascii=False) + "\n")
        return path

    @classmethod
    def load(cls, path: Path = WORLD) -> World:
        if not path.is_file():
            raise FileNotFoundError(f"{path} missing: run the lm_sft stage first")
        data = json.loads(path.read_text())
        data["prompts"] = {k: [Passage(**p) for p in v] for k, v in data["prompts"].items()}
        return cls(**data)

    def prompt_texts(self, split: str) -> list[str]:
        return [p.prompt for p in self.prompts[split]]

    def require(self, split: str, n: int, what: str) -> None:
        """Raise a one-line ValueError if `split` has fewer than `n` prompts (`what` names the
        parameter asking for them)."""
        have = len(self.prompts[split])
        if n > have:
            raise ValueError(f"{what}={n} exceeds the {have} '{split}' prompts (lm_sft params)")

    def generation(self) -> dict:
        """Keyword arguments of `sampling.sample_batches` for on-policy samples."""
        return {"max_new_tokens": self.max_new_tokens, "temperature": self.temperature}


def make_world(params) -> World:
    """Seeded, disjoint prompt splits of the held-out passages, from `LmSftParams`."""
    from rmteacher.lm.world.base_lm import heldout_documents

    passages = [
        to_passage(d, params.prompt_words, params.continuation_words) for d in heldout_documents()
    ]
    passages = [p for p in passages if p.continuation]
    sizes = {
        "rm_train": params.n_rm_prompts,
        "pg_train": params.n_pg_prompts,
        "test": params.n_test_prompts,
    }
    return World(
        split_prompts(passages, sizes, params.seed), params.max_new_tokens, params.temperature
    )
