"""The image cache: an image kept by exactly what was asked for (the model and its input), so
asking again costs nothing. Shared by every worker through the store and the data directory,
and kept CARSTUDIO_CACHE_DAYS after it was last used, longer than a batch's own files.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
import uuid
from collections.abc import Callable, Collection
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import Table, bindparam, delete, select, update
from sqlalchemy.dialects import postgresql, sqlite

from carstudio.jobs.models import CachedImage
from carstudio.jobs.store import Store
from carstudio.providers import Provider
from carstudio.spec import CarSpec

_CACHED: Table = CachedImage.__table__  # type: ignore[assignment]
_ENTRY = select(_CACHED.c.file_name, _CACHED.c.checks).where(_CACHED.c.key == bindparam("key"))
"""Built once: every row asks, the moment it takes its slot."""


@dataclass(frozen=True)
class CachedCopy:
    """A cached image put where a row or single image wants it."""

    path: Path
    checks: dict[str, Any] | None
    """Its checks when it was kept (`Reviewer.kept_with_image`), if any were kept."""


def cache_key(provider: Provider, *, prompt: str, spec: CarSpec) -> str:
    """The same key for the same request: the model and every input it is sent."""
    request = {"model": provider.model, "input": provider.input_for(prompt=prompt, spec=spec)}
    return hashlib.sha256(json.dumps(request, sort_keys=True).encode()).hexdigest()


class ImageCache:
    def __init__(
        self,
        store: Store,
        folder: Path,
        *,
        days: float,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.folder = folder
        self.days = days
        self.clock = clock

    def copy_to(self, key: str, dest: Path) -> CachedCopy | None:
        """Put the cached image for `key` at `dest` (plus its suffix); None when there is none."""
        # Most looks find nothing: they read without waiting for the store's writers, which
        # matters as each row looks the moment it takes its slot.
        with self.store.reading() as s:
            entry = s.execute(_ENTRY, {"key": key}).first()
        if entry is None:
            return None
        file_name: str = entry.file_name
        checks: dict[str, Any] | None = entry.checks
        with self.store.session() as s:
            s.execute(
                update(CachedImage).where(CachedImage.key == key).values(last_used_at=self.clock())
            )
        source = self.folder / file_name
        if not source.is_file():
            return None  # removed by hand, or by a cleanup in between: make it anew
        final = dest.with_suffix(source.suffix)
        final.parent.mkdir(parents=True, exist_ok=True)
        tmp = final.with_name(f".{final.name}.{uuid.uuid4().hex[:8]}.part")
        shutil.copyfile(source, tmp)
        os.replace(tmp, final)
        return CachedCopy(final, checks)

    def keep(
        self, key: str, image: Path, *, model: str, checks: dict[str, Any] | None = None
    ) -> None:
        """Keep a newly made image under its key, with its `checks` (the first one made for a
        key stays)."""
        self.folder.mkdir(parents=True, exist_ok=True)
        name = f"{key}{image.suffix}"
        target = self.folder / name
        if not target.exists():
            tmp = target.with_name(f".{name}.{uuid.uuid4().hex[:8]}.part")
            shutil.copyfile(image, tmp)
            os.replace(tmp, target)
        now = self.clock()
        values = {
            "key": key,
            "file_name": name,
            "model": model,
            "created_at": now,
            "last_used_at": now,
            "checks": checks,
        }
        with self.store.session() as s:
            dialect = (
                postgresql if s.bind is not None and s.bind.dialect.name == "postgresql" else sqlite
            )
            s.execute(dialect.insert(CachedImage).values(**values).on_conflict_do_nothing())

    def has(self, key: str) -> bool:
        return key in self.held([key])

    def held(self, keys: Collection[str]) -> set[str]:
        """Which of `keys` the cache holds an image for, in one read (a batch asks for all of
        its rows at once, as its estimate is made)."""
        with self.store.reading() as s:
            entries = list(s.scalars(select(CachedImage).where(CachedImage.key.in_(set(keys)))))
        return {entry.key for entry in entries if (self.folder / entry.file_name).is_file()}

    def cleanup(self) -> int:
        """Forget images unused for CARSTUDIO_CACHE_DAYS; returns how many."""
        cutoff = self.clock() - self.days * 86400
        with self.store.session() as s:
            old = list(s.scalars(select(CachedImage).where(CachedImage.last_used_at < cutoff)))
            s.execute(delete(CachedImage).where(CachedImage.last_used_at < cutoff))
        for entry in old:
            (self.folder / entry.file_name).unlink(missing_ok=True)
        return len(old)
