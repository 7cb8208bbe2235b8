"""uniform: every persona equally likely; the baseline every strategy must beat."""


from .base import register


@register("uniform", "every persona equally likely (the baseline)")
def uniform(X, k, *, rng, prior=None, attributes=None):
    return rng.choice(len(X), size=k, replace=False)
