"""Payload schemas: msgspec Structs for JSON bodies, XSD and WSDL files for XML.

Routes name them in YAML (``request: {schema: population.CitizenLookupRequest}``).
"""
