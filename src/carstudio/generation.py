"""Making one image: prompt, provider steps, and where the result is kept.

`run_prediction` is shared by single images and batch rows; its callbacks let the batch engine
record each step (the prediction id above all) before the next one starts.
"""

from __future__ import annotations

import re
import threading
import time
import uuid
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from PIL import Image

from carstudio.cache import ImageCache, cache_key
from carstudio.config import Settings
from carstudio.delivery import OutputPreset, requested_preset
from carstudio.errors import GenerationError, NotFound
from carstudio.naming import image_stem
from carstudio.prompts import PromptBook, load_prompt_book
from carstudio.providers import Prediction, Provider, StoredImage, build_provider
from carstudio.providers.models import requested_model
from carstudio.quality.checks import Inspection
from carstudio.quality.review import Reviewer, deliver_in_place, keeps_first, labels
from carstudio.spec import CarSpec

_IMAGE_ID = re.compile(r"[0-9a-f]{32}")


class Booking(Protocol):
    """Pays for one image in the ledger: booked before the create, settled after it."""

    def before_create(self) -> None:
        """Book the image; raises GenerationError(BUDGET_REACHED) past a budget."""

    def created(self, prediction_id: str) -> None: ...

    def not_created(self) -> None: ...

    def resumed(self, prediction_id: str) -> None:
        """A prediction created before its process stopped: a booking left unsettled then
        (the id was stored, the process died before settling) is settled with it now."""

    def cached(self) -> None:
        """The image came from the cache: recorded at no cost."""


def run_prediction(
    provider: Provider,
    *,
    prompt: str,
    spec: CarSpec,
    dest: Path,
    deadline: float,
    prediction_id: str | None = None,
    on_sending: Callable[[], None] | None = None,
    on_created: Callable[[Prediction], None] | None = None,
    on_downloading: Callable[[Prediction], None] | None = None,
    slot: AbstractContextManager[object] | None = None,
    booking: Booking | None = None,
) -> tuple[Prediction, StoredImage]:
    """Create (or resume `prediction_id`), wait, and store the image at `dest` plus suffix.

    `slot`, when given, is held from before the create until the prediction has finished:
    the download needs no slot, since Replicate is no longer working on the image.
    """
    with slot or nullcontext():
        if prediction_id is None:
            if booking is not None:
                booking.before_create()
            if on_sending is not None:
                on_sending()
            try:
                prediction = provider.create(prompt=prompt, spec=spec, deadline=deadline)
            except GenerationError as exc:
                if booking is not None and exc.surely_not_created:
                    booking.not_created()
                raise
            # The id is stored first: that can free the slot for the next image at once,
            # and a booking left unsettled by a crash in between is settled when the row
            # resumes (Booking.resumed).
            if on_created is not None:
                on_created(prediction)
            if booking is not None:
                booking.created(prediction.id)
        else:
            prediction = provider.get(prediction_id)
        prediction = provider.wait(prediction, deadline=deadline)
    if on_downloading is not None:
        on_downloading(prediction)
    return prediction, provider.download(prediction, dest)


@dataclass(frozen=True)
class GeneratedImage:
    id: str
    path: Path
    media_type: str
    prompt: str
    model: str
    provider: str
    elapsed_ms: int
    width: int
    height: int
    spec: CarSpec
    cached: bool = False
    checks: Inspection | None = None
    """The image's checks; None when the image was not checked."""
    rerolls: int = 0
    """Images made again because the first failed a check."""


