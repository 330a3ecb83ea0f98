# One image for every InsightHub process: the server, the workers, the relay and migrations.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1

WORKDIR /app
COPY pyproject.toml README.md alembic.ini ./
COPY domain ./domain
COPY application ./application
COPY adapters ./adapters
COPY entrypoints ./entrypoints
COPY migrations ./migrations
RUN pip install . && useradd --create-home --uid 10001 insighthub \
    && mkdir -p /data && chown insighthub /data

USER insighthub
ENV STORAGE_DIR=/data/files \
    LOG_FORMAT=json
ENTRYPOINT ["insighthub"]
CMD ["serve", "--host", "0.0.0.0", "--port", "8000"]
