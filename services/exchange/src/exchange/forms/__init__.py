"""The form catalogue as data: one YAML file per form type in `types/`, the labels of every field and code in
`labels.yaml`, both validated at start-up (`form-type.schema.json`, `labels.schema.json` and the rules in
`exchange.domain.catalogue`). A package so that the files ship with it."""
