"""The differentiable ops, one ``Function`` subclass each; ``minprune.autograd.functional`` wraps
them."""
