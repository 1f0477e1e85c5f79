"""Which local accounts the operator made: Berth's record next to NativeAuthenticator's table.

NativeAuthenticator's ``users_info`` table cannot tell an account made by `berth up` or
`berth users add` from one made by whoever signed up first with that name. Admin rights must
only ever go to the former, so Berth keeps its own table, ``berth_accounts``, in the hub's
database (it follows the database through backups and a PostgreSQL ``db_url``). A row here
means "this account was made by the operator's tools"; it is removed with the account and
whenever a sign-up makes an account of that name, so it never vouches for a newer account.
"""

from __future__ import annotations

from jupyterhub.orm import Base
from jupyterhub.utils import utcnow
from sqlalchemy import Column, DateTime, Unicode
from sqlalchemy.orm import Session


class OperatorAccount(Base):
    __tablename__ = "berth_accounts"
    # The normalized user name, as in users_info.username (NativeAuthenticator's own column
    # is 128 characters long; JupyterHub's is 255).
    username = Column(Unicode(255), primary_key=True)
    made_by = Column(Unicode(64), nullable=False)  # "berth up", "berth users add", ...
    made_at = Column(DateTime, nullable=False, default=lambda: utcnow(with_tz=False))


def ensure_table(db: Session) -> None:
    OperatorAccount.__table__.create(db.get_bind(), checkfirst=True)


def made_by_operator(db: Session, name: str) -> bool:
    return db.get(OperatorAccount, name) is not None


def record(db: Session, name: str, made_by: str) -> None:
    """Note that the operator's tools made (or re-made) the account `name`; commits."""
    if db.get(OperatorAccount, name) is None:
        db.add(OperatorAccount(username=name, made_by=made_by))
    db.commit()


def forget(db: Session, name: str) -> None:
    """The account `name` is gone or was made by someone else: drop any record; commits."""
    row = db.get(OperatorAccount, name)
    if row is not None:
        db.delete(row)
    db.commit()
