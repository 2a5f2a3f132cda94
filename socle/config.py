"""Settings, read once from the environment (prefix `SOCLE_`).

`SOCLE_DATABASE_URL` chooses the store: `sqlite:///./socle.db` (default, embedded) or
`postgresql://user@host/db` (production). Tests build their own `Settings` instead of patching env.
"""

from __future__ import annotations

from functools import cache
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from socle.store.engine import POOL_SIZE


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SOCLE_", extra="ignore")

    database_url: str = "sqlite:///./socle.db"
    # PostgreSQL connections kept open per process: the server's concurrency (see socle.store.engine).
    database_pool_size: int = Field(default=POOL_SIZE, ge=1, le=500)
    base_url: str = "http://127.0.0.1:8000"
    # Search paging: the page size when the client gives no _count, and the most it may ask for.
    default_page_size: int = 20
    max_page_size: int = 1000
    environment: str = "local"
    # The interpreter's thread switch interval, set by the server at start-up (socle.app), in
    # seconds. Python's default (0.005): 0.001 measured no better (see `configure_interpreter`).
    switch_interval: float = Field(default=0.005, gt=0, le=0.1)
    # Who writes the traces of reads: a child process of the server (default: off the server's
    # GIL, see socle.audit.writer_process) or a thread of the server itself.
    audit_writer: Literal["process", "thread"] = "process"

    @property
    def fhir_base(self) -> str:
        return self.base_url.rstrip("/") + "/fhir"


@cache
def get_settings() -> Settings:
    return Settings()
