from collections import Counter

from persona_index.generate import ATTRIBUTES, generate, tables


def test_tables_are_wide():
    t = tables()
    assert sum(len(v) for v in t["professions"].values()) >= 200
    assert sum(len(v) for v in t["regions"].values()) >= 60
    assert len(t["regions"]) >= 6 and len(t["age_bands"]) >= 5 and len(t["expertise"]) >= 4


def test_seeded_and_reproducible():
    a = list(generate(50, seed=7))
    assert a == list(generate(50, seed=7))
    assert a != list(generate(50, seed=8))


def _goals_and_pastimes():
    import json
    from pathlib import Path

    import persona_index

    t = json.loads((Path(persona_index.__file__).parent / "data" / "pool_tables.json").read_text())
    return t["goals"] + t["hobbies"]


GOALS_AND_PASTIMES = _goals_and_pastimes()


def test_attributes_match_the_text_and_count_two_to_four():
    for p in generate(500, seed=1):
        text = p["persona"]
        assert set(ATTRIBUTES) <= set(p)
        assert p["profession"].lower() in text.lower()
        if p["country"]:
            assert p["country"] in text and p["region"]
        named = sum(p[a] is not None for a in ("country", "age_band", "expertise"))
        low = text.lower()
        goal_or_pastime = any(g[4:].lower() in low for g in GOALS_AND_PASTIMES)
        # the profession plus one to four of country, age, expertise and a
        # goal or pastime (README), never a template slot left unfilled
        assert 1 <= named + goal_or_pastime <= 4, (text, named, goal_or_pastime)
        # and every attribute it carries is one the text names (a stratum never
        # claims what the text does not say)
        t = tables()
        if p["age_band"]:
            forms = t["age_bands"][p["age_band"]]
            assert any(f.lower() in low for f in forms["pre"] + forms["post"]), (text, p["age_band"])
        if p["expertise"]:
            assert any(w.lower() in low for w in t["expertise"][p["expertise"]]), (text, p["expertise"])
        assert "{" not in text and "  " not in text


def test_varied_enough_that_repeats_are_rare():
    texts = [p["persona"] for p in generate(5000, seed=3)]
    assert len(set(texts)) / len(texts) > 0.99
    # the leading phrase is not one template repeated
    starts = Counter(t.split()[0] for t in texts)
    assert starts.most_common(1)[0][1] / len(texts) < 0.6
