"""The Section 4.1 world written by the lm_sft stage and read by every later stage: prompt splits
(RM training / policy gradient / test), the initial policy and the generation settings."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

from rmteacher.lm.base import BASE_LM_DIR, heldout_documents
from rmteacher.lm.corpus import Passage, split_prompts, to_passage

SFT_DIR = Path("artifacts/lm_sft")
SPLITS = ("rm_train", "pg_train", "test")


@dataclass
class World:
    """Everything later stages need to sample from the initial policy the same way."""

    prompts: dict[str, list[Passage]]
    max_new_tokens: int
    temperature: float
    policy_dir: str = str(SFT_DIR / "policy")
    base_dir: str = str(BASE_LM_DIR)

    def save(self, path: Path = SFT_DIR / "world.json") -> Path:
        payload = asdict(self)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(payload, indent=1, ensure_ascii=False) + "\n")
        return path

    @classmethod
    def load(cls, path: Path = SFT_DIR / "world.json") -> World:
        if not path.is_file():
            raise FileNotFoundError(f"{path} missing: run the lm_sft stage first")
        data = json.loads(path.read_text())
        data["prompts"] = {k: [Passage(**p) for p in v] for k, v in data["prompts"].items()}
        return cls(**data)

    def prompt_texts(self, split: str) -> list[str]:
        return [p.prompt for p in self.prompts[split]]

    def generation(self) -> dict:
        """Keyword arguments of `sampling.sample_batches` for on-policy samples."""
        return {"max_new_tokens": self.max_new_tokens, "temperature": self.temperature}


def make_world(params) -> World:
    """Seeded, disjoint prompt splits of the held-out passages, from `LmSftParams`."""
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
