"""The environment a grader and its children run with: an allowlist, and never a secret."""

from __future__ import annotations

import re
from collections.abc import Mapping

__all__ = ["clean_environ", "is_secret", "secret_names"]

#: Variable names that look like credentials, whatever their prefix.
SECRET_NAME = re.compile(r"KEY|TOKEN|SECRET|PASSW|CREDENTIAL|AUTH|COOKIE|SESSION|PRIVATE|CERT_PASS", re.IGNORECASE)
#: Prefixes of services whose variables are dropped wholesale.
SECRET_PREFIXES = (
    "OPENAI_", "AZURE_", "AWS_", "GOOGLE_", "GCP_", "GCLOUD_", "GH_", "GITHUB_", "GITLAB_", "HF_",
    "HUGGING", "ANTHROPIC_", "COHERE_", "MISTRAL_", "SSH_", "GPG_", "NPM_", "PYPI_", "TWINE_",
    "DOCKER_", "VAULT_", "DATABASE_", "REDIS_", "PG", "MYSQL_", "SLACK_", "STRIPE_",
)
#: Variables kept for the grader and its children (everything else is dropped).
KEEP_NAMES = frozenset({
    "PATH", "HOME", "USER", "LOGNAME", "SHELL", "LANG", "LANGUAGE", "TERM", "TZ", "TMPDIR", "TEMP",
    "TMP", "COLUMNS", "LINES", "NO_COLOR", "FORCE_COLOR", "VIRTUAL_ENV", "LD_LIBRARY_PATH",
    "SSL_CERT_FILE", "SSL_CERT_DIR", "MPLBACKEND", "MPLCONFIGDIR", "TIKTOKEN_CACHE_DIR",
    "DATA_GYM_CACHE_DIR", "PYTHONHASHSEED", "PYTHONIOENCODING", "PYTHONUTF8", "PYTHONDONTWRITEBYTECODE",
})
KEEP_PREFIXES = ("LC_", "XDG_", "LABKIT_")
#: Allowed despite matching SECRET_NAME (they name folders, not secrets).
NOT_SECRET = frozenset({"TIKTOKEN_CACHE_DIR", "DATA_GYM_CACHE_DIR"})


def is_secret(name: str) -> bool:
    """Whether an environment variable name looks like it holds a credential."""
    upper = name.upper()
    return upper not in NOT_SECRET and (bool(SECRET_NAME.search(upper)) or upper.startswith(SECRET_PREFIXES))


def secret_names(env: Mapping[str, str]) -> list[str]:
    """Names (never values) of the variables in ``env`` that look like secrets."""
    return sorted(k for k in env if is_secret(k))


def clean_environ(env: Mapping[str, str]) -> dict[str, str]:
    """``env`` reduced to an allowlist of harmless variables, with no secret among them."""
    return {k: v for k, v in env.items()
            if (k in KEEP_NAMES or k.startswith(KEEP_PREFIXES)) and not is_secret(k)}
