"""Who a session is, in the app's three modes (ui.identity, drawn by page_setup), under Streamlit's AppTest.

local: unchanged (the machine's user, nothing asked, the URL untouched). class: the join form, a join puts
the key in the address, a reload with ?key= is the same student, the teacher's link opens the teacher;
a wrong code, a forged key, a wrong token are refused with one sentence and no traceback, and the rate
limit shows up in the page. public: a visitor gets a key of their own. A key appears in the page only in its
holder's own link.
"""

from __future__ import annotations

from dataclasses import replace

import pytest

from catdnn import classroom
from catdnn.classroom import ClassStore
from catdnn.history import History
from tests.app_support import ENTRY, PAGES, RUNS, TRAIN, app, assert_clean, class_home, session_of
from tests.history_support import TINY, tiny_model
from ui import identity as ui_identity

TIMEOUT = 120


@pytest.fixture
def home(tmp_path, monkeypatch):
    """A fresh class-mode home for each test (:func:`tests.app_support.class_home`)."""
    return class_home(tmp_path, monkeypatch)


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


def test_a_mode_that_does_not_exist_is_one_sentence(home, monkeypatch):
    monkeypatch.setenv(classroom.MODE_ENV, "admin")
    at = app(ENTRY).run()
    assert "not a mode of catdnn" in refused(at)


def test_a_class_store_that_cannot_be_opened_is_one_sentence_without_the_servers_folders(home, monkeypatch):
    (home / classroom.FILE_NAME).mkdir()  # a folder where the store's file belongs
    monkeypatch.setenv(classroom.MODE_ENV, "public")
    at = app(ENTRY).run()
    message = refused(at)
    assert "cannot open its class store" in message and str(home) not in message


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
    assert "share the link under the form instead" in page_text(again)  # the address holds the key too
    assert key not in page_text(again)  # only its holder's own link (st.context.url: none under AppTest) shows it


def test_the_key_comes_back_into_the_address_after_a_page_switch(klass):
    code, _token = klass
    at = join(app(ENTRY).run(), code, "Ana")
    key = session_of(at).identity.key
    at.query_params.clear()  # Streamlit may drop them when the visitor switches pages
    at.switch_page(TRAIN).run()
    assert_clean(at)
    assert at.query_params["key"] == key and session_of(at).identity.name == "Ana"


def test_the_teacher_link_opens_the_teacher_and_the_token_leaves_the_address(klass):
    """The teacher view is projected to the class: once checked, the token lives in the session only, never in
    the address bar (nor on any page), and the teacher is told a reload needs the teacher link again."""
    code, token = klass
    at = app(ENTRY)
    at.query_params["teacher"] = token
    at.run()
    assert_clean(at)
    who = session_of(at).identity
    assert who.role == "teacher" and who.sees_all and who.class_code == code
    assert "teacher" not in at.query_params and token not in page_text(at)
    assert "A reload or a new tab needs your teacher link again" in page_text(at)
    for page in [*PAGES, ENTRY]:  # the tab stays the teacher's on every page, the token never comes back
        at.switch_page(page).run()
        assert_clean(at)
        assert session_of(at).identity.role == "teacher", page
        assert token not in str(at.query_params) and token not in page_text(at), page
    assert ui_identity.own_link(who) == "" and ui_identity.link_params(who) == {}


def test_a_newer_serve_ends_the_open_teacher_session_in_one_sentence(klass, home):
    """Attack review: a rotated token (a new `catdnn serve`) left the open teacher tabs with the teacher's powers."""
    code, token = klass
    at = app(RUNS)
    at.query_params["teacher"] = token
    at.run()
    assert session_of(at).identity.role == "teacher"
    with ClassStore(home / classroom.FILE_NAME) as store:
        store.start_class("Period 3")  # `catdnn serve --class "Period 3"` again: a new token
    at.run()
    assert "no longer has the teacher's powers" in refused(at)
    assert session_of(at).identity is None
    at.run()  # and after: a newcomer's join form, nothing of the teacher's
    assert session_of(at).identity is None and "Join the class" in page_text(at)


