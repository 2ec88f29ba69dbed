"""The offline language world of Section 4.1: corpus, tokenizer, tiny GPT-2 policies, sampling,
supervised fine-tuning, reward-model training and RLOO."""
