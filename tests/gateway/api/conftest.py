"""The API tests use the pipeline tests' sandbox gateway and roster device."""

from tests.gateway.pipeline.conftest import agent, gateway

__all__ = ["agent", "gateway"]
