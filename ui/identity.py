"""Who this browser session is: its :class:`~catdnn.classroom.Identity`, resolved once by :func:`identity_ui`
(``page_setup`` calls it right after the Host check) and read by every page with :func:`current`.

The server's mode (``$CATDNN_MODE``, :func:`catdnn.classroom.current_mode`) decides how:

- ``local``: the machine's user, as before the modes existed: ``Identity("owner", owner=<this session's
  token>)``. Nothing is asked, the URL is left alone.
- ``class``: ``?teacher=TOKEN`` opens the teacher view of the served class (``$CATDNN_CLASS``); ``?key=KEY``
  is a student who joined before (a reload, a bookmark); else a join form (the class code, prefilled from
  ``?join=CODE``, and a display name). After a join the student's key goes into the page's address, to
  bookmark.
- ``public``: ``?key=KEY`` is a visitor who came before; else a new visitor with a key of their own, put in
  the address.

A wrong code, key or token is refused with one sentence (no traceback) and the page stops; the store counts
the failure against the client's address (:data:`catdnn.classroom.FAILURES`). Streamlit may drop the query
parameters on a page switch, so every page run puts the session's own key back (:func:`link_params`). The
teacher's token is the exception: once checked it leaves the address (the teacher view is projected to the
class) and lives in the session only, so a reload needs the teacher link again. An open session is checked
against the store on every page run (a newer ``serve`` revokes the teacher's token, the teacher may remove a
student), and a link naming someone else in an open session asks before it switches (:data:`SWITCH_BUTTON`).
A key is shown only to its holder, in their own link; the Train page's link to share (:func:`share_link`)
holds the settings without it.
"""

from __future__ import annotations

import os
import sqlite3
import sys
from urllib.parse import urlencode

import streamlit as st

from catdnn import classroom
from catdnn.classroom import ClassroomError, ClassStore, Identity, JoinRefused
from catdnn.errors import CatdnnError

from . import state

#: The query parameters that carry who the visitor is; never settings of a page.
KEY_PARAM, TEACHER_PARAM, JOIN_PARAM = "key", "teacher", "join"
PARAMS = (KEY_PARAM, TEACHER_PARAM, JOIN_PARAM)
#: The join form's widgets.
CODE_KEY, NAME_KEY, JOIN_BUTTON = "join_code", "join_name", "join_button"
#: Set after a join, a new visitor's first page or the teacher link: the next page run says so once.
WELCOME_KEY = "identity_welcome"
#: A link naming someone else reached an open session: what it names (kept for one run), and the button
#: that switches to it.
PENDING_KEY, SWITCH_BUTTON = "identity_pending", "identity_switch"
#: What the teacher is told while their tab holds the teacher's powers.
TEACHER_NOTE = ("Your teacher token is kept in this tab only, never in its address, so the class cannot read it "
                "off a projected screen. A reload or a new tab needs your teacher link again: the terminal that "
                "ran `catdnn serve` printed it.")


@st.cache_resource(max_entries=8)
def _open_store(path: str) -> ClassStore:
    return ClassStore(path)


def class_store() -> ClassStore:
    """The server's class store (``classroom.sqlite3`` in the catdnn folder), opened once per server process.

    A store that cannot be opened raises :class:`ClassroomError` with a sentence for the visitor; the reason,
    which names the server's folders, goes to the server's log only."""
    try:
        return _open_store(str(classroom.default_path()))
    except ClassroomError as exc:
        print(f"catdnn: {exc}", file=sys.stderr, flush=True)
        message = "this server cannot open its class store: tell whoever runs it (its log says why)"
        raise ClassroomError(message) from None


def mode() -> str:
    """The server's mode: ``local``, ``class`` or ``public``."""
    return classroom.current_mode()


def current() -> Identity:
    """This session's identity, as :func:`identity_ui` resolved it (``page_setup`` runs it first on every page).

    In local mode a session that no page set up yet (a test's) is the machine's user with its session token."""
    s = state.session()
    if s.identity is not None:
        return s.identity
    if mode() == "local":
        return Identity("owner", owner=s.owner)
    raise ClassroomError("this session has no identity yet: every page calls page_setup() first")


def client() -> str:
    """The visitor's address, the rate limits' name for them ("" on this machine)."""
    try:
        ip = st.context.ip_address
    except Exception:  # no request context (a bare script run)
        return ""
    return ip if isinstance(ip, str) else ""  # AppTest's context gives a stand-in object


def secret_params(identity: Identity | None) -> dict[str, str]:
    """The query parameter that names ``identity`` with its secret: ``{"key": …}`` for a student or a visitor,
    ``{"teacher": …}`` for the teacher, nothing in local mode (what a link naming them carries)."""
    if identity is None or not identity.key:
        return {}
    return {TEACHER_PARAM if identity.role == "teacher" else KEY_PARAM: identity.key}


