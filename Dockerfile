# The aimass image for production (ops/compose.yaml): worker and serving replicas.
FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY streams streams
COPY learners learners
COPY ensemble ensemble
COPY sinks sinks
COPY ops ops
RUN pip install --no-cache-dir .
ENV AIMASS_DATA_DIR=/data
EXPOSE 6066 6067
CMD ["aimass", "worker", "-l", "info"]
