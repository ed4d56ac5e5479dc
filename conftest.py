# Session fixtures for the real servers (kafka, mongo, keycloak) live in the local-stack package.
pytest_plugins = ["devstack.pytest_plugin"]