def test_a_removed_student_open_session_ends(klass, home):
    code, _token = klass
    at = join(app(ENTRY).run(), code, "Ana")
    ana = session_of(at).identity
    with ClassStore(home / classroom.FILE_NAME) as store:
        assert store.remove_member(code, ana.owner)
    at.switch_page(TRAIN).run()
    assert "key is not known" in refused(at)
    assert session_of(at).identity is None


def _student_tab(key: str):
    at = app(ENTRY)
    at.query_params["key"] = key
    return at.run()


def test_a_link_with_another_key_asks_before_it_switches_an_open_session(klass, home):
    """Attack review: Ana's open tab, given a link with Mallory's key, silently became Mallory's."""
    code, _token = klass
    with ClassStore(home / classroom.FILE_NAME) as store:
        ana, mallory = store.join(code, "Ana"), store.join(code, "Mallory")
    at = _student_tab(ana.key)
    at.query_params["key"] = mallory.key  # a link Mallory sent ("look at my settings!") reaches Ana's tab
    at.run()
    assert_clean(at)
    assert session_of(at).identity.owner == ana.owner
    assert at.query_params["key"] == ana.key  # her own key back in the address
    assert "this tab stays as it was: Ana" in at.warning[0].value
    at.run()  # she goes on without pressing the button: still Ana, nothing more asked
    assert session_of(at).identity.owner == ana.owner and not at.warning
    at.query_params["key"] = mallory.key
    at.run()
    at.button(key=ui_identity.SWITCH_BUTTON).click().run()  # a deliberate switch
    assert_clean(at)
    assert session_of(at).identity.owner == mallory.owner and at.query_params["key"] == mallory.key


def test_the_teacher_link_in_a_student_tab_asks_too_and_a_forged_switch_keeps_the_student(klass, home):
    code, token = klass
    with ClassStore(home / classroom.FILE_NAME) as store:
        ana = store.join(code, "Ana")
    at = _student_tab(ana.key)
    at.query_params["teacher"] = token
    at.run()
    assert session_of(at).identity.owner == ana.owner and "the teacher's link" in at.warning[0].value
    assert "teacher" not in at.query_params
    at.query_params["key"] = "forged-forged-forged-forged-forg"
    at.run()
    at.button(key=ui_identity.SWITCH_BUTTON).click().run()
    assert "key is not known" in refused(at)
    assert session_of(at).identity.owner == ana.owner  # a refused switch leaves the tab as it was


def test_the_train_page_share_link_holds_the_settings_without_the_key(klass, home):
    """Attack review: the Train page's shareable address held the key, so sharing settings handed over the
    sharer. The address keeps the key (her own reload); the link to share, under the form, does not."""
    from catdnn.share import config_from_query

    code, _token = klass
    with ClassStore(home / classroom.FILE_NAME) as store:
        ana = store.join(code, "Ana")
    at = app(TRAIN)
    at.query_params.update({"key": ana.key, "lr": "0.02"})
    at.run()
    assert_clean(at)
    assert at.query_params["key"] == ana.key and at.query_params["lr"] == "0.02"
    shared = [c.value for c in at.code if c.value.startswith("?")]
    assert len(shared) == 1 and ana.key not in shared[0] and "key=" not in shared[0]
    query = dict(part.split("=", 1) for part in shared[0][1:].split("&"))
    settings = {k: v for k, v in at.query_params.items() if k != "key"}
    assert config_from_query(query)[0] == config_from_query(settings)[0]
    other = app(TRAIN)  # Mallory opens it in her own tab: the settings, and her own join form (no identity)
    other.query_params.update(query)
    other.run()
    assert session_of(other).identity is None and "Join the class" in page_text(other)


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


def test_forged_keys_are_rate_limited_too(klass, home):
    with ClassStore(home / classroom.FILE_NAME) as store:
        ana = store.join(klass[0], "Ana")
    for i in range(3):
        at = app(ENTRY)
        at.query_params["key"] = f"forged-{i}-" + "x" * 24
        at.run()
        assert "key is not known" in refused(at)
    at = app(ENTRY)
    at.query_params["key"] = "forged-3-" + "x" * 24  # one more guess, too soon
    at.run()
    assert "Too many attempts" in refused(at) and session_of(at).identity is None
    at = app(ENTRY)
    at.query_params["key"] = ana.key  # a real key, from the same client: never refused by the limit (only misses are)
    at.run()
    assert_clean(at)
    assert session_of(at).identity == ana


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


