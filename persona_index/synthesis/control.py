"""The control arm of a run: the same template, no persona.

``synthesize(..., control=N)`` (``--control N``) adds N requests per
template whose persona slot holds :data:`CONTROL_PERSONA`, a neutral line,
instead of a persona: the concept note's "fixed prompt template". The
persona-conditioned outputs are then compared with these by
``outputs-report`` (:func:`persona_index.audit.compare_arms`).

Why a neutral line and not the template with the persona block cut out: the
prompt keeps the same frame, wording and length as a persona prompt (the
presets say "this person" after the block: without it they point at no
one), so the one thing that differs between the arms is who the persona is.
Other slots and ``text+attrs`` attributes render ``unspecified``, as for a
persona that lacks them. Request ``i`` of the N is sent with index ``i``
(the seed ``SEED + i`` under ``--seed``), as the ``--n`` requests of a
persona are.

Control rows carry ``"arm": "control"``, ``persona_id`` and ``persona``
null, and ``custom_id`` ``control:<template>:<i>``. They stay out of the
coherence filter (``outputs-report``, ``curate --coherence``) and out of
the curation of ``--oversample``.
"""

from __future__ import annotations

from typing import Sequence

from ..errors import InvalidQueryError

#: what fills the persona slot of a control request
CONTROL_PERSONA = "a typical user"
#: the persona row of a control request (``id`` None: no persona)
CONTROL_ROW = {"id": None, "text": CONTROL_PERSONA, "arm": "control"}


def control_id(template_name: str, i: int) -> str:
    """The ``custom_id`` of control request ``i`` of a template.

    Examples
    --------
    >>> control_id("tool", 0), control_id("tool", 3)
    ('control:tool:0', 'control:tool:3')
    """
    return f"control:{template_name}:{i}"


def is_control(persona) -> bool:
    """Whether a job's persona row is the control's.

    Examples
    --------
    >>> is_control(CONTROL_ROW), is_control({"id": "p1", "text": "a nurse"})
    (True, False)
    """
    return isinstance(persona, dict) and persona.get("arm") == "control" and \
        persona.get("id") is None


def control_jobs(templates: Sequence, count: int, taken: set = frozenset()) -> list:
    """``count`` control jobs per template (unique names, first kept), as
    :func:`persona_index.synthesis.run.plan_jobs` lists jobs: (persona row,
    template, index, custom_id). ``taken`` holds the persona jobs' ids: a
    persona whose id makes one of them is refused.

    Examples
    --------
    >>> from persona_index.synthesis.templates import Template
    >>> jobs = control_jobs([Template("ask", "Ask as {persona}")], 2)
    >>> [(j[2], j[3]) for j in jobs], jobs[0][1].render(jobs[0][0])
    ([(0, 'control:ask:0'), (1, 'control:ask:1')], 'Ask as "a typical user"')
    >>> control_jobs([Template("ask", "x {persona}")], 2, taken={"control:ask:1"})
    Traceback (most recent call last):
    ...
    persona_index.errors.InvalidQueryError: a persona's custom_id 'control:ask:1' is a control row's (a persona with the id 'control'?); rename it or give control=0
    """
    if isinstance(count, bool) or not isinstance(count, int) or count < 0:
        raise InvalidQueryError(f"control must be a whole number >= 0, not {count!r}")
    names: dict = {}
    for t in templates:
        names.setdefault(t.name, t)
    jobs = [(dict(CONTROL_ROW), t, i, control_id(name, i))
            for name, t in names.items() for i in range(count)]
    clash = next((j[3] for j in jobs if j[3] in taken), None)
    if clash:
        raise InvalidQueryError(f"a persona's custom_id {clash!r} is a control row's (a persona "
                                "with the id 'control'?); rename it or give control=0")
    return jobs
