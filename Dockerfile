# dgxie: one image for the API, boot HTTP, DHCP and TFTP servers.
# Run with host networking (DHCP and TFTP must see the provisioning interface): see docker-compose.yml.
FROM python:3.11-slim-bookworm

RUN apt-get update \
 && apt-get install -y --no-install-recommends ipxe ipmitool gnupg gpgv ca-certificates \
    mmdebstrap zstd kmod \
 && rm -rf /var/lib/apt/lists/*

WORKDIR /opt/dgxie
COPY pyproject.toml README.md ./
COPY dgxie ./dgxie
COPY migrations ./migrations
COPY templates ./templates
COPY images ./images
COPY firmware ./firmware
RUN pip install --no-cache-dir -e .

ENV DGXIE_DATA_DIR=/var/lib/dgxie
VOLUME ["/var/lib/dgxie"]
EXPOSE 8080 67/udp 69/udp
ENTRYPOINT ["dgxie"]
CMD ["serve"]
