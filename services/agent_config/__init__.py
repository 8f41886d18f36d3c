"""What this instance offers: models, defaults, capabilities and limits (GET /config)."""

from services.agent_config.service import AgentConfig, AgentConfigService

__all__ = ["AgentConfig", "AgentConfigService"]
