"""Writing a user's agent CLI settings into each sandbox they create, pointed at our tool server.

A user with active settings (Codex, Claude Code, custom) gets, in every new sandbox's home, the CLIs' own files:
Codex ``~/.codex/config.toml`` and ``~/.codex/auth.json``; Claude Code ``~/.claude.json`` (its MCP servers) and
``~/.claude/settings.json`` (an ``apiKeyHelper`` reading ``~/.claude/api-key``); a custom entry
``~/.agent-ui/custom/<name>.json``. Each sandbox gets its own ``sk_`` key (scopes ``mcp`` and ``sandboxes``,
bound to that sandbox, revoked when it is destroyed), and each CLI's MCP config launches the bridge in the image
(``agent-ui-mcp-bridge``), which reaches our tool server through a unix socket every sandbox sees read-only at
``/tmp/.agent-ui`` (sandboxes have no network).
"""

from __future__ import annotations

import json
import logging
import tempfile
from pathlib import Path
from typing import Any

from services.auth.api_keys import ApiKeyService
from services.auth.scopes import Scope
from services.mcp.user_settings import ActiveSetting, McpSettingsService
from services.provisioning import NewSandbox, SandboxMount

log = logging.getLogger(__name__)

HOME = ".home"  # the sandbox user's home, inside the workspace
SANDBOX_SOCKET_DIR = "/tmp/.agent-ui"  # noqa: S108  (a mount inside the sandbox's own /tmp)
SOCKET_NAME = "tool-server.sock"
TOOL_SERVER_PATH = "/api/v1/agent/mcp/tool-server/"
BRIDGE = "agent-ui-mcp-bridge"
SERVER_NAME = "agent-ui"


def socket_dir(instance_id: str) -> Path:
    """Short (a unix socket path is at most 107 bytes), per instance."""
    return Path(tempfile.gettempdir()) / f"agent-ui-mcp-{instance_id[-12:]}"


def bridge_env(token: str) -> dict[str, str]:
    return {
        "AGENT_UI_MCP_KEY": token,
        "AGENT_UI_MCP_SOCKET": f"{SANDBOX_SOCKET_DIR}/{SOCKET_NAME}",
        "AGENT_UI_MCP_URL": f"http://localhost{TOOL_SERVER_PATH}",
    }


def _toml_string(value: str) -> str:
    return json.dumps(value, ensure_ascii=False)  # a JSON string is a TOML basic string


def _toml_table(values: dict[str, str]) -> str:
    return "{ " + ", ".join(f"{_toml_string(k)} = {_toml_string(v)}" for k, v in values.items()) + " }"


def codex_config(setting: ActiveSetting, token: str) -> str:
    lines = ["# Written by agent-ui for this sandbox: our tool server through the bridge, and your servers."]
    if setting.config.get("model"):
        lines.append(f"model = {_toml_string(str(setting.config['model']))}")
    servers: dict[str, dict[str, Any]] = {
        SERVER_NAME: {"command": BRIDGE, "env": bridge_env(token)},
        **setting.config.get("mcp_servers", {}),
    }
    for name, entry in servers.items():
        lines += ["", f"[mcp_servers.{_toml_string(name)}]"]
        if entry.get("url"):
            lines.append(f"url = {_toml_string(entry['url'])}")
            continue
        lines.append(f"command = {_toml_string(entry['command'])}")
        if entry.get("args"):
            lines.append("args = [" + ", ".join(_toml_string(a) for a in entry["args"]) + "]")
        if entry.get("env"):
            lines.append(f"env = {_toml_table(entry['env'])}")
    return "\n".join(lines) + "\n"


def claude_servers(setting: ActiveSetting, token: str) -> dict[str, Any]:
    servers: dict[str, Any] = {SERVER_NAME: {"type": "stdio", "command": BRIDGE, "args": [], "env": bridge_env(token)}}
    for name, entry in setting.config.get("mcp_servers", {}).items():
        if entry.get("url"):
            servers[name] = {"type": "http", "url": entry["url"]}
        else:
            servers[name] = {
                "type": "stdio",
                "command": entry["command"],
                "args": entry.get("args", []),
                "env": entry.get("env", {}),
            }
    return servers


def files_for(settings: list[ActiveSetting], token: str) -> dict[str, bytes]:
    """Every file to write, by path relative to the workspace."""
    files: dict[str, str] = {}
    for setting in settings:
        key = str(setting.auth.get("api_key", ""))
        if setting.tool_type == "codex":
            files[f"{HOME}/.codex/config.toml"] = codex_config(setting, token)
            files[f"{HOME}/.codex/auth.json"] = json.dumps({"auth_mode": "apikey", "OPENAI_API_KEY": key})
        elif setting.tool_type == "claude_code":
            user_scope = {"hasCompletedOnboarding": True, "mcpServers": claude_servers(setting, token)}
            files[f"{HOME}/.claude.json"] = json.dumps(user_scope, indent=2)
            claude_settings: dict[str, Any] = {"apiKeyHelper": "cat /home/sandbox/.claude/api-key"}
            if setting.config.get("model"):
                claude_settings["model"] = setting.config["model"]
            files[f"{HOME}/.claude/settings.json"] = json.dumps(claude_settings, indent=2)
            files[f"{HOME}/.claude/api-key"] = key + "\n"
        else:
            name = setting.tool_type.removeprefix("custom:")
            files[f"{HOME}/.agent-ui/custom/{name}.json"] = json.dumps(
                {"mcp_config": setting.config, "auth": setting.auth}, indent=2
            )
    files[f"{HOME}/.agent-ui/tool-server.json"] = json.dumps(
        {
            "command": BRIDGE,
            "env": bridge_env(token),
            "note": "our MCP tool server; this key works in this sandbox only and ends with it",
        },
        indent=2,
    )
    return {path: text.encode() for path, text in files.items()}


class McpProvisioner:
    def __init__(self, *, user_settings: McpSettingsService, api_keys: ApiKeyService, socket_dir: Path) -> None:
        self._user_settings = user_settings
        self._api_keys = api_keys
        self.socket_dir = socket_dir
        # Made now, not at start: the warm pool starts sandboxes that mount it before the capabilities start.
        socket_dir.mkdir(mode=0o755, exist_ok=True)
        socket_dir.chmod(0o755)

    @property
    def socket_path(self) -> Path:
        return self.socket_dir / SOCKET_NAME

    def mounts(self) -> list[SandboxMount]:
        return [SandboxMount(str(self.socket_dir), SANDBOX_SOCKET_DIR)]

    async def sandbox_created(self, sandbox: NewSandbox) -> None:
        settings = await self._user_settings.active(sandbox.user_id)
        if not settings:
            return
        token = await self._api_keys.mint_for_sandbox(sandbox.user_id, sandbox.sandbox_id, (Scope.MCP, Scope.SANDBOXES))
        for path, data in files_for(settings, token).items():
            await sandbox.write_file(path, data)
        log.info("provisioned sandbox %s with %s", sandbox.sandbox_id, ", ".join(s.tool_type for s in settings))

    async def sandbox_destroyed(self, user_id: str, sandbox_id: str) -> None:
        await self._api_keys.revoke_sandbox_keys(user_id, sandbox_id)
