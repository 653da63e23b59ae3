# dgxie: one image for the API, boot HTTP, DHCP and TFTP servers.
# Run with host networking (DHCP and TFTP must see the provisioning interface): see docker-compose.yml.

# Stage 1: the wheel. setup.py maps migrations/, templates/, firmware/ and images/ into it as
# dgxie/_data/ (docs/architecture.md, "Resources and packaging").
FROM python:3.11-slim-bookworm AS wheel
WORKDIR /src
COPY pyproject.toml setup.py MANIFEST.in README.md ./
COPY dgxie ./dgxie
COPY migrations ./migrations
COPY templates ./templates
COPY images ./images
COPY firmware ./firmware
RUN pip wheel --no-cache-dir --no-deps -w /wheels .

# Stage 2: the runtime: the tools dgxie runs, and the wheel installed (no source tree, no data folders).
FROM python:3.11-slim-bookworm

RUN apt-get update \
 && apt-get install -y --no-install-recommends ipxe ipmitool gnupg gpgv ca-certificates \
    mmdebstrap zstd kmod \
 && rm -rf /var/lib/apt/lists/*

COPY --from=wheel /wheels /tmp/wheels
RUN pip install --no-cache-dir /tmp/wheels/dgxie-*.whl && rm -rf /tmp/wheels

ENV DGXIE_DATA_DIR=/var/lib/dgxie
VOLUME ["/var/lib/dgxie"]
EXPOSE 8080 67/udp 69/udp
ENTRYPOINT ["dgxie"]
CMD ["serve"]
