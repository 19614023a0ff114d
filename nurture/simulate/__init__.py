"""`nurture simulate`: a dry run of campaigns over synthetic or given leads, on a virtual clock.

The real decision core (`nurture.engine.decide`) runs every step; the
simulator plays the database, the scheduler, the tracking service and the
leads around it. Modules, one job each:

- `leads`: synthetic B2B profiles from a seed, or a CSV file of leads;
- `behaviour`: how leads react to a touch (opens, clicks, replies, events);
- `graphs`: what the simulator reads off compiled campaigns before it runs;
- `trace`: which steps one `decide` call ran;
- `model`: the settings, and the loop's records of leads, enrollments, campaigns;
- `agenda`: the loop's wake-ups in time order;
- `scores`: each lead's scores kept current as events arrive and decay;
- `handoff`: MQLs routed to simulated sales, and the SLA clock, on the virtual clock;
- `run`: the event loop on a virtual clock (set-up, the agenda played, the report), over
  `enrolling` (what a change to a lead sets off: enrollments, triggers, nudges),
  `happenings` (arrivals, events, the MQL, sweeps, segment checks) and `decisions`
  (`decide` called, its steps counted, its actions done);
- `shards`: `--jobs`, the leads in shares across processes;
- `scripted`: a test's scripted leads through the same loop (`nurture test`);
- `report`: the counters and the report built from them;
- `render`: the report as Rich tables.
"""

from __future__ import annotations

from nurture.simulate.behaviour import Behaviour, Rates
from nurture.simulate.leads import Profile, ProfileError, load_profile, synthetic_leads
from nurture.simulate.model import START, Settings
from nurture.simulate.render import render
from nurture.simulate.run import Simulation, simulate

__all__ = [
    "START",
    "Behaviour",
    "Profile",
    "ProfileError",
    "Rates",
    "Settings",
    "Simulation",
    "load_profile",
    "render",
    "simulate",
    "synthetic_leads",
]
