"""Who is asking: the one idea of identity the rest of Car Studio needs."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Viewer:
    """Who is asking. `user_id` None means sign-in is off: the one person sees everything."""

    user_id: int | None = None
    name: str = ""
    admin: bool = False
    session_version: int = 0

    def sees(self, owner_id: int | None) -> bool:
        return self.user_id is None or self.admin or owner_id == self.user_id

    @property
    def owner_id(self) -> int | None:
        """What a batch or image this viewer makes records as its owner."""
        return self.user_id


ANYONE = Viewer()
