"""glTF, 3D Tiles and images of the CIM; never runs a simulation.

- :func:`render.gltf.export_glb` — a site, a subtree or one object as GLB (nodes mirror the
  containment tree; y-up around the site's ENU origin, recorded in ``asset.extras``).
- :func:`render.tiles.build_tileset` — 3D Tiles 1.1 (quadtree, footprint blocks above full
  LoD leaves, per-feature ids and property tables, terrain tiles), cached per site version;
  :func:`render.tiles.resolve_tile` maps a request path safely into a tileset directory.
- :func:`render.images.render_png` — a headless PNG, coloured by kind or by a value.
"""
