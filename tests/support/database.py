"""The suite's database. WAYPOINT_TEST_DATABASE=sqlite (default) is a file in a temporary
directory; =postgres is WAYPOINT_TEST_POSTGRES_URL, which the suite resets to an empty schema."""

import os
import tempfile
from pathlib import Path

TMP = Path(tempfile.mkdtemp(prefix="waypoint-tests-"))
BACKEND = os.environ.get("WAYPOINT_TEST_DATABASE", "sqlite")
if BACKEND == "postgres":
    DATABASE_URL = os.environ["WAYPOINT_TEST_POSTGRES_URL"]
else:
    DATABASE_URL = f"sqlite:///{TMP / 'test.db'}"
