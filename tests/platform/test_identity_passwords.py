"""Password policy and argon2id hashing (no database)."""

from __future__ import annotations

from formloom.platform.passwords import (
    generate_password,
    hash_password,
    password_issues,
    verify,
)


def codes(password: str, login: str = "zhang.wei") -> list[str]:
    return [i.code for i in password_issues(password, login=login, lang="en")]


def test_policy_accepts_a_long_mixed_password():
    assert codes("correct horse 42") == []
    assert codes("only-letters-and-dashes") == []


def test_policy_lists_every_broken_rule():
    assert codes("short1") == ["password_too_short"]
    assert codes("abcdefghijkl") == ["password_too_simple"]
    assert codes("1234567890") == ["password_too_simple"]
    assert codes("aaaa") == ["password_too_short", "password_too_simple"]
    assert codes("x" * 1025 + "1") == ["password_too_long"]


def test_policy_refuses_the_login_in_any_case():
    assert codes("Zhang.Wei.2026", login="zhang.wei.2026") == ["password_is_login"]


def test_policy_messages_in_chinese_and_never_quoting_the_password():
    issues = password_issues("secret", login="li", lang="zh")

    assert [i.path for i in issues] == ["/password", "/password"]
    assert "至少需要 10 个" in issues[0].message
    assert all("secret" not in i.message for i in issues)


def test_hash_is_argon2id_and_never_the_password():
    # when
    stored = hash_password("correct horse 42", profile="standard")

    # then
    assert stored.startswith("$argon2id$v=19$m=65536,t=3,p=4$")
    assert "correct horse 42" not in stored
    assert stored != hash_password("correct horse 42", profile="standard")  # salted
    assert verify(stored, "correct horse 42", profile="standard").ok
    assert not verify(stored, "correct horse 43", profile="standard").ok


def test_a_hash_made_with_other_parameters_needs_a_rehash():
    cheap = hash_password("correct horse 42", profile="fast")

    checked = verify(cheap, "correct horse 42", profile="standard")

    assert checked.ok and checked.needs_rehash
    assert not verify(cheap, "correct horse 42", profile="fast").needs_rehash


def test_no_stored_hash_never_verifies():
    assert not verify(None, "formloom dummy password 0", profile="fast").ok
    assert not verify("not a hash", "anything 123", profile="fast").ok


def test_generated_passwords_meet_the_policy():
    for _ in range(50):
        assert codes(generate_password(), login="admin") == []
