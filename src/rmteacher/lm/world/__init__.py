"""The offline language world: corpus, tokenizer, base LM and its pretraining, supervised
fine-tuning, sampling, the prompt splits and the extra initial policies of Section 4.2."""
