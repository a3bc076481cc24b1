"""SimPy drills (flood, crowd, traffic) over NetworkX topologies; numpy kernels compute.

Arrives with the drill issues; reads the twin only through a snapshot.
"""
