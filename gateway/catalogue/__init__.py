"""The service catalogue and access agreements.

Services group routes and describe them (owner, data fields tied to the shared data
dictionary, legal basis, service level, lifecycle): ``index`` compiles them per
runtime, ``api`` serves ``/v1/catalogue`` from the data plane. Clients ask for access
to a service and its owner decides (``access``: stored in the database, so every replica
applies an approval; cached briefly per process). ``stats`` reports the exchanges per
service, client and month from the message log.
"""
