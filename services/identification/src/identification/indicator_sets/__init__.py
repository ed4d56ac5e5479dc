"""Versioned indicator sets (YAML data and their JSON Schema); a package so the files ship with it."""
