"""Pluggable rewards. A reward maps (prompts, responses) to one float per pair. A spec names one:

* a registered scorer: `vader`, `length`, the off-the-shelf `afinn`, `textblob` and
  `minilm_sentiment` (rewards/offtheshelf.py), or anything added with `register_scorer`;
* `package.module:function`, a Python callable f(prompts, responses) -> sequence of floats;
* a local directory holding a one-output sequence-classification model (and its tokenizer);
* a Hugging Face Hub id of such a model (online only: offline it fails fast);
* either of the last two followed by `+remote_code`: the model's own modelling code is loaded
  (transformers' `trust_remote_code`) and its output's `score` is the reward when it has one, as
  for the paper's ground truth ArmoRM (`RLHFlow/ArmoRM-Llama3-8B-v0.1+remote_code`, a
  multi-objective head whose `score` is the preference). Only for models whose code you trust.
"""

from __future__ import annotations

import contextlib
import contextvars
import difflib
import importlib
import inspect
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

from rmteacher.core.hf import check_model_source, check_reward_model_dir, context_length
from rmteacher.core.hf import device as default_device
from rmteacher.rewards import offtheshelf  # noqa: F401  (registers afinn, textblob, minilm_sentiment)
from rmteacher.rewards.scorers import SCORERS, ScoreFn, check_scorer_installed, register_scorer

__all__ = [
    "SCORERS",
    "PromptScaledReward",
    "Reward",
    "ScoreFn",
    "SequenceClassifierReward",
    "RewardError",
    "check_reward_spec",
    "fixed_length_scoring",
    "load_reward",
    "register_scorer",
]


@register_scorer("vader")
def _vader() -> ScoreFn:
    """VADER compound sentiment of the response, in [-1, 1] (Hutto and Gilbert, 2014)."""
    analyzer = SentimentIntensityAnalyzer()
    return lambda prompts, responses: [analyzer.polarity_scores(r)["compound"] for r in responses]


@register_scorer("length")
def _length() -> ScoreFn:
    """Number of words of the response (a deliberately sentiment-blind reward)."""
    return lambda prompts, responses: [float(len(r.split())) for r in responses]


def _import_callable(spec: str, what: str) -> ScoreFn:
    module_name, _, attr = spec.partition(":")
    try:
        fn = getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError) as err:
        raise ValueError(f"{what}: cannot import reward '{spec}' ({err})") from None
    if not callable(fn):
        raise ValueError(f"{what}: '{spec}' is not callable")
    return fn


def _check_signature(fn, spec: str, what: str) -> None:
    """A plug-in reward is called as f(prompts, responses): refuse one that cannot be."""
    try:
        signature = inspect.signature(fn)
    except (TypeError, ValueError):  # a builtin without a signature: trust it
        return
    try:
        signature.bind(["prompt"], ["response"])
    except TypeError:
        raise ValueError(
            f"{what}: '{spec}' takes {signature}, but a reward is called as f(prompts, responses)"
        ) from None


def names_a_function(spec: str) -> bool:
    """Whether a spec is a `package.module:function` path (not a scorer name, not a path)."""
    return ":" in spec and not Path(spec).exists()


REMOTE_CODE = "+remote_code"


def model_spec(spec: str) -> tuple[str, bool]:
    """(model path or Hub id, whether its own modelling code is to be loaded)."""
    if spec.endswith(REMOTE_CODE):
        return spec[: -len(REMOTE_CODE)], True
    return spec, False


def check_reward_spec(spec: str, what: str = "reward") -> None:
    """Raise a one-line ValueError if `spec` cannot name a reward (no compute, no model load)."""
    if not isinstance(spec, str) or not spec:
        raise ValueError(f"{what}: expected a scorer name, model path or Hub id, got {spec!r}")
    source, remote_code = model_spec(spec)
    if remote_code:  # its own architecture and heads: only the source is checked
        check_model_source(source, what, kind="any")
        return
    if spec in SCORERS:
        check_scorer_installed(spec, what)
        return
    if names_a_function(spec):
        _check_signature(_import_callable(spec, what), spec, what)
        return
    if not Path(spec).exists() and "/" not in spec:  # a Hub id has the form org/name
        known = ", ".join(sorted(SCORERS))
        close = difflib.get_close_matches(spec, list(SCORERS), n=1)
        hint = f"; did you mean '{close[0]}'?" if close else ""
        raise ValueError(
            f"{what}: '{spec}' is neither a registered scorer ({known}) nor a model path{hint}"
        )
    check_model_source(spec, what, kind="seq-cls")
    check_reward_model_dir(spec, what)


