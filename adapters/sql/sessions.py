"""One transaction per repository call, over either a caller's Session or a session factory."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy.orm import Session, sessionmaker

SessionSource = Session | sessionmaker[Session]


@contextmanager
def transaction(source: SessionSource) -> Iterator[Session]:
    """A session whose work is committed on success and rolled back on any exception.

    Given a ``Session`` (the seed's ``SqlStatusRepository(db)``), the work happens and is
    committed in that very session, so that the caller's ``db.refresh(record)`` sees it; such
    a repository belongs to one thread. Given a factory, each call gets a short session of its
    own, which makes the repository safe to share between threads.
    """
    if isinstance(source, Session):
        try:
            yield source
            source.commit()
        except BaseException:
            source.rollback()
            raise
        return
    with source() as session, session.begin():
        yield session
