"""Names and numbers shared across awrepro: exit codes, environment variables, file names."""

from __future__ import annotations

# Exit codes (design.md): a failing check is 1, bad input 2, a bug of ours 3.
EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_INTERNAL = 3
EXIT_INTERRUPTED = 130
EXIT_CLOSED_PIPE = 141  # 128 + SIGPIPE: the reader of stdout went away (`| head`), as for any Unix tool

REGISTRY_FILENAME = "registry.toml"
REGISTRY_FORMAT = 1

ENV_REGISTRY = "AWREPRO_REGISTRY"
ENV_CACHE_DIR = "AWREPRO_CACHE_DIR"
ENV_MIRROR = "AWREPRO_MIRROR"
ENV_ALLOW_FILE = "AWREPRO_ALLOW_FILE_URLS"

LOG_FILENAME = "awrepro.log"


# git's short form of an ssh URL: user@host:path
SCP_LIKE_URL = r"^[\w.-]+@[\w.-]+:(?!//)"
