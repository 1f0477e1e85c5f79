"""`berth up`'s request for the accounts of berth.yaml's names, and how it reads the answer."""

import inspect

from berth.config import config_from_data
from berth.deploy import accounts
from berth.deploy.listed import ListedAccounts, ensure_listed, ensure_request, read_answer


def users(**section):
    return config_from_data({"users": section}).users


def test_every_listed_name_is_asked_for_once_admins_as_admins():
    wanted = ensure_request(users(admins=["alice"], allowed=["Bob", "alice", "-carol"]))
    assert wanted == {"op": "ensure-listed", "admins": ["alice"], "users": ["bob", "-carol"]}


def test_the_hub_side_reads_back_every_name():
    wanted = ensure_request(users(admins=["-a", "b"], allowed=["--c", "d"]))
    fields = {key: value for key, value in wanted.items() if key != "op"}
    bound = inspect.signature(accounts.OPERATIONS[wanted["op"]]).bind(**fields)
    assert bound.arguments == {"admins": ["-a", "b"], "users": ["--c", "d"]}


def test_nobody_listed_means_no_exec():
    def never(args):
        raise AssertionError(f"ran {args}")

    assert ensure_listed(never, users()) == ListedAccounts()


def test_the_answer_becomes_passwords_notes_and_refusals():
    answer = {
        "accounts": [
            {"name": "alice", "admin": True, "password": "pw-a"},
            {"name": "bob", "admin": False, "password": "pw-b"},
            {"name": "carol", "admin": True, "refused": "carol: not an admin"},
            {"name": "dave", "admin": False, "note": "dave waits"},
            {"name": "erin", "admin": False},
        ]
    }
    assert read_answer(answer) == ListedAccounts(
        made=[("alice", "pw-a", True), ("bob", "pw-b", False)],
        notes=["dave waits"],
        refused=["carol: not an admin"],
    )
