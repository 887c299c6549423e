# The gateway's image, which the Helm chart runs (helm/floorgate): `docker build -t floorgate .`
# It serves the shipped policies until the chart (or `-v`) mounts others on
# /etc/floorgate/policies. Listening beyond loopback, the gateway needs API keys
# (FLOORGATE_API_KEYS or FLOORGATE_KEYS_FILE) and refuses to start without them.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    LITELLM_LOCAL_MODEL_COST_MAP=True

WORKDIR /srv/floorgate
COPY pyproject.toml README.md ./
COPY gateway ./gateway
RUN pip install . && rm -rf /srv/floorgate/build

COPY policies /etc/floorgate/policies
ENV FLOORGATE_HOST=0.0.0.0 \
    FLOORGATE_PORT=4000 \
    FLOORGATE_POLICIES=/etc/floorgate/policies

USER 65534:65534
EXPOSE 4000
CMD ["floorgate", "serve"]
