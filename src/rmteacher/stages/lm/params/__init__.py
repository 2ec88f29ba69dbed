"""One parameter module per stage: its documented, validated params class and nothing heavy
(`rmteacher check` imports them all without loading torch)."""
