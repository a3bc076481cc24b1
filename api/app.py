"""The application factory.

``create_app(settings)`` builds a FastAPI application whose lifespan opens the store, reads
the key file and owns the site-view cache; nothing is opened at import time, so any number
of applications (one per test, one per worker) can live in one process::

    from api.app import create_app
    from api.settings import Settings

    app = create_app(Settings(store_url="twin.db"))   # or create_app() to read TWIN_* env
    uvicorn.run(app, host="127.0.0.1", port=8000)
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI
from fastapi.middleware.gzip import GZipMiddleware
from fastapi.routing import APIRoute

from api.errors import install_error_handlers
from api.etag import ETagMiddleware
from api.jobs import JobManager
from api.keys import KeyStore
from api.layers import LayerHub
from api.limits import BodyLimitMiddleware
from api.live_deps import open_live
from api.live_layers import LiveLayers
from api.openapi import document_errors
from api.routes import alerts as live_alerts
from api.routes import cases as live_cases
from api.routes import (
    drills,
    health,
    images,
    jobs,
    layers,
    objects,
    runs,
    scenes,
    sites,
    tiles,
    units,
)
from api.routes import live as live_routes
from api.routes import sta as live_sta
from api.routes.docs import mount_docs
from api.routes.viewer import mount_viewer
from api.runs import finish_on_twin
from api.settings import Settings
from api.site_views import SiteViews
from api.state import TwinState
from api.tilefast import TileFastPath
from cim.store import open_store
from scenarios.runs.runner import Executor, LocalExecutor, RayExecutor, Runner
from scenarios.runs.store import RunStore
from scenarios.runs.worker import WorkerPaths
from twin.feed import EventFeed
from twin.layers import LayerTable

#: The routers of the application, in the order they are matched.
ROUTERS = (
    health.router,
    sites.router,
    objects.router,
    jobs.router,
    layers.router,
    scenes.router,
    tiles.router,
    images.router,
    drills.router,
    runs.router,
    units.router,
    # live twin
    live_sta.router,
    live_routes.router,
    live_alerts.router,
    live_cases.router,
)

API_TITLE = "City twin"
API_VERSION = "0.1.0"


def operation_id(route: APIRoute) -> str:
    """The OpenAPI operation id of a route: its name (the endpoint function's name)."""
    return route.name


def open_state(config: Settings, keys: KeyStore) -> TwinState:
    """The resources of one application process: the store, the run store and its runner
    (local worker processes, or Ray with ``ray_address``), the jobs, the layers and the feed.

    Raises
    ------
    StoreError
        If the store cannot be opened.
    """
    store = open_store(config.store_url)
    runs = RunStore(config.store_url, config.cache_path / "runs")
    feed = EventFeed(config.store_url)
    layers = LayerHub(LayerTable(config.store_url, feed))
    paths = WorkerPaths(
        store_url=str(config.store_url),
        files_root=str(config.cache_path / "runs"),
        data_dir=str(config.data_path),
        cache_dir=str(config.cache_path),
    )
    executor: Executor = (
        RayExecutor(config.ray_address, config.run_workers)
        if config.ray_address is not None
        else LocalExecutor(config.run_workers)
    )
    holder: list[TwinState] = []
    runner = Runner(
        runs, executor, paths, lambda run, finish: finish_on_twin(holder[0], run, finish)
    )
    jobs = JobManager(runs, runner.id, config.job_workers)
    state = TwinState(config, store, keys, SiteViews(store), jobs, layers, runs, runner, feed)
    holder.append(state)
    return state


def create_app(settings: Settings | None = None) -> FastAPI:
    """A new application serving the store named in ``settings``.

    Parameters
    ----------
    settings : what to serve; ``None`` reads :meth:`Settings.from_env`

    Raises
    ------
    ValueError
        If ``TWIN_API_KEYS`` or a bootstrap key is malformed (at creation; the store itself
        is opened when the application starts, which raises ``StoreError`` if it cannot).
    """
    config = settings if settings is not None else Settings.from_env()
    keys = KeyStore(config.store_url, config.bootstrap_keys, legacy_file=config.keys_path)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        state = open_state(config, keys)
        app.state.twin = state
        # live twin (SensorThings, MQTT ingest, alerts, cases): own connection and threads
        app.state.live = open_live(config, state.feed)
        state.live = app.state.live
        live_layers = LiveLayers(app.state.live.bus, state.layers)
        live_layers.start()
        state.runner.start()
        state.feed.start()
        try:
            yield
        finally:
            await live_layers.stop()
            state.live = None
            app.state.live.close()
            app.state.live = None
            app.state.twin = None
            state.close()
            keys.close()

    app = FastAPI(
        title=API_TITLE,
        version=API_VERSION,
        description="City Information Model and digital twin of a city operations centre.",
        lifespan=lifespan,
        generate_unique_id_function=operation_id,
        # served from the installed npm packages, not a CDN (api.routes.docs)
        docs_url=None,
        redoc_url=None,
    )
    # the last added is the outermost: ETags are computed on the body before gzip
    app.add_middleware(ETagMiddleware)
    app.add_middleware(GZipMiddleware, minimum_size=1024)
    app.add_middleware(TileFastPath)  # cached tiles skip the rest
    # outermost: a body over the limit, or one sent without a valid key, is never read
    app.add_middleware(BodyLimitMiddleware, settings=config)
    install_error_handlers(app)
    for router in ROUTERS:
        document_errors(router)
        app.include_router(router)
    mount_viewer(app, Path(config.web_modules))
    mount_docs(app)
    return app
