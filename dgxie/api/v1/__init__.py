"""The admin REST API, mounted at /api/v1."""

from fastapi import APIRouter

from dgxie.api.v1 import (
    drain,
    firmware,
    firmware_updates,
    images,
    inventory,
    lifecycle,
    mirrors,
    nodes,
    power,
    profiles,
    secrets,
    tokens,
)

router = APIRouter()
router.include_router(nodes.router)
router.include_router(profiles.router)
router.include_router(images.router)
router.include_router(tokens.router)
router.include_router(lifecycle.router)
router.include_router(drain.router)
router.include_router(inventory.router)
router.include_router(secrets.router)
router.include_router(mirrors.router)
router.include_router(power.router)
router.include_router(power.bulk_router)
router.include_router(firmware.router)
router.include_router(firmware_updates.router)
