# agent-ui: the web UI and REST API in one process.
#   docker build -t agent-ui . && docker run -p 8080:8080 -v agent-ui-data:/data agent-ui
FROM python:3.11-slim AS base

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    UV_PYTHON_DOWNLOADS=never \
    UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    AGENT_UI_DATA_DIR=/data \
    AGENT_UI_SERVER__HOST=0.0.0.0 \
    AGENT_UI_SERVER__PORT=8080 \
    PATH=/app/.venv/bin:$PATH

# Offline speech: flite and espeak-ng (the engines behind the default voices when edge-tts cannot be reached).
RUN apt-get update -qq \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends flite espeak-ng \
 && rm -rf /var/lib/apt/lists/*
RUN pip install --no-cache-dir uv==0.13.9 \
 && useradd --create-home --uid 10001 agent \
 && mkdir -p /data /app && chown agent:agent /data /app

WORKDIR /app
COPY --chown=agent:agent pyproject.toml uv.lock README.md ./
USER agent
RUN uv sync --frozen --no-dev --no-install-project
COPY --chown=agent:agent . .
RUN uv sync --frozen --no-dev

VOLUME ["/data"]
EXPOSE 8080
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
  CMD python -c "import urllib.request,sys; sys.exit(urllib.request.urlopen('http://127.0.0.1:8080/api/v1/health', timeout=4).status != 200)"
CMD ["uvicorn", "main:app", "--host", "0.0.0.0", "--port", "8080", "--proxy-headers"]
