"""The City Information Model: objects, codes, geometry, terrain, loaders and the store.

No simulation and no web framework lives here; every other layer builds on this one.
"""
