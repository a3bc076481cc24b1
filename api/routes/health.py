"""``GET /health``: is the service up and its store reachable (no key needed)."""

from __future__ import annotations

from fastapi import APIRouter

from api.schemas import HealthPublic
from api.state import State
from cim.errors import StoreError
from cim.store import Store

router = APIRouter(tags=["health"])


def engine_of(store: Store) -> str:
    """``"postgresql"`` or ``"sqlite"``."""
    from cim.store.postgres import PostgresStore

    return "postgresql" if isinstance(store, PostgresStore) else "sqlite"


@router.get("/health", response_model=HealthPublic)
def health(state: State) -> HealthPublic:
    """Liveness: the store engine and how many sites it holds.

    Raises
    ------
    StoreError
        If the store does not answer (503).
    """
    try:
        count = len(state.store.sites())
    except StoreError:
        raise
    except Exception as exc:
        raise StoreError(f"the store does not answer ({type(exc).__name__})") from None
    return HealthPublic(status="ok", store=engine_of(state.store), sites=count)
