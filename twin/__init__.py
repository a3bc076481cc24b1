"""Live state bound to CIM objects: sensors, ingest, rules, alerts and cases.

Arrives with the live-twin issue; imports only :mod:`cim`.
"""
