"""Networks rebuilt from CIM objects as NetworkX graphs whose nodes and edges carry codes:
drainage (:mod:`cim.networks.drainage`) and walkways (:mod:`cim.networks.walkways`)."""