def model_line(at) -> str:
    """The sidebar's line on the tab's model."""
    (line,) = [c.value for c in at.sidebar.caption if "model" in c.value.lower()]
    return line


def keep_runs(viewer, models: int, without: int = 0) -> None:
    """Runs kept in the history as ``viewer``'s: ``models`` with a model, ``without`` without one (diverged)."""
    with History(viewer=viewer) as h:
        for seed in range(models):
            h.add(replace(TINY, seed=seed), status="finished", source="app", model=tiny_model())
        for _ in range(without):
            h.add(TINY, status="diverged", source="app")


def test_a_student_back_by_their_bookmark_is_told_to_load_one_of_their_own_saved_runs(klass, home):
    """A bookmarked link opens a new tab without models, and the sidebar said "No model trained yet." although the
    student's runs and models were on the server. It counts their own runs with a model (not a classmate's), points
    at the Runs page's "Use this model", which loads one, and says "No model trained yet." to one who has none."""
    code, _token = klass
    with ClassStore(home / classroom.FILE_NAME) as store:
        ana, bob, cy = store.join(code, "Ana"), store.join(code, "Bob"), store.join(code, "Cy")
    keep_runs(ana, models=2, without=1)
    keep_runs(bob, models=1)
    at = _student_tab(ana.key)
    assert_clean(at)
    assert model_line(at) == (
        "No model in this tab yet: load one of your 2 saved runs on the Runs page (Use this model).")
    assert model_line(_student_tab(bob.key)) == (
        "No model in this tab yet: load your saved run on the Runs page (Use this model).")
    assert model_line(_student_tab(cy.key)) == "No model trained yet."
    at.switch_page(RUNS).run()
    at.button(key="runs_reload").click().run()  # the Runs page's "Use this model", on the run it offers first
    assert_clean(at)
    assert session_of(at).current_model is not None and any("is now the current model" in s.value for s in at.success)
    assert model_line(at).startswith("Current model: ")  # at once, not after the next click


def test_a_visitor_and_the_local_user_are_told_of_their_saved_runs_too(home, monkeypatch):
    monkeypatch.setenv(classroom.MODE_ENV, "public")
    first = app(ENTRY).run()
    assert model_line(first) == "No model trained yet."
    keep_runs(session_of(first).identity, models=3)
    again = app(ENTRY)
    again.query_params["key"] = session_of(first).identity.key
    assert "one of your 3 saved runs on the Runs page" in model_line(again.run())
    assert model_line(app(ENTRY).run()) == "No model trained yet."  # another visitor: not the first one's runs
    monkeypatch.delenv(classroom.MODE_ENV)
    assert model_line(app(ENTRY).run()) == "No model trained yet."  # the visitor's runs are theirs, not the machine's
    keep_runs(None, models=1)  # the command line's run: the machine's user's, in every local tab
    assert "load your saved run on the Runs page" in model_line(app(ENTRY).run())


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


def test_a_link_with_another_visitor_key_asks_before_it_switches(home, monkeypatch):
    monkeypatch.setenv(classroom.MODE_ENV, "public")
    first, second = app(ENTRY).run(), app(ENTRY).run()
    a, b = session_of(first).identity, session_of(second).identity
    first.query_params.update({"key": b.key, "teacher": "anything"})  # public mode has no teacher: only the key counts
    first.run()
    assert_clean(first)
    assert session_of(first).identity == a and first.query_params == {"key": a.key}
    assert "someone else's key" in first.warning[0].value
    first.button(key=ui_identity.SWITCH_BUTTON).click().run()
    assert session_of(first).identity == b


def test_a_forged_key_in_public_mode_gets_one_sentence_and_no_new_key(home, monkeypatch):
    monkeypatch.setenv(classroom.MODE_ENV, "public")
    at = app(ENTRY)
    at.query_params["key"] = "forged-forged-forged-forged-forg"
    at.run()
    assert "without ?key= to start afresh" in refused(at)
    assert session_of(at).identity is None and at.query_params["key"] == "forged-forged-forged-forged-forg"
