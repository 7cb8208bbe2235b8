"""An audit of generated outputs by persona group (``outputs-report --by ATTR``).

Per stratum of an attribute:

* the count and the mean coherence (persona . response cosine);
* the output Vendi score against equal-size random subsets of all outputs
  (``z`` below about -2 flags collapse: the stratum's outputs are much less
  diverse than any group of that size);
* the words most over-represented in the stratum's responses against the
  rest: weighted log-odds with an informative Dirichlet prior (Monroe,
  Colaresi & Quinn 2008, "Fightin' words", eq. 22-24), with z-scores. The
  prior is the pooled word counts of all responses (``alpha_w = prior_scale x
  count_w``), which shrinks rare words toward no difference.
"""

from __future__ import annotations

import re
from collections import Counter
from typing import Sequence

import numpy as np

from .metrics import vendi_score

WORD = re.compile(r"\w+", re.UNICODE)


def words(text: str) -> list[str]:
    """Lower-cased word tokens (Unicode letters and digits).

    Examples
    --------
    >>> words("Hello, World! Привет 42")
    ['hello', 'world', 'привет', '42']
    """
    return WORD.findall(text.lower())


def log_odds(group: Counter, rest: Counter, prior: Counter, *, prior_scale: float = 1.0,
             top: int = 10, min_count: int = 2) -> list[dict]:
    """Weighted log-odds of each word in ``group`` against ``rest`` with an
    informative Dirichlet prior ``alpha_w = prior_scale * prior[w]``; the ``top``
    words by z (at least ``min_count`` times in the group), each with its
    count, log-odds ``delta`` and ``z = delta / sqrt(1/(y_i+a_w) + 1/(y_j+a_w))``.

    Examples
    --------
    "zebra" is in every row of the group and nowhere else:

    >>> g = Counter({"zebra": 20, "the": 40}); r = Counter({"the": 40, "cat": 20})
    >>> top = log_odds(g, r, g + r)
    >>> top[0]["word"], top[0]["z"] > 3, [t["word"] for t in top]
    ('zebra', True, ['zebra', 'the'])
    """
    a = {w: prior_scale * c for w, c in prior.items()}
    a0 = sum(a.values())
    n_i, n_j = sum(group.values()), sum(rest.values())
    out = []
    for w, y_i in group.items():
        if y_i < min_count:
            continue
        aw = a.get(w, 0.0)
        if aw <= 0:
            continue
        y_j = rest.get(w, 0)
        d = (np.log((y_i + aw) / (n_i + a0 - y_i - aw))
             - np.log((y_j + aw) / (n_j + a0 - y_j - aw)))
        var = 1.0 / (y_i + aw) + 1.0 / (y_j + aw)
        out.append({"word": w, "count": int(y_i), "delta": float(d), "z": float(d / np.sqrt(var))})
    out.sort(key=lambda e: (-e["z"], e["word"]))
    return out[:top]


def vendi_vs_random(O: np.ndarray, members: np.ndarray, *, draws: int = 50, seed=0) -> dict:
    """The Vendi score of ``O[members]`` against ``draws`` random subsets of
    ``O`` of the same size: the subsets' mean and sd, z, and the share of
    subsets at or below it.

    Examples
    --------
    Ten copies of one output among 40 spread ones: Vendi 1, far below random:

    >>> rng = np.random.default_rng(0)
    >>> O = rng.standard_normal((50, 16)); O[:10] = O[0]
    >>> O = (O / np.linalg.norm(O, axis=1, keepdims=True)).astype(np.float32)
    >>> v = vendi_vs_random(O, np.arange(10))
    >>> round(v["vendi"], 3), v["z"] < -2, v["share_random_at_or_below"]
    (1.0, True, 0.0)
    """
    rng = np.random.default_rng(seed)
    m = len(members)
    v = vendi_score(O[members])
    R = np.array([vendi_score(O[rng.choice(len(O), m, replace=False)]) for _ in range(draws)])
    sd = R.std()
    return {"vendi": v, "random_mean": float(R.mean()), "random_sd": float(sd),
            "z": float((v - R.mean()) / sd) if sd > 0 else 0.0,
            "share_random_at_or_below": float((R <= v + 1e-12).mean())}


