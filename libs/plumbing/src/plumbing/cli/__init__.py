"""Command-line entry points of the plumbing (`python -m plumbing.cli.<name>`)."""
