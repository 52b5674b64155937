"""Prefect flows of samverkan. Nothing here phones home: Prefect's analytics are off by default."""

import os

os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
