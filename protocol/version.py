"""Package and wire-protocol versions."""

__version__ = "0.2.0"

#: The wire protocol this build speaks (``hello.protocol``).
PROTOCOL_VERSION = 2
#: Oldest and newest protocol versions a peer may announce; others are refused with 4502.
#: The broker serves each link in the version it announced (``protocol.compat``).
SUPPORTED_PROTOCOLS = range(1, 3)
