# edgesim with both runtimes Lambda@Edge functions use: Python and Node.js.
#   docker build -t edgesim . && docker run --rm -p 127.0.0.1:8080:8080 edgesim
# serves the bundled example; docker-compose.yml mounts your functions and site instead.
# --build-arg EXTRAS=mitm adds mitmproxy (the compose file's debug profile).
ARG PYTHON_VERSION=3.12
ARG NODE_VERSION=22

FROM node:${NODE_VERSION}-bookworm-slim AS node

FROM python:${PYTHON_VERSION}-slim-bookworm
# Node.js functions run on the machine's `node`: the official build, one self-contained binary
# (same Debian release, so the same C libraries).
COPY --from=node /usr/local/bin/node /usr/local/bin/node

ARG EXTRAS=""
COPY pyproject.toml README.md LICENSE /tmp/edgesim/
COPY edgesim /tmp/edgesim/edgesim
RUN pip install --no-cache-dir --disable-pip-version-check "/tmp/edgesim${EXTRAS:+[$EXTRAS]}" \
    && rm -rf /tmp/edgesim \
    && useradd --create-home --uid 1000 --shell /usr/sbin/nologin edgesim

# The bundled example, so the image serves something on its own; compose mounts over it.
WORKDIR /app
COPY --chown=edgesim:edgesim distributions ./distributions
COPY --chown=edgesim:edgesim functions ./functions
COPY --chown=edgesim:edgesim origins ./origins

# Functions run as this user too: nothing in the container runs as root.
USER edgesim
ENV PYTHONUNBUFFERED=1
EXPOSE 8080
ENTRYPOINT ["edgesim"]
CMD ["serve", "distributions/example.yaml", "--host", "0.0.0.0", "--port", "8080"]
