"""The kitchen's rules, pure: routing, ticket and job planning, amendments, the expo
roll-up and KDS actions (DESIGN.md §8.1).

No I/O and no clock: callers pass ``now``. Imports only ``protocol``; the broker and the
store client's LAN edge both plan orders here, so an order planned in either place gets
the same tickets and jobs with the same ids. Refusals are :mod:`kitchen.errors`; each
caller maps them to its own answer (422 problem+json, a KDS ``error`` reply).
"""
