"""WhatsApp Business Cloud API adapter (Meta Graph API)."""
