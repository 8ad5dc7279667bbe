"""X (Twitter) Direct Messages adapter."""