def link_params(identity: Identity | None = None) -> dict[str, str]:
    """The query parameters kept in every address the app writes for this person: a student's or a visitor's
    key (their own link, to reload and bookmark); nothing for the teacher, whose token leaves the address once
    checked (the teacher view is projected to the class), and nothing in local mode."""
    identity = current() if identity is None else identity
    return {} if identity.role == "teacher" else secret_params(identity)


def share_note(identity: Identity | None = None) -> str:
    """A sentence for a page whose address is meant to be shared when it also holds this person's key: share
    the link :func:`share_link` gives instead ("" when the address holds no secret, as in local mode)."""
    if not link_params(identity):
        return ""
    return (" Here the address also holds your private key (whoever opens it is you), so share the link under "
            "the form instead: it holds the settings only.")


def share_link(query: dict, identity: Identity | None = None) -> str:
    """A link to this page with the settings ``query`` and without this person's key, to share; "" when the
    page's own address holds no secret (local mode, the teacher) or there are no settings."""
    if not link_params(identity) or not query:
        return ""
    return _base_url() + "?" + urlencode({k: v for k, v in query.items() if k not in PARAMS}, safe=",")


def _base_url() -> str:
    """The page's address without its query ("" when unknown, as under AppTest)."""
    base = (st.context.url or "").split("?")[0]
    if base and "/" not in base.split("://", 1)[-1]:
        base += "/"  # the Home page's address, http://host:port
    return base


def settings_query() -> dict:
    """The page's query parameters without those naming who the visitor is (the Train page's settings); in local
    mode, where no parameter names anyone, all of them (as before the modes existed)."""
    query = st.query_params.to_dict()
    return query if mode() == "local" else {k: v for k, v in query.items() if k not in PARAMS}


def own_link(identity: Identity | None = None) -> str:
    """This person's own link (the app's address with their key), to bookmark; "" when there is none."""
    params, base = link_params(identity), _base_url()
    if not params or not base:
        return ""
    return base + "?" + "&".join(f"{k}={v}" for k, v in params.items())  # keys are URL-safe (token_urlsafe)


def _param(name: str) -> str:
    value = st.query_params.get(name, "")
    return str(value or "").strip()


def _served_class() -> str:
    served = os.environ.get(classroom.CLASS_ENV, "").strip()
    if not served:
        raise ClassroomError(f"this server runs in class mode without a class (${classroom.CLASS_ENV} is not set): "
                             "start it with `python -m catdnn serve --class \"Period 3\"`")
    return served


def _refuse(exc: Exception) -> None:
    """One sentence for a refusal, then the page stops (never a traceback)."""
    message = str(exc) or "refused"
    st.error(f"**{message[0].upper()}{message[1:]}.**", icon=":material/block:")
    st.stop()


def _unknown_key(kind: str) -> JoinRefused:
    return JoinRefused("this link's key is not known here: " + (
        "join the class again (your teacher has its link)" if kind == "class" else
        "open the app's address without ?key= to start afresh (a visitor's key is forgotten after a long absence)"))


def _resolve(kind: str, named: dict[str, str]) -> Identity | None:
    """The identity ``named`` (the address's ``teacher`` and ``key`` parameters) names; None: it names none
    (public mode: a new visitor). Raises :class:`JoinRefused` or :class:`ClassroomError`."""
    store, who = class_store(), client()
    token, key = named.get(TEACHER_PARAM, ""), named.get(KEY_PARAM, "")
    if kind == "class" and token:
        identity = store.teacher(_served_class(), token, client=who)
        st.session_state[WELCOME_KEY] = True  # the teacher is told where their token went
        return identity
    if key:
        try:
            identity = store.identify(key, client=who)
        except JoinRefused as exc:
            raise (exc if exc.retry_after else _unknown_key(kind)) from None  # the rate limit says how long to wait
        wanted = ("student", _served_class()) if kind == "class" else ("visitor", "")
        if (identity.role, identity.class_code) != wanted:  # another class's key, a visitor's in class mode…
            store.failures.add(who)
            raise _unknown_key(kind)
        return identity
    if kind == "public":
        st.session_state[WELCOME_KEY] = True
        return store.visitor(who)
    return None


def _recheck(kind: str, identity: Identity) -> None:
    """Raise :class:`JoinRefused` when the store no longer knows this open session's identity: a newer ``serve``
    gave the class a new teacher token, the teacher removed the student, a visitor was forgotten. Cheap (one
    read by primary key and a hash), so it runs on every page run."""
    store, who = class_store(), client()
    try:
        if identity.role == "teacher":
            store.teacher(identity.class_code, identity.key, client=who)
        else:
            store.identify(identity.key, client=who)
    except JoinRefused:
        if identity.role == "teacher":
            raise JoinRefused("this tab no longer has the teacher's powers: a newer `catdnn serve` gave this class "
                              "a new teacher link (its terminal prints it)") from None
        raise _unknown_key(kind) from None


def _who(identity: Identity) -> str:
    return {"teacher": "the teacher", "student": identity.name}.get(identity.role, "you, with your own key")


