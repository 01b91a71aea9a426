"""
Keep the secrets of client configurations out of logs, error messages and status output.

A property is secret by its name (``sasl.password``, ``ssl.key.password``,
``sasl.oauthbearer.client.secret``, ``basic.auth.user.info``...), whatever its value: the one
rule every log line and error built from a client configuration goes through.
"""

import re

# librdkafka's and SchemaRegistryClient's secret-bearing property names end like this. A name
# matched wrongly only hides a value; a name missed would leak one, so the rule errs wide.
SECRET_PROPERTY = re.compile(
    r"(password|passphrase|secret|user\.info|key\.pem|token|oauthbearer\.config|jaas\.config)$", re.IGNORECASE
)
MASK = "[redacted]"
# ``scheme://user:password@host``: the registry URL may carry its credentials.
URL_CREDENTIALS = re.compile(r"(?<=://)[^/@\s]+@")


def is_secret(name: str) -> bool:
    return bool(SECRET_PROPERTY.search(str(name)))


def redacted(config: dict) -> dict:
    """``config`` with every secret value masked, for a log line."""
    return {name: MASK if is_secret(name) else value for name, value in config.items()}


def without_secrets(text: str, config: dict) -> str:
    """``text`` (a client's error message) with every secret value of ``config`` and URL credentials masked."""
    for name, value in config.items():
        if is_secret(name) and isinstance(value, str) and value:
            # Longest first: "user:password" as a whole, then its password on its own.
            for secret in (value, value.partition(":")[2]) if name.endswith("user.info") else (value,):
                if secret:
                    text = text.replace(secret, MASK)
    return URL_CREDENTIALS.sub(f"{MASK}@", text)
