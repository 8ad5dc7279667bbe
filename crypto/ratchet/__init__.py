"""The Double Ratchet with header encryption: chains, root step, header layout, skipped keys,
and the Session built from them."""
