"""The seed deployment's `userlist` format: `name` or `name admin`, one per line."""

import pytest

from berth.config.userlist import UserlistEntry, UserlistError, parse_userlist


def test_the_seed_example():
    text = "jtyberg admin\njenny\nguido\n"
    assert parse_userlist(text) == [
        UserlistEntry("jtyberg", True, 1),
        UserlistEntry("jenny", False, 2),
        UserlistEntry("guido", False, 3),
    ]


def test_blank_lines_comments_and_spacing_are_ignored():
    text = "# staff\n\n  alice   admin  # owner\n\tbob\n   \n"
    assert [(e.name, e.admin, e.line) for e in parse_userlist(text)] == [
        ("alice", True, 3),
        ("bob", False, 4),
    ]


def test_names_are_lowercased_like_jupyterhub_does():
    assert parse_userlist("JTyberg admin")[0].name == "jtyberg"


def test_empty_file_is_an_empty_list():
    assert parse_userlist("") == []
    assert parse_userlist("# nobody yet\n") == []


@pytest.mark.parametrize(
    ("text", "line", "fragment"),
    [
        ("alice\njenny admn\n", 2, "expected 'NAME' or 'NAME admin'"),
        ("alice admin extra\n", 1, "expected 'NAME' or 'NAME admin'"),
        ("bob\nADMIN\n", None, None),  # a user called "admin" is fine on its own
        ("a/b\n", 1, "contains '/'"),
        ("a,b admin\n", 1, "contains ','"),
        ("..\n", 1, "only dots"),
        ("alice\nbob\nAlice admin\n", 3, "already listed on line 1"),
    ],
)
def test_bad_lines_name_the_file_and_line(text, line, fragment):
    if line is None:
        assert [e.name for e in parse_userlist(text)] == ["bob", "admin"]
        return
    with pytest.raises(UserlistError) as info:
        parse_userlist(text, "secrets/userlist")
    assert info.value.line == line
    assert fragment in info.value.message
    assert str(info.value).startswith(f"secrets/userlist:{line}: ")
