# Slim, non-root image running `lgsp-gateway serve` on config/gateway.yaml.
#   docker build -t lgsp-gateway .
#   docker run -p 8080:8080 -e LGSP_ADMIN_KEY_HASH=sha256:... lgsp-gateway
# Mount your own configuration over /app/config.
FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY gateway gateway
COPY adapters adapters
COPY schemas schemas
# With the OTLP exporter, so that `tracing: {enabled: true}` can send spans.
RUN pip wheel --no-cache-dir --wheel-dir /wheels ".[otlp]"

FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    LGSP_CONFIG=/app/config/gateway.yaml \
    LGSP_HOST=0.0.0.0 \
    LGSP_STORAGE_URL=sqlite:////var/lib/lgsp/gateway.db
RUN useradd --system --uid 10001 --no-create-home --home-dir /app lgsp \
 && install -d -o lgsp -g lgsp /var/lib/lgsp
# The message log and the delivery queue: keep them on a volume.
VOLUME ["/var/lib/lgsp"]
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir /wheels/*.whl && rm -rf /wheels
WORKDIR /app
# Owned by root: the gateway reads its configuration, never writes it. This is
# the demo configuration (mock national systems started beside the gateway);
# a deployment mounts its own over /app/config, without the `mocks` section.
COPY config /app/config
USER lgsp
EXPOSE 8080
# No curl in the image: Python's urllib asks /health/live (exit 1 on any failure).
HEALTHCHECK --interval=15s --timeout=3s --start-period=10s --retries=3 \
  CMD ["python", "-c", "import os, sys, urllib.request; sys.exit(urllib.request.urlopen('http://127.0.0.1:%s/health/live' % os.environ.get('LGSP_PORT', '8080'), timeout=2).status != 200)"]
CMD ["lgsp-gateway", "serve"]
