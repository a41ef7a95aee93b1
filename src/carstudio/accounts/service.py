"""Users, passwords, API tokens and sign-in throttling, on the store's database.

Passwords are hashed with Argon2id. API tokens are shown once and kept only as a SHA-256
hash. A user name and address that keep failing to sign in wait longer each time.
"""

from __future__ import annotations

import functools
import hashlib
import math
import re
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session

from carstudio.accounts.models import ApiToken, SignInFailure, User
from carstudio.accounts.viewer import Viewer
from carstudio.errors import Conflict, InvalidInput, NotFound, TryLater
from carstudio.jobs.models import SingleImage
from carstudio.jobs.store import Store

TOKEN_PREFIX = "cs_"
FREE_ATTEMPTS = 5
"""Failed sign-ins allowed before each further one is made to wait."""
FIRST_WAIT = 30.0
LONGEST_WAIT = 15 * 60.0
MIN_PASSWORD = 10
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@-]{0,63}")
_HASHER = PasswordHasher()


@functools.cache
def _dummy_hash() -> str:
    """Verified when the name is unknown, so a wrong name costs as long as a wrong password.
    Made on first use: hashing is slow on purpose, and most commands never need it."""
    return _HASHER.hash(secrets.token_hex(16))


@dataclass(frozen=True)
class TokenInfo:
    id: int
    name: str
    user: str
    created_at: float
    last_used_at: float | None


class Accounts:
    """Every read and write of users and tokens."""

    def __init__(self, store: Store, *, clock: Callable[[], float] = time.time) -> None:
        self.store = store
        self.clock = clock

    # -- users ------------------------------------------------------------------------------

    def add_user(self, name: str, password: str, *, admin: bool = False) -> Viewer:
        if not _NAME.fullmatch(name):
            raise InvalidInput(
                "A user name is 1 to 64 letters, digits or . _ @ - and starts with a letter "
                "or digit."
            )
        _check_password(password)
        with self.store.session() as s:
            if s.scalar(select(User.id).where(func.lower(User.name) == name.lower())):
                raise Conflict(f"There is already a user called {name}.")
            user = User(
                name=name,
                password_hash=_HASHER.hash(password),
                admin=admin,
                created_at=self.clock(),
            )
            s.add(user)
            s.flush()
            return _viewer(user)

    def users(self) -> list[Viewer]:
        with self.store.session() as s:
            return [_viewer(user) for user in s.scalars(select(User).order_by(User.name))]

    def has_users(self) -> bool:
        with self.store.session() as s:
            return s.scalar(select(func.count()).select_from(User)) != 0

    def remove_user(self, name: str) -> None:
        with self.store.session() as s:
            user = self._named(s, name)
            s.execute(delete(ApiToken).where(ApiToken.user_id == user.id))
            s.delete(user)

    def set_password(self, name: str, password: str) -> None:
        """A new password; sessions signed in with the old one end."""
        _check_password(password)
        with self.store.session() as s:
            user = self._named(s, name)
            user.password_hash = _HASHER.hash(password)
            user.session_version += 1

    def viewer(self, user_id: int, session_version: int) -> Viewer | None:
        """The signed-in user of a session, if the user and that session still stand."""
        with self.store.session() as s:
            user = s.get(User, user_id)
            if user is None or user.session_version != session_version:
                return None
            return _viewer(user)

    @staticmethod
    def _named(s: Session, name: str) -> User:
        user = s.scalar(select(User).where(func.lower(User.name) == name.lower()))
        if user is None:
            raise NotFound(f"There is no user called {name}.")
        return user

    # -- signing in -------------------------------------------------------------------------

    def sign_in(self, name: str, password: str, *, address: str) -> Viewer:
        """The user, if the password is right; wrong tries from one address are slowed."""
        key = f"{name.strip().lower()[:64]}|{address[:100]}"
        now = self.clock()
        with self.store.session() as s:
            record = s.get(SignInFailure, key)
            if record is not None and record.locked_until > now:
                raise _wait(record.locked_until - now)
            user = s.scalar(select(User).where(func.lower(User.name) == name.strip().lower()))
            if user is not None and _verify(user.password_hash, password):
                if record is not None:
                    s.delete(record)
                if _HASHER.check_needs_rehash(user.password_hash):
                    user.password_hash = _HASHER.hash(password)
                return _viewer(user)
            if user is None:
                _verify(_dummy_hash(), password)
            if record is None:
                record = SignInFailure(key=key, failures=0, locked_until=0.0)
                s.add(record)
            record.failures += 1
            extra = record.failures - FREE_ATTEMPTS
            if extra >= 0:
                record.locked_until = now + min(FIRST_WAIT * 2**extra, LONGEST_WAIT)
        raise InvalidInput("That user name and password do not match.")

    # -- API tokens -------------------------------------------------------------------------

    def create_token(self, user_name: str, token_name: str) -> str:
        """A new API token for the user; the only time it is shown."""
        token = TOKEN_PREFIX + secrets.token_urlsafe(32)
        with self.store.session() as s:
            user = self._named(s, user_name)
            s.add(
                ApiToken(
                    user_id=user.id,
                    name=token_name.strip()[:64] or "token",
                    token_hash=_token_hash(token),
                    created_at=self.clock(),
                )
            )
        return token

    def tokens(self) -> list[TokenInfo]:
        with self.store.session() as s:
            rows = s.execute(
                select(ApiToken, User.name)
                .join(User, User.id == ApiToken.user_id)
                .order_by(ApiToken.id)
            ).all()
            return [TokenInfo(t.id, t.name, user, t.created_at, t.last_used_at) for t, user in rows]

    def revoke_token(self, token_id: int) -> None:
        with self.store.session() as s:
            removed = s.execute(delete(ApiToken).where(ApiToken.id == token_id))
            if not getattr(removed, "rowcount", 0):
                raise NotFound(f"There is no API token {token_id}.")

    def viewer_for_token(self, token: str) -> Viewer | None:
        if not token.startswith(TOKEN_PREFIX):
            return None
        with self.store.session() as s:
            found = s.execute(
                select(ApiToken.id, User)
                .join(User, User.id == ApiToken.user_id)
                .where(ApiToken.token_hash == _token_hash(token))
            ).first()
            if found is None:
                return None
            token_id, user = found
            s.execute(
                update(ApiToken).where(ApiToken.id == token_id).values(last_used_at=self.clock())
            )
            return _viewer(user)

    # -- single images ----------------------------------------------------------------------

    def claim_image(self, image_id: str, viewer: Viewer) -> None:
        with self.store.session() as s:
            s.add(SingleImage(id=image_id, owner_id=viewer.owner_id, created_at=self.clock()))

    def may_see_image(self, image_id: str, viewer: Viewer) -> bool:
        if viewer.user_id is None:
            return True
        with self.store.session() as s:
            image = s.get(SingleImage, image_id)
            return image is not None and viewer.sees(image.owner_id)


def _viewer(user: User) -> Viewer:
    return Viewer(user.id, user.name, user.admin, user.session_version)


def _verify(password_hash: str, password: str) -> bool:
    try:
        return _HASHER.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def _check_password(password: str) -> None:
    if len(password) < MIN_PASSWORD:
        raise InvalidInput(f"A password needs at least {MIN_PASSWORD} characters.")


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _wait(seconds: float) -> TryLater:
    wait = math.ceil(seconds)
    return TryLater(
        f"Too many failed sign-ins for this name; try again in {wait} seconds.", retry_after=wait
    )
