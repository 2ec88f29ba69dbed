"""Model code shared by the rewards and the language-model track: the fast GPT-2 forward and
sampling path."""
