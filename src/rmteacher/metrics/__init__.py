"""Sample-based reward-model metrics: accuracy, reward variance, correlations."""
