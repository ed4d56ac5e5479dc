"""The referral catalogue as data: service types, field sets, coded reasons, deadlines, municipalities and the
per-country child-protection convergence rules, validated at start-up against `catalogue.schema.json` and the
cross-checks in `referral.domain.catalogue`. A package so that the files ship with it."""
