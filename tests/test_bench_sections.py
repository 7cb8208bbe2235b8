"""The benchmark command's section registry: ``SECTIONS = {name: runner}``."""

import json

from benchmarks import sections as S
from benchmarks.__main__ import main


def test_sections_run_in_registration_order_and_data_sections_skip_without_data(tmp_path, monkeypatch):
    ran = []
    for name in ("dedup", "faults", "synth"):  # dedup needs --data; the others do not
        monkeypatch.setitem(S.SECTIONS, name, S.Section(
            lambda run, name=name: (ran.append(name), run.res.__setitem__("fake_" + name, {"ok": 1})),
            S.SECTIONS[name].data))
    out = tmp_path / "r"
    assert main(["--sections", "faults", "dedup", "synth", "--data", "", "--out", str(out)]) == 0
    assert ran == ["synth", "faults"]  # the dict's order, not the command line's; dedup skipped
    res = json.loads((out / "results.json").read_text())
    assert res["fake_faults"] == {"ok": 1} and "fake_dedup" not in res
    assert res["provenance"]["synth"]["command"].endswith("--sections faults dedup synth")


def test_every_section_named_on_the_command_line_is_registered():
    assert list(S.SECTIONS)[:2] == ["sampler", "curation"]
    assert {"default", "ray-default", "default-shared", "scale7", "newuser", "scale", "faults"} <= set(S.SECTIONS)
    assert all(callable(sec.run) for sec in S.SECTIONS.values())
    assert {n for n, sec in S.SECTIONS.items() if sec.data} == {
        "sampler", "curation", "dedup", "embedders", "latency", "default-shared"}
