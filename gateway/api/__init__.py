"""HTTP surfaces of the gateway (each a sub-app with its own body limit) and the middleware
they share."""
