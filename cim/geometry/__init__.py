"""Columnar geometry: triangle meshes of many objects in shared numpy arrays."""
