"""Each user's settings for the agent CLIs in their sandboxes (``agent_mcp_settings``): Codex, Claude Code and
custom entries. The credentials (``auth_json``) are sealed by the vault and only ever returned redacted; the
sandbox provisioning opens them to write the CLIs' files."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from services.auth.authz import require_scope
from services.auth.schemas import Principal
from services.auth.scopes import Scope
from services.db.database import Database
from services.errors import NotFoundError, ValidationFailedError
from services.ids import new_id
from services.mcp.models import McpSetting
from services.mcp.schemas import AgentCliSettings, CustomSettings, SettingRead, SettingUpdate
from services.vault import Vault, redact

CLI_TOOLS = ("codex", "claude_code")


@dataclass(frozen=True)
class ActiveSetting:
    """An active setting with its credentials opened: what provisioning writes into a sandbox."""

    tool_type: str
    config: dict[str, Any]
    auth: dict[str, Any]


def redacted(value: Any) -> Any:
    """Every string inside ``value`` redacted (the shape stays, so a user sees what is set)."""
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {key: redacted(item) for key, item in value.items()}
    if isinstance(value, list):
        return [redacted(item) for item in value]
    return value


class McpSettingsService:
    def __init__(self, *, db: Database, vault: Vault, clock: Callable[[], datetime]) -> None:
        self._db = db
        self._vault = vault
        self._clock = clock

    async def of_user(self, principal: Principal) -> list[SettingRead]:
        require_scope(principal, Scope.MCP)
        async with self._db.transaction(readonly=True) as session:
            query = select(McpSetting).where(McpSetting.user_id == principal.user.id)
            rows = (await session.exec(query.order_by(col(McpSetting.tool_type)))).all()
        return [self._read(row) for row in rows]

    async def save_cli(
        self, principal: Principal, tool_type: str, request: AgentCliSettings
    ) -> tuple[SettingRead, bool]:
        """Codex or Claude Code, created or replaced; ``True`` when it was created."""
        if tool_type not in CLI_TOOLS:
            raise NotFoundError(f"no tool {tool_type!r}")
        config = {
            "model": request.model,
            "mcp_servers": {name: entry.model_dump(exclude_none=True) for name, entry in request.mcp_servers.items()},
        }
        return await self._save(principal, tool_type, config, {"api_key": request.api_key}, request.is_active)

    async def save_custom(self, principal: Principal, request: CustomSettings) -> tuple[SettingRead, bool]:
        return await self._save(
            principal, f"custom:{request.name}", request.mcp_config, request.auth_json, request.is_active
        )

    async def update(self, principal: Principal, tool_type: str, request: SettingUpdate) -> SettingRead:
        require_scope(principal, Scope.MCP)
        custom = tool_type.startswith("custom:")
        if custom and (request.api_key is not None or request.model is not None or request.mcp_servers is not None):
            raise ValidationFailedError("a custom setting takes mcp_config and auth_json", code="invalid_setting")
        if not custom and (request.mcp_config is not None or request.auth_json is not None):
            raise ValidationFailedError(f"{tool_type} takes api_key, model and mcp_servers", code="invalid_setting")
        async with self._db.transaction() as session:
            row = await self._get(session, principal, tool_type)
            if request.is_active is not None:
                row.is_active = request.is_active
            if request.api_key is not None:
                row.auth_json = self._vault.seal({"api_key": request.api_key})
            if request.model is not None or request.mcp_servers is not None:
                config = dict(row.mcp_config)
                if request.model is not None:
                    config["model"] = request.model
                if request.mcp_servers is not None:
                    config["mcp_servers"] = {
                        name: entry.model_dump(exclude_none=True) for name, entry in request.mcp_servers.items()
                    }
                row.mcp_config = config
            if request.mcp_config is not None:
                row.mcp_config = request.mcp_config
            if request.auth_json is not None:
                row.auth_json = self._vault.seal(request.auth_json)
            elif row.auth_json is not None and self._vault.rotated(row.auth_json):
                row.auth_json = self._vault.seal(self._vault.open(row.auth_json))
            row.updated_at = self._clock()
            session.add(row)
            return self._read(row)

    async def delete(self, principal: Principal, tool_type: str) -> None:
        require_scope(principal, Scope.MCP)
        async with self._db.transaction() as session:
            await session.delete(await self._get(session, principal, tool_type))

    async def active(self, user_id: str) -> list[ActiveSetting]:
        """The user's active settings, credentials opened (for provisioning only; never for an answer)."""
        async with self._db.transaction(readonly=True) as session:
            query = select(McpSetting).where(McpSetting.user_id == user_id, col(McpSetting.is_active))
            rows = (await session.exec(query.order_by(col(McpSetting.tool_type)))).all()
        return [
            ActiveSetting(row.tool_type, dict(row.mcp_config), self._vault.open(row.auth_json) if row.auth_json else {})
            for row in rows
        ]

    async def _save(
        self, principal: Principal, tool_type: str, config: dict[str, Any], auth: dict[str, Any] | None, active: bool
    ) -> tuple[SettingRead, bool]:
        require_scope(principal, Scope.MCP)
        now = self._clock()
        async with self._db.transaction(exclusive=f"mcp-settings:{principal.user.id}") as session:
            row = await session.scalar(
                select(McpSetting).where(McpSetting.user_id == principal.user.id, McpSetting.tool_type == tool_type)
            )
            created = row is None
            if row is None:
                row = McpSetting(
                    id=new_id("mcs"), user_id=principal.user.id, tool_type=tool_type, created_at=now, updated_at=now
                )
            row.mcp_config = config
            row.auth_json = self._vault.seal(auth) if auth else None
            row.is_active = active
            row.updated_at = now
            session.add(row)
            return self._read(row), created

    async def _get(self, session: AsyncSession, principal: Principal, tool_type: str) -> McpSetting:
        row = await session.scalar(
            select(McpSetting).where(McpSetting.user_id == principal.user.id, McpSetting.tool_type == tool_type)
        )
        if row is None:
            raise NotFoundError("you have no such setting")
        return row

    def _read(self, row: McpSetting) -> SettingRead:
        auth = redacted(self._vault.open(row.auth_json)) if row.auth_json else None
        return SettingRead(
            id=row.id,
            tool_type=row.tool_type,
            mcp_config=row.mcp_config,
            auth_json=auth,
            is_active=row.is_active,
            created_at=row.created_at,
            updated_at=row.updated_at,
        )
