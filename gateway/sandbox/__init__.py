"""A gateway with every built-in platform, driven in-process: realistic signed webhook traffic
(:mod:`.traffic`) and a running app with helpers for devices, rosters and posting
(:mod:`.local`). For the demo, the gateway benchmark and the end-to-end tests."""

from gateway.sandbox.local import PLATFORMS, LocalGateway, SandboxChannel, sandbox_config
from gateway.sandbox.traffic import Webhook, merge_payloads, signed_webhook, text_payload

__all__ = [
    "PLATFORMS",
    "LocalGateway",
    "SandboxChannel",
    "Webhook",
    "merge_payloads",
    "sandbox_config",
    "signed_webhook",
    "text_payload",
]
