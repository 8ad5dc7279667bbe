"""unigate's crypto core: pure, synchronous, libsodium underneath (see docs/protocol.md)."""