class RewardError(FloatingPointError, ValueError):
    """A reward that raised, returned the wrong number of scores or a non-finite score; the
    message names the reward and the first prompt index concerned."""


class Reward:
    """A named reward: `reward(prompts, responses)` returns a float64 array, checked finite."""

    def __init__(self, name: str, fn: ScoreFn, batch_size: int = 512):
        self.name, self.fn, self.batch_size = name, fn, batch_size

    def __call__(self, prompts: Sequence[str], responses: Sequence[str]) -> np.ndarray:
        if len(prompts) != len(responses):
            raise ValueError(f"{self.name}: {len(prompts)} prompts but {len(responses)} responses")
        out = []
        for start in range(0, len(prompts), self.batch_size):
            stop = min(start + self.batch_size, len(prompts))
            try:
                batch = list(self.fn(list(prompts[start:stop]), list(responses[start:stop])))
            except Exception as err:  # a plug-in's own failure, named and located in one line
                first = " ".join(str(err).split())
                raise RewardError(
                    f"reward '{self.name}' raised {type(err).__name__} on prompts {start}-"
                    f"{stop - 1}: {first}"
                ) from None
            if len(batch) != stop - start:
                raise RewardError(
                    f"reward '{self.name}' returned {len(batch)} scores for the {stop - start} "
                    f"responses of prompts {start}-{stop - 1}"
                )
            out.extend(batch)
        try:
            scores = np.asarray(out, dtype=np.float64)
        except (TypeError, ValueError) as err:
            raise RewardError(f"reward '{self.name}' returned non-numbers ({err})") from None
        if scores.shape != (len(prompts),):
            shape = scores.shape
            raise RewardError(f"reward '{self.name}': expected {len(prompts)} scores, got {shape}")
        bad = np.flatnonzero(~np.isfinite(scores))
        if bad.size:
            raise RewardError(
                f"reward '{self.name}' returned {scores[bad[0]]} (non-finite) at prompt index "
                f"{bad[0]} ({bad.size} non-finite in all)"
            )
        return scores

    def matrix(self, prompts: Sequence[str], responses: Sequence[Sequence[str]]) -> np.ndarray:
        """Rewards of responses[p][i] to prompts[p] as a [P, n] array."""
        n = len(responses[0])
        flat_p = [p for p, rs in zip(prompts, responses, strict=True) for _ in rs]
        flat_r = [r for rs in responses for r in rs]
        return self(flat_p, flat_r).reshape(len(prompts), n)


_FIXED_LENGTH = contextvars.ContextVar("fixed_length_scoring", default=None)


@contextlib.contextmanager
def fixed_length_scoring(scores=None):
    """Within the block, a sequence-classifier reward pads every text to its model's context
    length instead of to the longest text of its batch, so that a text's score does not depend
    on which texts are scored beside it (the ensemble engine scores many runs in one batch).
    `scores(model, input_ids, attention_mask)`, if given, computes a GPT-2 model's scores in
    place of fast_gpt2.sequence_scores (another kernel for the same computation)."""
    token = _FIXED_LENGTH.set(scores or True)
    try:
        yield
    finally:
        _FIXED_LENGTH.reset(token)


