"""The return domain: assisted voluntary return as a pure model and rules, no I/O (the catalogue is read once at
start-up).

- `lifecycle`: states, actions, the transition table, timeline entries;
- `case`: `ReturnCase` and `step` (every transition but plan approval), `withdraw_consent`;
- `subject`: who is treated as a child;
- `consent`: an adult's informed consent and its withdrawal;
- `best_interests`: family assessment, best-interests assessment, the panel's determination;
- `child_gate`: no return for a child without a determination in favour of return (`require_clearance`);
- `plan`: the return plan and `approve_plan`, the only way to an approved plan;
- `deadlines`: reintegration plan and follow-up reports after reception;
- `statistics`: one row of codes, counts and instants per case;
- `catalogue`, `errors`, `shape`: the coded data, the errors with stable codes, strict reading of bodies.
"""