def audit(responses: Sequence[str], O: np.ndarray, strata: Sequence, *,
          coherence: np.ndarray | None = None, top: int = 10, draws: int = 50,
          prior_scale: float = 1.0, seed=0) -> list[dict]:
    """One entry per stratum (see the module docstring), largest first.

    Parameters
    ----------
    responses : the response texts; O : (n, d) their unit embeddings;
    strata : length-n stratum labels (None: "(none)");
    coherence : length-n coherence scores, optional.

    Examples
    --------
    >>> from persona_index.embed import HashEmbedder
    >>> texts = [f"a tale about the sea {i}" for i in range(6)] + [f"plain reply {i}" for i in range(6)]
    >>> O = HashEmbedder(32).encode(texts)
    >>> rows = audit(texts, O, ["sailor"] * 6 + ["clerk"] * 6, draws=10)
    >>> [r["stratum"] for r in rows], sorted(w["word"] for w in rows[1]["words"])
    (['clerk', 'sailor'], ['a', 'about', 'sea', 'tale', 'the'])
    """
    labels = np.array(["(none)" if s is None else str(s) for s in strata], dtype=object)
    counts = [Counter(words(t)) for t in responses]
    total = Counter()
    for c in counts:
        total.update(c)
    out = []
    uniq, sizes = np.unique(labels.astype(str), return_counts=True)
    for lab in sorted(uniq, key=lambda u: (-sizes[list(uniq).index(u)], u)):
        members = np.flatnonzero(labels == lab)
        group = Counter()
        for i in members:
            group.update(counts[i])
        rest = total - group
        e = {"stratum": str(lab), "count": int(len(members)),
             "mean_coherence": None if coherence is None else float(np.mean(coherence[members])),
             "output_vendi": vendi_vs_random(O, members, draws=draws, seed=seed) if len(members) < len(O) else None,
             "words": log_odds(group, rest, total, prior_scale=prior_scale, top=top)}
        out.append(e)
    return out


def compare_arms(O_persona: np.ndarray, O_control: np.ndarray, *, subsamples: int = 200,
                 share: float = 0.8, seed=0) -> dict:
    """Persona-conditioned outputs against the control arm (same template, no
    persona): output Vendi, mean pairwise distance and PCA-4 quartile cell
    coverage (grid fitted on both arms), each as persona minus control on
    ``subsamples`` equal-size subsamples (``share`` of the smaller arm, without
    replacement, from each arm), with the mean difference and its 2.5-97.5%
    interval; and a one-line verdict from the Vendi and cell intervals.

    Examples
    --------
    Spread persona outputs against a control that repeats two replies:

    >>> rng = np.random.default_rng(0)
    >>> P = rng.standard_normal((60, 16)); C = np.repeat(rng.standard_normal((2, 16)), 30, axis=0)
    >>> P, C = [(A / np.linalg.norm(A, axis=1, keepdims=True)).astype(np.float32) for A in (P, C)]
    >>> r = compare_arms(P, C + 0.0, subsamples=50)
    >>> r["vendi"]["low"] > 0, r["verdict"].startswith("personas raised output coverage")
    (True, True)
    """
    from .metrics import CellGrid, mean_pairwise_distance

    rng = np.random.default_rng(seed)
    grid = CellGrid(np.vstack([O_persona, O_control]))
    m = max(2, int(share * min(len(O_persona), len(O_control))))
    fns = {"vendi": vendi_score, "mean_pairwise_distance": mean_pairwise_distance,
           "cell_coverage": lambda X: grid.coverage(X)[0]}
    D = {k: [] for k in fns}
    for _ in range(subsamples):
        a = O_persona[rng.choice(len(O_persona), m, replace=False)]
        b = O_control[rng.choice(len(O_control), m, replace=False)]
        for k, f in fns.items():
            D[k].append(f(a) - f(b))
    out = {"persona_rows": int(len(O_persona)), "control_rows": int(len(O_control)),
           "subsample_size": m, "subsamples": subsamples}
    for k, d in D.items():
        d = np.asarray(d)
        out[k] = {"persona": float(fns[k](O_persona)), "control": float(fns[k](O_control)),
                  "difference": float(d.mean()), "low": float(np.quantile(d, 0.025)),
                  "high": float(np.quantile(d, 0.975))}
    v, c = out["vendi"], out["cell_coverage"]
    if v["low"] > 0 and c["low"] >= 0:
        verdict = "personas raised output coverage for this task and model"
    elif v["high"] < 0 and c["high"] <= 0:
        verdict = "personas lowered output coverage for this task and model"
    else:
        verdict = "no clear difference in output coverage between personas and the control"
    out["verdict"] = (f"{verdict} (output Vendi {v['persona']:.1f} vs {v['control']:.1f}; "
                      f"difference at {m} rows {v['difference']:+.2f}, 95% "
                      f"[{v['low']:+.2f}, {v['high']:+.2f}])")
    return out
