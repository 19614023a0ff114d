"""The handoff to sales: routing an MQL to an owner, the SLA clock, sales' answers.

- `route`: the pure choice of an owner from the routing rules, the lead and the desk
  (who is away, who has how many leads, round robin turns); no database, no clock;
- `assign`: the database side of an assignment, in the MQL's own transaction;
- `sla`: the scheduler's sweep that reassigns or escalates MQLs nobody accepted in time;
- `answers`: sales accept, return, report stages and set themselves away.

Modules are imported by name; this package imports none of them, so the store may
use `assign` without importing the rest.
"""
