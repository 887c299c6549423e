# The gateway's image, which the Helm chart runs (helm/floorgate): `docker build -t floorgate .`
# It serves the shipped policies until the chart (or `-v`) mounts others on
# /etc/floorgate/policies. Listening beyond loopback, the gateway needs API keys
# (FLOORGATE_API_KEYS or FLOORGATE_KEYS_FILE) and refuses to start without them.
# Dependencies come only from requirements.lock, every one pinned and hash-checked (README.md,
# "The image", says how the lock is made); the gateway itself runs from source, so nothing is
# built. It runs as uid 10001 and writes nothing outside /tmp: a read-only root file system
# (the chart's default) works.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    LITELLM_LOCAL_MODEL_COST_MAP=True

WORKDIR /srv/floorgate
COPY requirements.lock scripts/check_supply_chain.py ./
RUN pip install --no-deps --require-hashes -r requirements.lock \
    && python check_supply_chain.py --lock requirements.lock \
    && rm check_supply_chain.py

COPY gateway ./gateway
COPY policies /etc/floorgate/policies
ENV PYTHONPATH=/srv/floorgate \
    HOME=/tmp \
    FLOORGATE_HOST=0.0.0.0 \
    FLOORGATE_PORT=4000 \
    FLOORGATE_POLICIES=/etc/floorgate/policies

USER 10001:10001
EXPOSE 4000
ENTRYPOINT ["python", "-m", "gateway"]
CMD ["serve"]
