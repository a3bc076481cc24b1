"""PNG snapshots of a site, a cell or a building, rendered headless with pyvista (VTK).

VTK draws off-screen through EGL (Debian ``libegl1`` + ``libegl-mesa0``), so no display
server is needed. Objects are coloured by kind, or by a per-object value with a colour bar;
a value given for a building colours its parts too.
"""

from __future__ import annotations

import importlib
import io
import math
import os
import threading
from collections.abc import Mapping
from typing import Any

import numpy as np
from numpy.typing import NDArray

from cim.errors import NotFoundError
from cim.store import Store
from render.materials import kind_colour
from render.placement import site_frame
from render.scene import gather_geometry, subtree_objects

#: VTK's render windows are not safe to use from several threads at once.
_RENDER_LOCK = threading.Lock()
BACKGROUND = "#0f1720"
NO_VALUE_COLOUR = "#5a6270"


def _check_size(size: tuple[int, int]) -> tuple[int, int]:
    width, height = (int(v) for v in size)
    if not (16 <= width <= 8192 and 16 <= height <= 8192):
        raise ValueError(f"size(={size}) must be two integers in [16, 8192]")
    return width, height


def _values_per_object(
    codes: list[str], parents: list[str | None], values: Mapping[str, float]
) -> NDArray[np.float64]:
    """The value of each object: its own, else its nearest ancestor's in the scene; NaN."""
    for code, value in values.items():
        if not isinstance(value, int | float) or not math.isfinite(value):
            raise ValueError(f"values[{code!r}](={value!r}) must be a finite number")
    position = {c: i for i, c in enumerate(codes)}
    out = np.full(len(codes), np.nan)
    for i, code in enumerate(codes):
        walk: str | None = code
        while walk is not None:
            if walk in values:
                out[i] = float(values[walk])
                break
            j = position.get(walk)
            walk = parents[j] if j is not None else None
    return out


def render_png(
    store: Store,
    site: str,
    code: str | None = None,
    *,
    values: Mapping[str, float] | None = None,
    legend: str | None = None,
    size: tuple[int, int] = (1280, 720),
    colormap: str = "viridis",
) -> bytes:
    """A PNG of a whole site, or of the subtree under ``code`` (a cell, a building...).

    Parameters
    ----------
    store, site : where to read
    code : root of what to draw; ``None`` for the whole site
    values : per-object values by code (a building's value colours its parts); objects
        without one are drawn grey
    legend : title of the colour bar (shown when ``values`` are given)
    size : (width, height) pixels

    Returns
    -------
    bytes : the PNG

    Raises
    ------
    NotFoundError
        If the site or ``code`` does not exist, or there is nothing to draw under it.
    ValueError
        If ``size`` is out of range or a value is not a finite number.
    """
    width, height = _check_size(size)
    frame = site_frame(store.site(site))
    objects = subtree_objects(store, site, code)
    geometry = gather_geometry(store, site, objects)
    if len(geometry.faces) == 0:
        where = f"object {code!r}" if code is not None else "the site"
        raise NotFoundError(f"{where} in site {site!r} has no geometry to draw")
    owner = geometry.face_object()
    vertices = frame.local(geometry.vertices)
    faces = np.column_stack([np.full(len(geometry.faces), 3), geometry.faces]).ravel()
    scalars: NDArray[Any]
    if values is not None:
        per_object = _values_per_object(
            [o.code for o in objects], [o.parent for o in objects], values
        )
        scalars = per_object[owner]
    else:
        palette = np.array([kind_colour(o.kind) for o in objects]) if objects else np.zeros((0, 3))
        scalars = (palette[owner] * 255).round().astype(np.uint8)
    title = f"{site}" + (f" · {code}" if code is not None else "")
    with _RENDER_LOCK:
        return _draw(
            vertices, faces, scalars, values is not None, legend, title, width, height, colormap
        )


def _draw(
    vertices: NDArray[np.float64],
    faces: NDArray[np.int64],
    scalars: NDArray[Any],
    by_value: bool,
    legend: str | None,
    title: str,
    width: int,
    height: int,
    colormap: str,
) -> bytes:
    os.environ.setdefault("VTK_DEFAULT_OPENGL_WINDOW", "vtkEGLRenderWindow")
    from PIL import Image

    # pyvista's own annotations fight its decorators under mypy --strict; use it untyped
    pv: Any = importlib.import_module("pyvista")

    mesh = pv.PolyData(vertices, faces)
    plotter = pv.Plotter(off_screen=True, window_size=(width, height))
    try:
        plotter.set_background(BACKGROUND)
        if by_value:
            finite = scalars[np.isfinite(scalars)]
            low, high = (float(finite.min()), float(finite.max())) if len(finite) else (0.0, 1.0)
            if high <= low:
                high = low + 1.0
            mesh.cell_data["value"] = scalars
            plotter.add_mesh(
                mesh,
                scalars="value",
                cmap=colormap,
                clim=(low, high),
                nan_color=NO_VALUE_COLOUR,
                show_scalar_bar=False,
            )
            plotter.add_scalar_bar(
                title=legend or "value",
                color="white",
                vertical=True,
                position_x=0.88,
                position_y=0.1,
                height=0.8,
                width=0.06,
                title_font_size=18,
                label_font_size=14,
            )
        else:
            mesh.cell_data["colour"] = scalars
            plotter.add_mesh(mesh, scalars="colour", rgb=True)
        plotter.add_text(title, position="upper_left", font_size=12, color="white")
        plotter.view_isometric()
        plotter.camera.azimuth = -30.0  # from the south-east, looking north-west
        plotter.reset_camera()
        plotter.camera.zoom(1.5)
        image = plotter.screenshot(return_img=True)
    finally:
        plotter.close()
    buffer = io.BytesIO()
    Image.fromarray(np.asarray(image, dtype=np.uint8)).save(buffer, format="PNG")
    return buffer.getvalue()