class SequenceClassifierReward:
    """r(x, y) = the single logit of a sequence-classification model on its chat-formatted text,
    or, for a model with its own code (`+remote_code`), its output's `score` when it has one."""

    def __init__(self, spec: str, device=None):
        # torch and transformers (~1.5 s): params check reward specs with this module
        # (`rmteacher check`), which must not load them
        import torch
        from transformers import AutoModelForSequenceClassification, AutoTokenizer

        spec, remote_code = model_spec(spec)
        self.device = device or default_device()
        self.tokenizer = AutoTokenizer.from_pretrained(spec, trust_remote_code=remote_code)
        if self.tokenizer.pad_token is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        self.tokenizer.truncation_side = "left"  # a text cut to fit keeps the response
        model = AutoModelForSequenceClassification.from_pretrained(
            spec, dtype=torch.float32, **({"trust_remote_code": True} if remote_code else {})
        )
        self.model = model.to(self.device).eval()
        self.remote_code = remote_code
        if self.model.config.num_labels != 1 and not remote_code:
            raise ValueError(
                f"reward model {spec}: has {self.model.config.num_labels} outputs, "
                "expected a one-output reward head"
            )
        self.model.config.pad_token_id = self.tokenizer.pad_token_id

    def format(self, prompt: str, response: str) -> str:
        if self.tokenizer.chat_template:
            messages = [
                {"role": "user", "content": prompt},
                {"role": "assistant", "content": response},
            ]
            return self.tokenizer.apply_chat_template(messages, tokenize=False)
        return f"{prompt} {response}"

    def __call__(self, prompts: Sequence[str], responses: Sequence[str]) -> list[float]:
        import torch  # loaded by __init__ already

        from rmteacher.models import fast_gpt2  # torch at import: see __init__

        texts = [self.format(p, r) for p, r in zip(prompts, responses, strict=True)]
        limit = context_length(self.model.config)  # a text cut to fit keeps its end
        fixed = _FIXED_LENGTH.get() is not None and limit is not None
        enc = self.tokenizer(
            texts,
            return_tensors="pt",
            padding="max_length" if fixed else True,
            padding_side="right",
            add_special_tokens=False,
            truncation=limit is not None,
            max_length=limit,
        ).to(self.device)
        with torch.no_grad():
            if fast_gpt2.supports(self.model):
                scorer = _FIXED_LENGTH.get()
                scorer = scorer if callable(scorer) else fast_gpt2.sequence_scores
                scores = scorer(self.model, enc["input_ids"], enc["attention_mask"])
            else:
                output = self.model(**enc)
                score = getattr(output, "score", None) if self.remote_code else None
                scores = (output.logits if score is None else score).reshape(len(texts), -1)
                scores = scores[:, 0]
        return scores.float().cpu().tolist()


def loads_a_model(spec: str) -> bool:
    """Whether loading the spec loads model weights (a model directory or Hub id), as opposed
    to a registered scorer or a plug-in function."""
    return spec not in SCORERS and not names_a_function(spec)


def load_reward(spec: str, name: str | None = None, what: str = "reward") -> Reward:
    """The reward a spec names (see the module docstring); `name` labels it in tables."""
    check_reward_spec(spec, what)
    if spec in SCORERS:
        fn = SCORERS[spec]()
    elif names_a_function(spec):
        fn = _import_callable(spec, what)
    else:
        fn = SequenceClassifierReward(spec)
    return Reward(
        name or Path(model_spec(spec)[0]).name or spec,
        fn,
        batch_size=128 if isinstance(fn, SequenceClassifierReward) else 4096,
    )


class PromptScaledReward:
    """The paper's perfect-accuracy, low-variance RM: (r_G + shift) multiplied by `factor` on a
    chosen set of prompts. Within each prompt the ranking is r_G's, so every accuracy is 1.

    The shift matters because the RM is normalised globally afterwards: ArmoRM's scores are
    positive, so scaled prompts collapse far from the others and the global std grows, leaving a
    low normalised variance. A centred r_G (VADER) with shift 0 would be rescaled back to about
    r_G's own variance."""

    def __init__(self, base: Reward, scaled_prompts: set[str], factor: float, shift: float = 0.0):
        self.base, self.scaled_prompts = base, set(scaled_prompts)
        self.factor, self.shift = factor, shift

    def __call__(self, prompts: Sequence[str], responses: Sequence[str]) -> np.ndarray:
        scale = np.array([self.factor if p in self.scaled_prompts else 1.0 for p in prompts])
        return (self.base(prompts, responses) + self.shift) * scale
