"""MCP API in and out: servers (registry), their tools, and the users' settings for the agent CLIs."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StringConstraints, field_validator, model_validator

Transport = Literal["stdio", "sse", "streamable_http"]
ServerStatus = Literal["ok", "error", "unknown"]
ServerName = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9 ._-]{0,63}$", strip_whitespace=True)]
EnvName = Annotated[str, StringConstraints(pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,127}$")]
HeaderName = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9!#$%&'*+.^_`|~-]{1,128}$")]
Value = Annotated[str, StringConstraints(max_length=8192)]
Argument = Annotated[str, StringConstraints(max_length=4096)]


def _http_url(url: str | None) -> str | None:
    if url is None:
        return None
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("url must be an http:// or https:// URL with a host")
    return url.strip()


class ServerFields(BaseModel):
    """What reaches a server, shared by create and edit."""

    model_config = ConfigDict(extra="forbid")
    command: Annotated[str, StringConstraints(min_length=1, max_length=1024, strip_whitespace=True)] | None = Field(
        default=None, description="stdio: the program to start"
    )
    args: list[Argument] | None = Field(default=None, max_length=64, description="stdio: its arguments")
    env: dict[EnvName, Value] | None = Field(
        default=None, max_length=64, description="stdio: environment variables (stored encrypted, shown redacted)"
    )
    url: Annotated[str, StringConstraints(max_length=2048)] | None = Field(
        default=None, description="sse / streamable_http: the endpoint"
    )
    headers: dict[HeaderName, Value] | None = Field(
        default=None, max_length=32, description="sse / streamable_http: request headers (stored encrypted)"
    )

    @field_validator("url")
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        return _http_url(value)


class ServerCreate(ServerFields):
    name: ServerName
    transport: Transport
    sandbox_id: Annotated[str, StringConstraints(pattern=r"^sbx_[A-Za-z0-9]{1,60}$")] | None = Field(
        default=None, description="stdio: run it in this sandbox of yours (required unless you are an admin)"
    )
    shared: StrictBool = Field(default=False, description="admins only: every user may use it")
    enabled: StrictBool = True

    @model_validator(mode="after")
    def _reachable(self) -> ServerCreate:
        if self.transport == "stdio":
            if not self.command:
                raise ValueError("a stdio server needs a command")
            if self.url is not None or self.headers:
                raise ValueError("a stdio server takes command, args and env, not url or headers")
        else:
            if not self.url:
                raise ValueError(f"a {self.transport} server needs a url")
            if self.command is not None or self.args or self.env or self.sandbox_id:
                raise ValueError(
                    f"a {self.transport} server takes url and headers, not command, args, env or sandbox_id"
                )
        return self


class ServerUpdate(ServerFields):
    """Fields left out stay. ``env`` and ``headers`` replace the whole map; a value sent back as it was shown
    (redacted) keeps what is stored."""

    name: ServerName | None = None
    shared: StrictBool | None = None
    enabled: StrictBool | None = None


class McpToolRead(BaseModel):
    name: str
    description: str
    input_schema: dict[str, Any]


class ServerError(BaseModel):
    kind: str = Field(description="missing_command, exited, refused, unauthorized, timeout, protocol, not_found")
    message: str


class ServerRead(BaseModel):
    id: str
    name: str
    transport: Transport
    command: str | None
    args: list[str]
    env: dict[str, str] = Field(description="values redacted")
    url: str | None
    sandbox_id: str | None = Field(description="stdio: the sandbox it runs in (None: on the host)")
    headers: dict[str, str] = Field(description="values redacted")
    shared: bool
    enabled: bool
    own: bool = Field(description="registered by the caller (else shared by an admin)")
    status: ServerStatus = Field(description="what the last connection found")
    last_checked_at: datetime | None
    last_error: str | None
    last_latency_ms: float | None
    tool_count: int
    created_at: datetime
    updated_at: datetime


class ServerTest(BaseModel):
    ok: bool
    latency_ms: float | None
    server_name: str | None
    server_version: str | None
    tools: list[McpToolRead]
    error: ServerError | None


class ToolCall(BaseModel):
    model_config = ConfigDict(extra="forbid")
    arguments: dict[str, Any] = Field(default_factory=dict)


class ToolCallResult(BaseModel):
    is_error: bool
    text: str = Field(description="the text blocks joined")
    content: list[dict[str, Any]] = Field(description="the MCP content blocks (text, image, resource, ...)")
    structured: dict[str, Any] | None


# --- user settings (agent_mcp_settings) ------------------------------------------------------------------------

ToolType = Annotated[str, StringConstraints(pattern=r"^(codex|claude_code|custom:[A-Za-z0-9][A-Za-z0-9._-]{0,63})$")]
CustomName = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")]
ApiKey = Annotated[str, StringConstraints(min_length=8, max_length=512, strip_whitespace=True)]
ModelName = Annotated[str, StringConstraints(min_length=1, max_length=128, strip_whitespace=True)]


class McpServerEntry(BaseModel):
    """A server a CLI in the sandbox should use besides our tool server (its own MCP config entry)."""

    model_config = ConfigDict(extra="forbid")
    command: Annotated[str, StringConstraints(min_length=1, max_length=1024)] | None = None
    args: list[Argument] = Field(default_factory=list, max_length=64)
    env: dict[EnvName, Value] = Field(default_factory=dict, max_length=64)
    url: Annotated[str, StringConstraints(max_length=2048)] | None = None

    @field_validator("url")
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        return _http_url(value)

    @model_validator(mode="after")
    def _one_way(self) -> McpServerEntry:
        if (self.command is None) == (self.url is None):
            raise ValueError("give a command (stdio) or a url (streamable HTTP)")
        return self


class AgentCliSettings(BaseModel):
    """Codex or Claude Code: the provider key and optional model and extra MCP servers."""

    model_config = ConfigDict(extra="forbid")
    api_key: ApiKey = Field(description="the provider's API key (stored encrypted, returned redacted)")
    model: ModelName | None = None
    mcp_servers: dict[CustomName, McpServerEntry] = Field(default_factory=dict, max_length=32)
    is_active: StrictBool = True


class CustomSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: CustomName
    mcp_config: dict[str, Any] = Field(description="written into the sandbox as given (JSON)")
    auth_json: dict[str, Any] | None = Field(default=None, description="secrets (stored encrypted)")
    is_active: StrictBool = True


class SettingUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    is_active: StrictBool | None = None
    api_key: ApiKey | None = Field(default=None, description="codex / claude_code: a new key")
    model: ModelName | None = None
    mcp_servers: dict[CustomName, McpServerEntry] | None = Field(default=None, max_length=32)
    mcp_config: dict[str, Any] | None = Field(default=None, description="custom: replaces the config")
    auth_json: dict[str, Any] | None = Field(default=None, description="custom: replaces the secrets")


class SettingRead(BaseModel):
    id: str
    tool_type: str
    mcp_config: dict[str, Any]
    auth_json: dict[str, Any] | None = Field(description="every string value redacted (sk-...abcd)")
    is_active: bool
    created_at: datetime
    updated_at: datetime
