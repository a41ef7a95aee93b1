"""The JSON API for single images. Parse, call the engine, answer; nothing else."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import FileResponse
from pydantic import BaseModel

from carstudio import __version__
from carstudio.generation import Studio
from carstudio.spec import CarSpec
from carstudio.web.daemon import in_daemon_thread

router = APIRouter()


def get_studio(request: Request) -> Studio:
    studio: Studio = request.app.state.studio
    return studio


StudioDep = Annotated[Studio, Depends(get_studio)]


class CarImage(BaseModel):
    id: str
    imageUrl: str
    prompt: str
    model: str
    elapsedMs: int
    provider: str
    width: int
    height: int
    aspectRatio: str
    fileName: str
    title: str


@router.post("/api/car-image", response_model=CarImage, tags=["single"])
async def create_car_image(spec: CarSpec, studio: StudioDep) -> Any:
    """Generate one car image now; the answer says where the image is served."""
    image = await in_daemon_thread(lambda: studio.generate(spec))
    return CarImage(
        id=image.id,
        imageUrl=f"/images/{image.id}/{image.path.name}",
        prompt=image.prompt,
        model=image.model,
        elapsedMs=image.elapsed_ms,
        provider=image.provider,
        width=image.width,
        height=image.height,
        aspectRatio=spec.aspect_ratio.value,
        fileName=image.path.name,
        title=spec.title,
    )


@router.get("/images/{image_id}/{name}", tags=["single"], response_class=FileResponse)
def single_image(image_id: str, name: str, studio: StudioDep) -> FileResponse:
    """A generated single image."""
    return FileResponse(studio.single_image(image_id, name))


@router.get("/healthz", tags=["meta"])
def healthz(studio: StudioDep) -> dict[str, Any]:
    return {
        "status": "ok",
        "version": __version__,
        "provider": studio.provider.name,
        "model": studio.settings.model,
    }
