"""What every process of a service reads at start, the same way in its API, relay, consumers and scheduler: the
first part of each service's `bootstrap.build_runtime`, which then wires its own catalogue and Deps on it.

In this order, so that a process of a broken deployment stops before it serves anything: the settings from the
environment (plumbing.config.Settings), the platform configuration (invalid: ConfigError), the keys (local mode:
generated where missing; elsewhere every ring the configuration names is required, KeyConfigurationError), the
field cipher over them, the Mongo connection (registered: no network until the first operation), the clock and the
access log (THB_ACCESS_LOG_MONGODB_URI names a separate audit store; by default the service's own database).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from plumbing import mongo
from plumbing.access_log import AccessLog
from plumbing.clock import Clock, SystemClock
from plumbing.config import PlatformConfig, Settings, load_platform_config
from plumbing.crypto import FieldCipher
from plumbing.keys import KeySet, load_keys

# (settings, configuration) -> the process's key set: plumbing.keys.load_keys, or a service's own loader that adds
# rings (plumbing.country_keys.load_keys_with_country_keys)
KeyLoader = Callable[[Settings, PlatformConfig], KeySet]


@dataclass(frozen=True)
class Startup:
    """A process of `service` as it started (`Startup.read`)."""

    service: str
    environ: Mapping[str, str]  # what the settings were read from: the token validator reads it too
    settings: Settings
    config: PlatformConfig
    keys: KeySet
    cipher: FieldCipher
    clock: Clock
    access_log: AccessLog

    @classmethod
    def read(
        cls,
        service: str,
        environ: Mapping[str, str] | None = None,
        clock: Clock | None = None,
        *,
        keys: KeyLoader = load_keys,
    ) -> Startup:
        """The start of a process of `service` from `environ` (default: os.environ); `clock` None: the system
        clock (a test's or a retention drill's fixed instant otherwise)."""
        env = os.environ if environ is None else environ
        settings = Settings.from_env(service, env)
        config = load_platform_config(settings.config_path)
        key_set = keys(settings, config)
        cipher = FieldCipher.from_config(key_set, config)
        mongo.connect(settings)
        clock = clock or SystemClock()
        access_log_db = mongo.get_database(mongo.access_log_alias(settings, env))
        access_log = AccessLog(access_log_db, clock, purposes=config.purpose_codes)
        return cls(service, env, settings, config, key_set, cipher, clock, access_log)
