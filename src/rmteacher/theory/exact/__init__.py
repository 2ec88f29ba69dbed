"""Policies, gradients, gradient flow, bounds and the paper's constructions, computed exactly.

Everything here is computed by enumerating a small output space, so expectations, variances and
gradients are exact (no sampling). Notation follows Razin et al. (2025): S prompts, Y outputs,
r_RM the proxy reward, r_G the ground truth, lambda the KL weight.
"""
