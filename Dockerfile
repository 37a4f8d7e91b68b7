# The Thresher services in one image; compose.yaml picks the service with `command`.
FROM python:3.11-slim

WORKDIR /opt/thresher
COPY pyproject.toml setup.py README.md ./
COPY client ./client
COPY services ./services
COPY protos ./protos
# The services with the PostgreSQL store and the S3 and GCS connectors; no torch or tensorflow.
RUN pip install --no-cache-dir ".[server,postgres,s3,gcs]"

RUN useradd --uid 10001 --create-home thresher && mkdir -p /data && chown thresher /data
USER thresher
ENV THRESHER_HOME=/data PYTHONUNBUFFERED=1
EXPOSE 7470 7471 7472 7475
CMD ["python", "-m", "thresher.services.metadata"]
