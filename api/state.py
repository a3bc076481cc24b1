"""What the running application owns: the store, the keys and the view cache.

One :class:`TwinState` is made by the lifespan of :func:`api.app.create_app` and closed when
the application stops; routes get it through the :data:`State` dependency.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Annotated

from fastapi import Depends
from starlette.requests import HTTPConnection

from api.jobs import JobManager
from api.keys import KeyStore
from api.layers import LayerHub
from api.render_gate import RenderGate
from api.scene_cache import SceneCache
from api.settings import Settings
from api.site_views import SiteViews
from api.tilecache import TileCache
from cim.errors import StoreError
from cim.store import Store
from scenarios.runs.runner import Runner
from scenarios.runs.store import RunStore
from twin.feed import EventFeed

if TYPE_CHECKING:
    from twin.live import LiveTwin


@dataclass
class TwinState:
    """The resources of one application.

    Attributes
    ----------
    settings : what the application was started with
    store : the open CIM store
    keys : the API keys
    views : cached site views (spatial index, tree, scope)
    jobs : long work that is not a drill (tilesets), recorded in the run store
    layers : value layers per site (in the store) and this process's live subscribers
    runs : the run store (drill runs and jobs)
    runner : executes this process's drill runs in worker processes or on Ray
    feed : changes heard by every process of the deployment
    tiles : built tiles held in memory
    renders : who may render a snapshot now (``renders_per_key``, ``render_queue``)
    scenes : built GLBs on disk, bounded by ``scene_cache_bytes``
    live : the live twin beside the store, once the application has opened it (drills
        raise their alerts there)
    """

    settings: Settings
    store: Store
    keys: KeyStore
    views: SiteViews
    jobs: JobManager
    layers: LayerHub
    runs: RunStore
    runner: Runner
    feed: EventFeed
    tiles: TileCache = field(default_factory=TileCache)
    live: LiveTwin | None = None
    renders: RenderGate = field(init=False)
    scenes: SceneCache = field(init=False)

    def __post_init__(self) -> None:
        self.renders = RenderGate(self.settings.renders_per_key, self.settings.render_queue)
        self.scenes = SceneCache(self.settings.cache_path / "glb", self.settings.scene_cache_bytes)

    def close(self) -> None:
        """Stop the runs and jobs, then release the store."""
        self.runner.close()
        self.jobs.shutdown()
        self.feed.close()
        self.layers.table.close()
        self.runs.close()
        self.store.close()


def get_state(request: HTTPConnection) -> TwinState:
    """The application's state.

    Raises
    ------
    StoreError
        If the application has not started (its lifespan has not run).
    """
    state = getattr(request.app.state, "twin", None)
    if not isinstance(state, TwinState):
        raise StoreError("the service is not started")
    return state


State = Annotated[TwinState, Depends(get_state)]
