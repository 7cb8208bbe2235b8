"""uniform: every persona equally likely; the baseline every strategy must beat."""




def uniform(X, k, *, rng, prior=None, attributes=None):
    """``k`` distinct rows, each equally likely (``prior`` is ignored).

    Examples
    --------
    >>> import numpy as np
    >>> X = np.eye(5, dtype=np.float32)
    >>> sorted(uniform(X, 5, rng=np.random.default_rng(0)).tolist())
    [0, 1, 2, 3, 4]
    >>> a = uniform(X, 3, rng=np.random.default_rng(7))
    >>> b = uniform(X, 3, rng=np.random.default_rng(7))
    >>> len(set(a.tolist())), a.tolist() == b.tolist()  # distinct; same seed, same draw
    (3, True)
    """
    return rng.choice(len(X), size=k, replace=False)
