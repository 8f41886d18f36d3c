"""Which models exist and which client serves each: configured providers, plus the embedded local model."""

from __future__ import annotations

import asyncio
import importlib

from services.errors import ValidationFailedError
from services.llm.client import LLMClient
from services.llm.local import LocalModelRunner
from services.llm.schemas import ModelInfo
from services.llm.weights import LOCAL_MODELS
from services.settings import LLMSettings

LOCAL_PROVIDER = "local"


class ModelRegistry:
    def __init__(self, settings: LLMSettings, *, local_runner: LocalModelRunner | None) -> None:
        self._settings = settings
        self._local = local_runner if settings.local.enabled else None
        self._models: dict[str, ModelInfo] = {}
        self._clients: dict[str, LLMClient] = {}
        for provider in settings.providers:
            for model in provider.models:
                self._models[model.id] = ModelInfo(
                    id=model.id,
                    provider=provider.name,
                    context_window=model.context_window,
                    max_output_tokens=model.max_output_tokens,
                    price_prompt_per_1k=model.price_prompt_per_1k,
                    price_completion_per_1k=model.price_completion_per_1k,
                    native_tools=model.native_tools,
                    temperature=model.temperature,
                    seed=model.seed,
                )
        if self._local is not None:
            spec = LOCAL_MODELS.get(settings.local.model)
            if spec is None:
                raise ValueError(f"unknown local model {settings.local.model}; choose one of {sorted(LOCAL_MODELS)}")
            self._models.setdefault(
                spec.id,
                ModelInfo(
                    id=spec.id,
                    provider=LOCAL_PROVIDER,
                    title=spec.title,
                    size=spec.size or None,
                    context_window=min(spec.context_window, settings.local.context_size // settings.local.parallel),
                    max_output_tokens=settings.local.max_output_tokens,
                    price_prompt_per_1k=settings.local.price_prompt_per_1k,
                    price_completion_per_1k=settings.local.price_completion_per_1k,
                    native_tools=False,  # small local models do not return native tool calls: route instead
                    local=True,
                    temperature=settings.local.temperature,
                    seed=settings.local.seed,
                ),
            )

    def models(self) -> list[ModelInfo]:
        return list(self._models.values())

    @property
    def default_model(self) -> str | None:
        if self._settings.default_model and self._settings.default_model in self._models:
            return self._settings.default_model
        return next(iter(self._models), None)

    def has(self, model_id: str) -> bool:
        return model_id in self._models

    def resolve(self, model_id: str | None) -> ModelInfo:
        """The model asked for, or the default; 422 for a model this instance does not have."""
        chosen = model_id or self.default_model
        if chosen is None:
            raise ValidationFailedError("no model is configured", code="no_model")
        model = self._models.get(chosen)
        if model is None:
            raise ValidationFailedError(
                f"unknown model {chosen!r}", code="unknown_model", details={"models": list(self._models)}
            )
        return model

    async def client_for(self, model: ModelInfo) -> LLMClient:
        if model.local:
            assert self._local is not None
            base_url = await self._local.base_url()
            client = self._clients.get(base_url)
            if client is None:
                client = self._clients[base_url] = LLMClient(
                    provider=LOCAL_PROVIDER, base_url=base_url, api_key=None, timeout_s=300
                )
            return client
        client = self._clients.get(model.provider)
        if client is None:
            provider = next(p for p in self._settings.providers if p.name == model.provider)
            client = self._clients[model.provider] = LLMClient(
                provider=provider.name,
                base_url=provider.base_url,
                api_key=provider.api_key.get_secret_value() if provider.api_key else None,
                timeout_s=provider.timeout_s,
            )
        return client

    def local_runner(self) -> LocalModelRunner | None:
        return self._local

    async def preload(self) -> None:
        """Import the model SDK in a thread (about 0.6 s of imports that would otherwise block the event loop
        during the first answer)."""
        if self._models:
            await asyncio.to_thread(importlib.import_module, "openai")

    async def close(self) -> None:
        for client in self._clients.values():
            await client.close()
        self._clients.clear()
        if self._local is not None:
            await self._local.stop()
