"""The JSON API for single images. Parse, call the engine, answer; nothing else."""

from __future__ import annotations

import asyncio
import threading
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import FileResponse

from carstudio import __version__
from carstudio.errors import NotFound
from carstudio.generation import Studio
from carstudio.jobs.service import BatchService
from carstudio.web.auth import AccountsDep, CurrentViewer
from carstudio.web.daemon import in_daemon_thread
from carstudio.web.schemas import CarImage, CarImageRequest, ChecksOut, Health, errors
from carstudio.web.security import require_json

router = APIRouter()
DISCONNECT_CHECK_SECONDS = 0.25


def get_studio(request: Request) -> Studio:
    studio: Studio = request.app.state.studio
    return studio


StudioDep = Annotated[Studio, Depends(get_studio)]


@router.post(
    "/api/car-image",
    response_model=CarImage,
    tags=["single"],
    responses=errors(400, 402, 415, 422, 429, 502, 504, 507),
    dependencies=[Depends(require_json)],
)
async def create_car_image(
    car: CarImageRequest,
    request: Request,
    studio: StudioDep,
    accounts: AccountsDep,
    viewer: CurrentViewer,
) -> CarImage:
    """Generate one car image now; the answer says where the image is served.

    `image_model` picks a model from the supported table; without it the server's setting
    applies. The image waits for a slot from the same pool as batch rows, ahead of them.
    """
    spec = car.car()
    model = car.image_model
    request.app.state.batches.storage.check()  # before a slot is waited for
    batches: BatchService = request.app.state.batches
    line = batches.singles
    booking = batches.single_booking(viewer)
    client = f"user:{viewer.user_id}" if viewer.user_id is not None else _address(request)
    left = threading.Event()
    slot = line.slot(client=client, cancelled=left)
    work = asyncio.ensure_future(
        in_daemon_thread(
            lambda: studio.generate(
                spec,
                model=model,
                slot=slot,
                booking=booking,
                cache=batches.cache,
                fresh=car.fresh,
                output=car.output,
                # A re-roll waits for a slot of its own, like any image.
                reroll_slot=lambda: line.slot(client=client, cancelled=left),
            )
        )
    )
    while not work.done():
        # A person who gives up before the image is started must not pay for it.
        await asyncio.wait({work}, timeout=DISCONNECT_CHECK_SECONDS)
        if not work.done() and not left.is_set() and await request.is_disconnected():
            left.set()
    image = await work
    accounts.claim_image(image.id, viewer)
    return CarImage(
        id=image.id,
        image_url=f"/images/{image.id}/{image.path.name}",
        prompt=image.prompt,
        model=image.model,
        elapsed_ms=image.elapsed_ms,
        provider=image.provider,
        width=image.width,
        height=image.height,
        aspect_ratio=spec.aspect_ratio.value,
        file_name=image.path.name,
        title=spec.title,
        cached=image.cached,
        checks=ChecksOut.of(image.checks.as_json()) if image.checks is not None else None,
        needs_review=image.checks is not None and image.checks.needs_review,
        rerolls=image.rerolls,
    )


def _address(request: Request) -> str:
    return f"address:{request.client.host if request.client else 'unknown'}"


@router.get("/images/{image_id}/{name}", tags=["single"], response_class=FileResponse)
def single_image(
    image_id: str, name: str, studio: StudioDep, accounts: AccountsDep, viewer: CurrentViewer
) -> FileResponse:
    """A generated single image, to the person who asked for it (or an admin)."""
    if not accounts.may_see_image(image_id, viewer):
        raise NotFound("There is no such image; images are kept for a few hours.")
    path = studio.single_image(image_id, name)
    return FileResponse(path, filename=path.name, content_disposition_type="inline")


@router.get("/healthz", tags=["meta"], response_model=Health)
def healthz(studio: StudioDep) -> Health:
    """Whether Car Studio is up, and which provider and model it uses."""
    return Health(
        status="ok", version=__version__, provider=studio.provider.name, model=studio.settings.model
    )
