"""The return catalogue as data: stop and close reasons, consent topics, best-interests panel roles and rule,
family-assessment outcomes, durable solutions, ways of hearing a child, plan codes (travel documents, escort
roles, special needs, reception services), country codes and reintegration deadlines. Validated at start-up
against `catalogue.schema.json` and the cross-checks in `voluntary_return.domain.catalogue`. A package so that
the files ship with it."""
