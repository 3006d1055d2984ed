"""The repository's root, for the tests that read its files (the lock, the migrations, the
committed OpenAPI document, the docs)."""

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
