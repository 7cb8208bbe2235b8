"""Progress bars (issue #23 item 8): nothing for quick work, and once shown,
a redraw at least every interval even while the counter stands still."""

from __future__ import annotations

import io
import time

from persona_index.progress import progress_bar, ticks


def test_a_shown_bar_redraws_while_the_work_stands_still(monkeypatch):
    err = io.StringIO()
    monkeypatch.setattr("sys.stderr", err)
    with progress_bar(10, "still", delay=0.0, interval=0.05) as bar:
        seen = ticks(bar)
        time.sleep(0.6)  # one long step: the counter does not move
        bar.update(10)
    gaps = [b - a for a, b in zip(seen, seen[1:])]
    assert len(seen) >= 5 and max(gaps) < 0.05 * 4
    assert "still" in err.getvalue()
    assert err.getvalue().endswith("\n")  # the next message starts on its own line


def test_quick_work_draws_nothing(monkeypatch):
    err = io.StringIO()
    monkeypatch.setattr("sys.stderr", err)
    with progress_bar(3, "quick", delay=5.0, interval=0.01) as bar:
        seen = ticks(bar)
        time.sleep(0.1)
        bar.update(3)
    assert seen == [] and err.getvalue() == ""


def test_tag_shows_its_stages_on_stderr(tmp_path, monkeypatch):
    from persona_index import PersonaIndex
    from persona_index import progress as P
    from persona_index.embed import HashEmbedder
    from persona_index.tagging import tag

    idx = PersonaIndex(tmp_path / "p.lance", HashEmbedder(dim=16))
    idx.add([{"text": f"persona {i}"} for i in range(50)])
    monkeypatch.setattr(P, "DELAY", 0.0)
    err = io.StringIO()
    monkeypatch.setattr("sys.stderr", err)
    orig = P.progress_bar
    monkeypatch.setattr(P, "progress_bar",
                        lambda *a, **k: orig(*a, **{**k, "delay": 0.0, "interval": 0.01}))
    out = tag(idx, "field", ["medicine", "craft"], progress=True)
    assert out["tagged"] == 50 and "tag" in err.getvalue()
    err2 = io.StringIO()
    monkeypatch.setattr("sys.stderr", err2)
    tag(idx, "field", ["medicine", "craft"], replace=True)  # progress off by default
    assert err2.getvalue() == ""
