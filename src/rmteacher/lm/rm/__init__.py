"""Reward models of the language track: preference pairs, Bradley-Terry training, and measuring
RMs on a policy's own samples (Table 1)."""