def _ask_switch(identity: Identity, named: dict[str, str]) -> None:
    """A link naming someone else reached this open session: say the tab stays its own, and offer the switch."""
    st.session_state[PENDING_KEY] = named  # for the button's run only
    other = "the teacher's link" if TEACHER_PARAM in named else "someone else's key"
    st.warning(f"**This page's address holds {other}, so this tab stays as it was: {_who(identity)}.** What you "
               "train or upload here stays yours. To act as that link's holder instead, open the link in a new tab, "
               "or press the button.", icon=":material/person_alert:")
    st.button("Switch this tab to that link's identity", key=SWITCH_BUTTON)


def _join_form_ui() -> Identity | None:
    """The class's join form: the class code (prefilled from ``?join=``) and a display name; the new
    student's identity once they press Join (a refusal stops the page under the form)."""
    st.title("Join the class")
    st.markdown("Type the class code your teacher gave you and the name the class board and your teacher will see. "
                "There is no password: you get a private link instead, to bookmark.")
    if _param(JOIN_PARAM) and not st.session_state.get(CODE_KEY):  # a run may come before the link's parameters
        st.session_state[CODE_KEY] = _param(JOIN_PARAM).upper()
    with st.form("join_form"):
        code = st.text_input("Class code", key=CODE_KEY, max_chars=32)
        name = st.text_input("Your name", key=NAME_KEY, max_chars=classroom.NAME_CHARS,
                             help="Letters, digits, spaces and - _ . ' (at most 40 characters)")
        pressed = st.form_submit_button("Join", key=JOIN_BUTTON, type="primary")
    if not pressed:
        return None
    try:
        identity = class_store().join(code, name, client=client())
    except CatdnnError as exc:  # refused, or the class store cannot be used
        _refuse(exc)
    st.session_state[WELCOME_KEY] = True
    return identity


def identity_ui(page: str = "") -> Identity:
    """Resolve this session's identity (see the module's docstring), keep it in the session and in the page's
    address, mark it seen on ``page`` and return it. A refusal stops the page with one clear sentence; a
    class-mode visitor who has not joined gets the join form, and the page stops under it."""
    s = state.session()
    try:
        kind = mode()
    except ClassroomError as exc:  # $CATDNN_MODE names no mode
        _refuse(exc)
    if kind == "local":
        if s.identity is None:
            s.identity = Identity("owner", owner=s.owner)
        return s.identity
    names = (KEY_PARAM, TEACHER_PARAM) if kind == "class" else (KEY_PARAM,)  # public mode has no teacher
    named = {k: v for k in names if (v := _param(k))}
    pending = st.session_state.pop(PENDING_KEY, None)
    switching = False
    if s.identity is not None:
        try:
            _recheck(kind, s.identity)
        except CatdnnError as exc:  # no longer known (JoinRefused), or the class store cannot be used
            if isinstance(exc, JoinRefused):
                s.identity = None
            _refuse(exc)
        if pending and st.session_state.get(SWITCH_BUTTON):  # asked on the run before, and confirmed
            named, switching = pending, True
        elif named and named != secret_params(s.identity):  # a link naming someone else: ask, never switch silently
            _ask_switch(s.identity, named)
    if s.identity is None or switching:
        try:
            s.identity = _resolve(kind, named)  # a refused switch keeps the session as it was
        except CatdnnError as exc:  # JoinRefused, or the class store cannot be used
            _refuse(exc)
        if s.identity is None:
            s.identity = _join_form_ui()
            if s.identity is None:
                st.stop()
            st.query_params.from_dict({**settings_query(), **link_params(s.identity)})
            st.rerun()  # the page itself, without the form, under the welcome
    identity = s.identity
    own = link_params(identity)
    for name, value in own.items():  # Streamlit may drop them on a page switch
        if st.query_params.get(name) != value:
            st.query_params[name] = value
    for name in PARAMS:  # the teacher's token once checked, ?join=, a link's other identity: out of the address
        if name not in own and name in st.query_params:
            del st.query_params[name]
    try:
        class_store().touch(identity, page or "Home")
    except (CatdnnError, sqlite3.Error):  # "who is online" is best effort: a busy store never blocks a page
        pass
    if st.session_state.pop(WELCOME_KEY, False):
        _welcome(identity)
    if identity.role == "teacher":
        st.sidebar.caption(f":material/school: Teacher. {TEACHER_NOTE}")
    return identity


def _welcome(identity: Identity) -> None:
    if identity.role == "teacher":
        st.info(f"**You are the teacher of this class.** {TEACHER_NOTE}", icon=":material/school:")
        return
    who = f"You joined as **{identity.name}**" if identity.role == "student" else "Your work here is yours alone"
    link = own_link(identity)
    st.success(f"{who}. **Bookmark this page's address**: it holds your private key, the only way back "
               "to your runs and models from another tab or after a restart. Do not share it: whoever has it is you."
               + (f"\n\nYour link: `{link}`" if link else ""), icon=":material/bookmark:")
