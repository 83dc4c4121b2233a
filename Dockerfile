# The passline broker: REST on 8080, websockets on 8765, SQLite in /var/lib/passline.
#   docker build -t passline .
#   docker run -p 8080:8080 -p 8765:8765 -e PASSLINE_SECRET=… -v passline-data:/var/lib/passline passline
# Mount your own settings over /etc/passline/broker.toml (a copy of examples/broker.toml).
# See docs/operations.md.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

RUN groupadd --system passline \
 && useradd --system --gid passline --home-dir /var/lib/passline --shell /usr/sbin/nologin passline \
 && install -d -o passline -g passline -m 0750 /var/lib/passline \
 && install -d -m 0755 /etc/passline

# Only what the wheel needs (see .dockerignore); the source is removed after the install.
WORKDIR /src
COPY pyproject.toml README.md ./
COPY protocol ./protocol
COPY kitchen ./kitchen
COPY printer_drivers ./printer_drivers
COPY broker ./broker
COPY store_client ./store_client
COPY kds_web ./kds_web
COPY passline ./passline
RUN pip install . && cd / && rm -rf /src

COPY examples/broker.toml /etc/passline/broker.toml

USER passline
WORKDIR /var/lib/passline
VOLUME ["/var/lib/passline"]
EXPOSE 8080 8765

# SIGTERM drains (close peers with 1012, finish requests); give it drain_timeout + 5 s:
# `docker stop -t 40`.
STOPSIGNAL SIGTERM
# Readiness of the default HTTP port; change it together with `http` in broker.toml.
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s \
  CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8080/readyz', timeout=4)"]

CMD ["passline", "broker", "--config", "/etc/passline/broker.toml"]
