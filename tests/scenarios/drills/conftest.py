"""The drills' fixtures (:mod:`drill_sites`)."""

from __future__ import annotations

from drill_sites import prepare_ctx, run_ctx, sites

__all__ = ["prepare_ctx", "run_ctx", "sites"]
