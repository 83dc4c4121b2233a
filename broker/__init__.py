"""The broker: websocket data plane, REST control plane, routing, streams, storage."""
