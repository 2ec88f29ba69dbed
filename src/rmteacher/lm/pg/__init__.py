"""Policy gradient on a normalised reward (RLOO and GRPO through trl), evaluation during training,
and sweeps of tracked runs."""
