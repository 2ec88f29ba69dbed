"""Reward functions by name or path (the ground truth r_G and proxy RMs) and their normalisation."""
