"""Registered spaCy components of samverkan's extraction stage (names prefixed ``samverkan_``).

Importing this package registers the factories and the ``Doc._`` extensions they fill:
``document_date``/``infer_date`` (set before the pipeline runs), ``boilerplate_spans``, ``dates``,
``date_mentions``, ``organisations``, ``org_spans``, ``org_clusters``, ``attendees``, ``people``,
``people_internal``, ``person_spans``, ``meeting``, ``action_points``.
"""

from __future__ import annotations

from spacy.tokens import Doc

_EXTENSIONS = {
    "document_date": None,
    "infer_date": False,
    "boilerplate_spans": None,
    "dates": None,
    "date_mentions": None,
    "organisations": None,
    "org_spans": None,
    "org_clusters": None,
    "attendees": None,
    "people": None,
    "people_internal": None,
    "person_spans": None,
    "meeting": None,
    "action_points": None,
}
for _name, _default in _EXTENSIONS.items():
    if not Doc.has_extension(_name):
        Doc.set_extension(_name, default=_default)

from pipeline.extractors import actions, dates, meeting, orgs, people, segment  # noqa: E402,F401  (registers factories)

COMPONENTS = (
    "samverkan_dates",
    "samverkan_organisations",
    "samverkan_people",
    "samverkan_meeting",
    "samverkan_actions",
)
