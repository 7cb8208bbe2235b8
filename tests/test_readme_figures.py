"""Every figure in a generated README section is what its results file gives."""

import re
import shutil

from benchmarks import readme


def test_readme_sections_match_their_results():
    assert readme.rewrite(check=True) == []


def test_a_figure_edited_by_hand_is_caught(tmp_path):
    text = readme.ROOT.joinpath("README.md").read_text(encoding="utf-8")
    blocks = list(readme.BLOCK.finditer(text))
    assert blocks, "the README has no generated sections"
    for m in blocks:
        body = m.group("body")
        digit = re.search(r"\d", body)
        assert digit, m.group("name")
        i = m.start("body") + digit.start()
        edited = text[:i] + str((int(text[i]) + 1) % 10) + text[i + 1:]
        copy = tmp_path / "README.md"
        copy.write_text(edited, encoding="utf-8")
        # the results paths are relative to the repository root
        assert readme.rewrite(copy, check=True) == [m.group("name")]
        readme.rewrite(copy)  # and the rewrite restores it
        assert copy.read_text(encoding="utf-8") == text
