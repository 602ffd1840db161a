"""One validated ``Settings`` object, built once from YAML and the environment.

Precedence, lowest first: built-in defaults, the YAML file, ``MONITOR_<KEY>`` variables
(``__`` separates nested keys: ``MONITOR_POLL__CONCURRENCY=5``). ``${VAR}`` and
``${VAR:-default}`` inside YAML string values are expanded from the environment, so
secrets stay out of the file. A variable a channel uses (its password, secret or URLs)
may be unset: the settings load, so that commands that only read the archive run
without secrets, and ``require_secrets`` refuses the channel to commands that send.
Any other problem becomes a ``ConfigError`` whose message is
one line naming the key.

Relative paths — the file of an SQLite ``database_url``, ``seeds_dir`` and
``alerts.email.ca_file`` — are taken from the directory of the file that gives them, so
a configuration means the same database whatever directory the command runs in (the
shipped ``config/monitor.yaml`` says ``sqlite:///../data/monitor.db``: the project's
``data/``). A relative path given by a ``MONITOR_*`` variable is taken from the current
directory, as any path typed in a shell is, and so are the built-in defaults
(``sqlite:///data/monitor.db``, ``seeds``), which apply when neither gives the key.

Nothing here reads the environment implicitly: ``load_settings`` takes the mapping to
read, and callers pass ``os.environ`` once, at the edge (the CLI).
"""

from monitor.config.channels import (
    AlertSettings,
    AppriseSettings,
    EmailSettings,
    WebhookSettings,
    unnamed_webhook_key,
)
from monitor.config.loading import (
    DEFAULT_CONFIG_PATH,
    ENV_NOT_KEYS,
    ENV_PREFIX,
    load_settings,
    require_secrets,
    resolve_config_path,
)
from monitor.config.schema import (
    DEFAULT_ENTITIES,
    DedupSettings,
    EntityConfig,
    FeedConfig,
    PollSettings,
    RuleConfig,
    ServeSettings,
    Settings,
)
from monitor.config.values import MAX_DURATION, MAX_DURATION_TEXT, parse_duration

__all__ = [
    "DEFAULT_CONFIG_PATH",
    "DEFAULT_ENTITIES",
    "ENV_NOT_KEYS",
    "ENV_PREFIX",
    "MAX_DURATION",
    "MAX_DURATION_TEXT",
    "AlertSettings",
    "AppriseSettings",
    "DedupSettings",
    "EmailSettings",
    "EntityConfig",
    "FeedConfig",
    "PollSettings",
    "RuleConfig",
    "ServeSettings",
    "Settings",
    "WebhookSettings",
    "load_settings",
    "parse_duration",
    "require_secrets",
    "resolve_config_path",
    "unnamed_webhook_key",
]
