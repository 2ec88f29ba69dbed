"""rmteacher: a reproducible companion to Razin et al. (2025), "What Makes a Reward Model a Good
Teacher? An Optimization Perspective"."""

__version__ = "0.1.0"
