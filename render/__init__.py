"""glTF, 3D Tiles and images of the CIM; never runs a simulation.

Arrives with the scene issue.
"""
