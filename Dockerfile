# dgxie: one image for the API, boot HTTP, DHCP and TFTP servers (docs/deploy-ha.md, "Container
# image"). Run with host networking where it serves DHCP/TFTP: see docker-compose.yml.
#
# BASE_IMAGE is any Debian bookworm image. The default is the one deploy/container/build-base.sh
# makes offline (mmdebstrap + `podman import`); with a registry, `--build-arg
# BASE_IMAGE=debian:bookworm-slim` works too (the packages below are then installed with apt).
ARG BASE_IMAGE=localhost/dgxie-base:bookworm

# Stage 1: the wheel, from the checkout. setup.py maps migrations/, templates/, firmware/ and
# images/ into it as dgxie/_data/ (docs/architecture.md, "Resources and packaging").
FROM ${BASE_IMAGE} AS wheel
RUN dpkg -s python3-venv >/dev/null 2>&1 || { apt-get update && apt-get install -y --no-install-recommends \
      python3 python3-venv && rm -rf /var/lib/apt/lists/*; }
RUN python3 -m venv /opt/build
WORKDIR /src
COPY pyproject.toml setup.py MANIFEST.in README.md ./
COPY dgxie ./dgxie
COPY migrations ./migrations
COPY templates ./templates
COPY images ./images
COPY firmware ./firmware
RUN /opt/build/bin/pip wheel --no-cache-dir --no-deps -w /wheels .

# Stage 2: the runtime: the tools dgxie runs, and the wheel in a venv (no source tree).
FROM ${BASE_IMAGE}
ARG PACKAGES="python3 python3-venv ca-certificates curl ipxe ipmitool gnupg gpgv mmdebstrap zstd kmod"
RUN missing=$(for p in $PACKAGES; do dpkg -s "$p" >/dev/null 2>&1 || echo "$p"; done); \
    if [ -n "$missing" ]; then apt-get update && apt-get install -y --no-install-recommends $missing \
      && rm -rf /var/lib/apt/lists/*; fi
# The dependencies first, from pyproject.toml alone: this layer is reused until they change.
COPY pyproject.toml /tmp/pyproject.toml
RUN python3 -m venv /opt/dgxie \
 && python3 -c 'import tomllib; print("\n".join(tomllib.load(open("/tmp/pyproject.toml", "rb"))["project"]["dependencies"]))' \
      > /tmp/requirements.txt \
 && /opt/dgxie/bin/pip install --no-cache-dir -r /tmp/requirements.txt && rm /tmp/requirements.txt /tmp/pyproject.toml
COPY --from=wheel /wheels /tmp/wheels
RUN /opt/dgxie/bin/pip install --no-cache-dir --no-deps /tmp/wheels/dgxie-*.whl && rm -rf /tmp/wheels
# A system user for deployments that drop root (the Helm chart runs the API as uid 10001); the
# boot services keep root with only NET_BIND_SERVICE and NET_RAW (docker-compose.yml, the chart).
RUN groupadd --system --gid 10001 dgxie \
 && useradd --system --uid 10001 --gid 10001 --home-dir /var/lib/dgxie --no-create-home dgxie \
 && install -d -m 700 -o dgxie -g dgxie /var/lib/dgxie

ENV PATH=/opt/dgxie/bin:$PATH DGXIE_DATA_DIR=/var/lib/dgxie
VOLUME ["/var/lib/dgxie"]
EXPOSE 8080 67/udp 69/udp
ENTRYPOINT ["dgxie"]
CMD ["serve"]
