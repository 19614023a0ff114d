"""Store-level services: deploys, scores, lifecycle and MQLs, on a SQLAlchemy session.

Each function takes the session and the time (`now`, `at`) from its caller
and never reads a clock; the caller owns the transaction and commits. Modules:

- `definitions`: what is deployed and active (campaign versions, scoring, routing, segments);
- `deploy`: store a checked program as new versions, optionally moving enrollments;
- `views`: rows as the pure core sees them (`LeadView`, `Event`);
- `scoring`: rescore a lead, record an event and apply the MQL rule;
- `lifecycle`: stage transitions, `mark_mql` (once), returning a lead to nurture;
- `funnel_firsts`: each lead's stage changes summed up in one row, kept with them;
- `cleaning`, `leads`, `merging`: leads in (normalise and clean, store, merge duplicates).
"""

from __future__ import annotations

from nurture.store.definitions import (
    active_routing,
    active_scoring,
    active_segments,
    current_graph,
    current_version,
)
from nurture.store.deploy import DeployError, Item, Outcome, StepMap, deploy, items_of
from nurture.store.lifecycle import (
    LifecycleError,
    history,
    mark_mql,
    return_to_nurture,
    transition,
)
from nurture.store.scoring import Recorded, Rules, record_event, rescore
from nurture.store.views import UnknownLead, lead_view

__all__ = [
    "DeployError",
    "Item",
    "LifecycleError",
    "Outcome",
    "Recorded",
    "Rules",
    "StepMap",
    "UnknownLead",
    "active_routing",
    "active_scoring",
    "active_segments",
    "current_graph",
    "current_version",
    "deploy",
    "history",
    "items_of",
    "lead_view",
    "mark_mql",
    "record_event",
    "rescore",
    "return_to_nurture",
    "transition",
]
