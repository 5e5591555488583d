"""The differentiable ops, one ``Function`` subclass each; ``minprune.functional`` wraps them."""
