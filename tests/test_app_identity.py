"""Who a session is, in the app's three modes (ui.identity, drawn by page_setup), under Streamlit's AppTest.

local: unchanged (the machine's user, nothing asked, the URL untouched). class: the join form, a join puts
the key in the address, a reload with ?key= is the same student, the teacher's link opens the teacher;
a wrong code, a forged key, a wrong token are refused with one sentence and no traceback, and the rate
limit shows up in the page. public: a visitor gets a key of their own. A key appears in the page only in its
holder's own link.
"""

from __future__ import annotations

import pytest

from catdnn import classroom
from catdnn.classroom import ClassStore, RateLimiter
from tests.app_support import ENTRY, PAGES, TRAIN, app, assert_clean, session_of
from ui import identity as ui_identity

TIMEOUT = 120


@pytest.fixture
def home(tmp_path, monkeypatch):
    """A fresh catdnn folder (its own class store) and fresh rate limiters for each test."""
    monkeypatch.setenv("CATDNN_HOME", str(tmp_path))
    monkeypatch.setattr(classroom, "FAILURES", RateLimiter(3, 100))
    monkeypatch.setattr(classroom, "JOINS", RateLimiter(50, 500))
    return tmp_path


@pytest.fixture
def klass(home, monkeypatch):
    """A class served in class mode: (its code, the teacher's token)."""
    with ClassStore(home / classroom.FILE_NAME) as store:
        info, token = store.start_class("Period 3")
    monkeypatch.setenv(classroom.MODE_ENV, "class")
    monkeypatch.setenv(classroom.CLASS_ENV, info.code)
    return info.code, token


def page_text(at) -> str:
    """Everything the page shows as text (markdown, captions, alerts, titles, code, widgets' labels and values)."""
    parts = []
    for kind in ("markdown", "caption", "error", "warning", "info", "success", "title", "header", "subheader",
                 "code", "text", "text_input", "metric"):
        for element in at.get(kind):
            parts.append(str(getattr(element, "value", "")))
            parts.append(str(getattr(element, "label", "")))
    return "\n".join(parts)


def refused(at) -> str:
    assert_clean(at)
    assert at.error, "no refusal shown"
    return at.error[0].value


def join(at, code: str, name: str):
    at.text_input(key=ui_identity.CODE_KEY).input(code)
    at.text_input(key=ui_identity.NAME_KEY).input(name)
    at.button(key=ui_identity.JOIN_BUTTON).click().run()
    return at


# ---------------------------------------------------------------------------------------------- local
def test_local_mode_asks_nothing_and_leaves_the_address_alone(home, monkeypatch):
    monkeypatch.delenv(classroom.MODE_ENV, raising=False)
    at = app(ENTRY).run()
    assert_clean(at)
    who = session_of(at).identity
    assert who.role == "owner" and who.owner == session_of(at).owner and not who.sees_all
    assert at.query_params == {} and not at.error
    assert not at.get("text_input") or all(t.key != ui_identity.CODE_KEY for t in at.text_input)


# ---------------------------------------------------------------------------------------------- class
def test_a_student_joins_gets_a_key_in_the_address_and_a_reload_keeps_them(klass):
    code, _token = klass
    at = app(ENTRY)
    at.query_params["join"] = code
    at.run()
    assert_clean(at)
    assert at.text_input(key=ui_identity.CODE_KEY).value == code  # prefilled from ?join=
    assert "Join the class" in page_text(at)
    join(at, code, "Ana")
    assert_clean(at)
    ana = session_of(at).identity
    assert (ana.role, ana.name, ana.class_code) == ("student", "Ana", code)
    key = at.query_params["key"]
    assert key == ana.key and "join" not in at.query_params
    assert "Bookmark this page's address" in page_text(at)
    # A reload (a new session) with ?key= is the same student, without the form.
    again = app(TRAIN)
    again.query_params["key"] = key
    again.run()
    assert_clean(again)
    assert session_of(again).identity == ana
    assert again.query_params["key"] == key  # the Train page's settings link keeps it
    assert "not a setting" not in page_text(again)
    assert "Join the class" not in page_text(again)


def test_the_teacher_link_opens_the_teacher(klass):
    code, token = klass
    at = app(ENTRY)
    at.query_params["teacher"] = token
    at.run()
    assert_clean(at)
    who = session_of(at).identity
    assert who.role == "teacher" and who.sees_all and who.class_code == code
    assert at.query_params["teacher"] == token and token not in page_text(at)


@pytest.mark.parametrize("param, value, message", [
    ("key", "forged-key-forged-key-forged-key", "key is not known"),
    ("teacher", "forged-token-forged-token-forged", "teacher link is not valid"),
])
def test_a_forged_key_or_token_is_refused_in_one_sentence(klass, param, value, message):
    at = app(ENTRY)
    at.query_params[param] = value
    at.run()
    assert message in refused(at)
    assert session_of(at).identity is None
    assert value not in page_text(at)
    assert not at.get("plotly_chart") and "Join the class" not in page_text(at)  # nothing else runs


def test_a_wrong_class_code_is_refused_then_rate_limited(klass):
    code, _token = klass
    at = app(ENTRY).run()
    for _ in range(3):
        join(at, "WRONGONE", "Eve")
        assert "class code is not this server's" in refused(at)
        assert session_of(at).identity is None
    join(at, code, "Eve")  # the right code, too late: this client must wait
    assert "Too many attempts" in refused(at)
    assert session_of(at).identity is None


def test_another_class_key_or_a_visitor_key_opens_nothing(klass, home):
    with ClassStore(home / classroom.FILE_NAME) as store:
        other, _ = store.start_class("Period 4")
        bob = store.join(other.code, "Bob")
        visitor = store.visitor()
    for key in (bob.key, visitor.key):
        at = app(ENTRY)
        at.query_params["key"] = key
        at.run()
        assert "key is not known" in refused(at)


def test_every_page_asks_a_newcomer_to_join_first(klass):
    for page in PAGES:
        at = app(page).run()
        assert_clean(at)
        assert "Join the class" in page_text(at), page
        assert session_of(at).identity is None


# ---------------------------------------------------------------------------------------------- public
def test_a_public_visitor_gets_a_key_of_their_own(home, monkeypatch):
    monkeypatch.setenv(classroom.MODE_ENV, "public")
    first, second = app(ENTRY).run(), app(ENTRY).run()
    assert_clean(first)
    a, b = session_of(first).identity, session_of(second).identity
    assert a.role == b.role == "visitor" and a.owner != b.owner
    assert first.query_params["key"] == a.key and not a.may_see(b.owner)
    again = app(ENTRY)
    again.query_params["key"] = a.key
    again.run()
    assert session_of(again).identity == a
    assert b.key not in page_text(first)
