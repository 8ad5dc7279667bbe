"""The inbound pipeline: ingest steps, group commit, sealing with the edge's sessions, and the
wake-ups that push envelopes to device streams (``api`` → ``pipeline`` → ``store``)."""
