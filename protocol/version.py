"""Package and wire-protocol versions."""

__version__ = "0.1.0"

#: The wire protocol this build speaks (``hello.protocol``).
PROTOCOL_VERSION = 1
#: Oldest and newest protocol versions a peer may announce; others are refused with 4502.
SUPPORTED_PROTOCOLS = range(1, 2)
