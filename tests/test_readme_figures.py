"""Every figure in a generated section (README.md and docs/) is what its results file gives."""

import re

import pytest

from benchmarks import readme


def test_generated_sections_match_their_results():
    assert readme.rewrite_all(check=True) == []


def test_the_readme_and_the_docs_hold_generated_sections():
    with_blocks = [p for p in readme.pages() if readme.BLOCK.search(p.read_text(encoding="utf-8"))]
    assert readme.ROOT / "README.md" in with_blocks
    assert any(p.parent.name == "docs" for p in with_blocks), "no docs page has a generated section"


@pytest.mark.parametrize("page", readme.pages(), ids=lambda p: str(p.relative_to(readme.ROOT)))
def test_a_figure_edited_by_hand_is_caught(tmp_path, page):
    text = page.read_text(encoding="utf-8")
    blocks = list(readme.BLOCK.finditer(text))
    if not blocks:
        pytest.skip("no generated sections on this page")
    for m in blocks:
        body = m.group("body")
        digit = re.search(r"\d", body)
        assert digit, m.group("name")
        i = m.start("body") + digit.start()
        edited = text[:i] + str((int(text[i]) + 1) % 10) + text[i + 1:]
        copy = tmp_path / page.name
        copy.write_text(edited, encoding="utf-8")
        # the results paths are relative to the repository root
        assert readme.rewrite(copy, check=True) == [m.group("name")]
        readme.rewrite(copy)  # and the rewrite restores it
        assert copy.read_text(encoding="utf-8") == text