class Studio:
    """Car Studio's engine for single images: the settings, prompts and provider in force."""

    def __init__(self, settings: Settings, provider: Provider | None = None) -> None:
        self.settings = settings
        self.prompts: PromptBook = load_prompt_book(settings.prompts_file)
        self.provider: Provider = provider or build_provider(settings, self.prompts)
        self._others: dict[str, Provider] = {}
        self._others_lock = threading.Lock()
        self.reviewer = Reviewer.of(settings)
        """Checks every image and says when it is made again."""
        settings.ensure_dirs()

    def provider_for(self, model: str | None) -> Provider:
        """The provider for `model` (a name from the models table; None: the setting's).

        The offline preview draws the same placeholder whatever model was asked for, so it
        serves every request; an unknown name is refused either way.
        """
        if model is None or model == self.provider.model:
            return self.provider
        if self.provider.name == "preview":
            if model != self.provider.model:
                requested_model(model)
            return self.provider
        chosen = requested_model(model)
        with self._others_lock:
            provider = self._others.get(chosen.name)
            if provider is None:
                provider = build_provider(self.settings, self.prompts, chosen)
                self._others[chosen.name] = provider
        return provider

    @property
    def single_dir(self) -> Path:
        return self.settings.images_dir / "single"

    def generate(
        self,
        spec: CarSpec,
        *,
        model: str | None = None,
        slot: AbstractContextManager[object] | None = None,
        booking: Callable[[Provider, str], Booking] | None = None,
        cache: ImageCache | None = None,
        fresh: bool = False,
        output: str | None = None,
        reroll_slot: Callable[[], AbstractContextManager[object]] | None = None,
    ) -> GeneratedImage:
        """Make one image now and keep it in the data directory; `slot` is held while
        Replicate works on it (see `run_prediction`). With a `cache`, an identical request
        made before is answered from it, unless `fresh` asks for a new image.

        The image is checked; one that fails is made once more (holding `reroll_slot()`
        meanwhile) and the better of the two kept. It is delivered in the `output` preset."""
        provider = self.provider_for(model)
        preset = requested_preset(output, self.settings.output)
        started = time.monotonic()
        image_id = uuid.uuid4().hex
        prompt = self.prompts.build(spec)
        dest = self.single_dir / image_id / image_stem(spec)
        key = cache_key(provider, prompt=prompt, spec=spec)
        book = None if booking is None else booking(provider, image_id)
        hit = None if cache is None or fresh else cache.copy_to(key, dest)
        if hit is not None:
            if book is not None:
                book.cached()
            stored = StoredImage(
                path=hit.path, media_type=media_type_of(hit.path), size=hit.path.stat().st_size
            )
        else:
            _, stored = run_prediction(
                provider,
                prompt=prompt,
                spec=spec,
                dest=dest,
                deadline=started + self.settings.prediction_deadline,
                slot=slot,
                booking=book,
            )
        checks = self.reviewer.inspect(
            stored.path,
            spec=spec,
            model=provider.model,
            preset=preset,
            kept=None if hit is None else hit.checks,
        )
        rerolls = 0
        if hit is None and self.reviewer.wants_reroll(checks, 0):
            rerolls = 1
            stored, checks = self._reroll(
                provider,
                prompt=prompt,
                spec=spec,
                preset=preset,
                first=stored,
                checks=checks,
                slot=reroll_slot() if reroll_slot is not None else None,
                booking=None if booking is None else booking(provider, image_id),
            )
        if hit is None and cache is not None and not checks.failed:
            kept = self.reviewer.kept_with_image(checks, spec=spec)
            cache.keep(key, stored.path, model=provider.model, checks=kept)
        said = labels(model=provider.model, prompt=prompt, values=spec.as_row())
        final = deliver_in_place(stored.path, preset=preset, labels=said, spec=spec)
        stored = StoredImage(path=final, media_type=media_type_of(final), size=final.stat().st_size)
        width, height = image_size(stored)
        return GeneratedImage(
            id=image_id,
            path=stored.path,
            media_type=stored.media_type,
            prompt=prompt,
            model=provider.model,
            provider=provider.name,
            elapsed_ms=round((time.monotonic() - started) * 1000),
            width=width,
            height=height,
            spec=spec,
            cached=hit is not None,
            checks=checks,
            rerolls=rerolls,
        )

    def _reroll(
        self,
        provider: Provider,
        *,
        prompt: str,
        spec: CarSpec,
        preset: OutputPreset,
        first: StoredImage,
        checks: Inspection,
        slot: AbstractContextManager[object] | None,
        booking: Booking | None,
    ) -> tuple[StoredImage, Inspection]:
        """Make a failed image once more and keep the better of the two; the first stays
        when the re-roll is refused or fails (a refusal is never tried again)."""
        parked = first.path.with_name(f".first{first.path.suffix}")
        first.path.rename(parked)
        try:
            _, second = run_prediction(
                provider,
                prompt=prompt,
                spec=spec,
                dest=first.path.with_suffix(""),
                deadline=time.monotonic() + self.settings.prediction_deadline,
                slot=slot,
                booking=booking,
            )
        except GenerationError:
            parked.rename(first.path)
            return first, checks
        second_checks = self.reviewer.inspect(
            second.path, spec=spec, model=provider.model, preset=preset
        )
        if keeps_first(checks, second_checks):
            second.path.unlink()
            parked.rename(first.path)
            return first, checks
        parked.unlink()
        return second, second_checks

    def single_image(self, image_id: str, name: str) -> Path:
        """A single image's file, found by listing its folder, never by joining input."""
        if _IMAGE_ID.fullmatch(image_id):
            folder = self.single_dir / image_id
            for path in folder.glob("*") if folder.is_dir() else ():
                if path.name == name and path.suffix in {".png", ".jpg", ".webp"}:
                    return path
        raise NotFound("There is no such image; images are kept for a few hours.")

    def close(self) -> None:
        self.provider.close()
        with self._others_lock:
            for provider in self._others.values():
                provider.close()
            self._others.clear()


def image_size(stored: StoredImage) -> tuple[int, int]:
    with Image.open(stored.path) as image:
        return image.size


def media_type_of(path: Path) -> str:
    return {".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".webp": "image/webp"}.get(
        path.suffix.lower(), "image/png"
    )
