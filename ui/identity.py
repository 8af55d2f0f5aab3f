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
parameters on a page switch, so every page run puts the session's own key (or token) back (:func:`link_params`
is what the Train page keeps in its settings link too). A key is shown only to its holder, in their own link.
"""

from __future__ import annotations

import os

import streamlit as st

from catdnn import classroom
from catdnn.classroom import ClassroomError, ClassStore, Identity, JoinRefused

from . import state

#: The query parameters that carry who the visitor is; never settings of a page.
KEY_PARAM, TEACHER_PARAM, JOIN_PARAM = "key", "teacher", "join"
PARAMS = (KEY_PARAM, TEACHER_PARAM, JOIN_PARAM)
#: The join form's widgets.
CODE_KEY, NAME_KEY, JOIN_BUTTON = "join_code", "join_name", "join_button"
#: Set after a join or a new visitor's first page: the next page run says "bookmark this link" once.
WELCOME_KEY = "identity_welcome"


@st.cache_resource(max_entries=8)
def _open_store(path: str) -> ClassStore:
    return ClassStore(path)


def class_store() -> ClassStore:
    """The server's class store (``classroom.sqlite3`` in the catdnn folder), opened once per server process."""
    return _open_store(str(classroom.default_path()))


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


def link_params(identity: Identity | None = None) -> dict[str, str]:
    """The query parameters that make a link this person's own: ``{"key": …}`` for a student or a visitor,
    ``{"teacher": …}`` for the teacher, nothing in local mode. Kept in every address the app writes."""
    identity = current() if identity is None else identity
    if not identity.key:
        return {}
    return {TEACHER_PARAM if identity.role == "teacher" else KEY_PARAM: identity.key}


def settings_query() -> dict:
    """The page's query parameters without those naming who the visitor is (the Train page's settings)."""
    return {k: v for k, v in st.query_params.to_dict().items() if k not in PARAMS}


def own_link(identity: Identity | None = None) -> str:
    """This person's own link (the app's address with their key), to bookmark; "" when there is none."""
    params = link_params(identity)
    base = (st.context.url or "").split("?")[0]
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


def _resolve(kind: str) -> Identity | None:
    """The identity the page's address names (None: it names none; public mode: a new visitor).
    Raises :class:`JoinRefused` or :class:`ClassroomError`."""
    store, who = class_store(), client()
    token, key = _param(TEACHER_PARAM), _param(KEY_PARAM)
    if kind == "class" and token:
        return store.teacher(_served_class(), token, client=who)
    if key:
        identity = store.identify(key, client=who)
        wanted = ("student", _served_class()) if kind == "class" else ("visitor", "")
        if (identity.role, identity.class_code) != wanted:  # another class's key, a visitor's in class mode…
            store.failures.add(who)
            raise JoinRefused("this link's key is not known here: " + (
                "join the class again (your teacher has its link)" if kind == "class" else
                "open the app's address without ?key= to start afresh"))
        return identity
    if kind == "public":
        st.session_state[WELCOME_KEY] = True
        return store.visitor(who)
    return None


def _join_form_ui() -> Identity | None:
    """The class's join form: the class code (prefilled from ``?join=``) and a display name; the new
    student's identity once they press Join (a refusal stops the page under the form)."""
    st.title("Join the class")
    st.markdown("Type the class code your teacher gave you and the name the class board and your teacher will see. "
                "There is no password: you get a private link instead, to bookmark.")
    if CODE_KEY not in st.session_state:
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
    except JoinRefused as exc:
        _refuse(exc)
    st.session_state[WELCOME_KEY] = True
    return identity


def identity_ui(page: str = "") -> Identity:
    """Resolve this session's identity (see the module's docstring), keep it in the session and in the page's
    address, mark it seen on ``page`` and return it. A refusal stops the page with one clear sentence; a
    class-mode visitor who has not joined gets the join form, and the page stops under it."""
    s = state.session()
    kind = mode()
    if kind == "local":
        if s.identity is None:
            s.identity = Identity("owner", owner=s.owner)
        return s.identity
    named = {k: _param(k) for k in (KEY_PARAM, TEACHER_PARAM)}
    mine = link_params(s.identity) if s.identity is not None else {}
    if s.identity is None or any(v and v != mine.get(k) for k, v in named.items()):  # a link naming someone else
        s.identity = None
        try:
            s.identity = _resolve(kind)
        except (JoinRefused, ClassroomError) as exc:
            _refuse(exc)
        if s.identity is None:
            s.identity = _join_form_ui()
            if s.identity is None:
                st.stop()
            st.query_params.from_dict({**settings_query(), **link_params(s.identity)})
            st.query_params.pop(JOIN_PARAM, None)
            st.rerun()  # the page itself, without the form, under the welcome
    identity = s.identity
    for name, value in link_params(identity).items():  # Streamlit may drop them on a page switch
        if st.query_params.get(name) != value:
            st.query_params[name] = value
    if JOIN_PARAM in st.query_params:
        del st.query_params[JOIN_PARAM]
    class_store().touch(identity, page or "Home")
    if st.session_state.pop(WELCOME_KEY, False):
        _welcome(identity)
    return identity


def _welcome(identity: Identity) -> None:
    who = f"as **{identity.name}**" if identity.role == "student" else "as a visitor with work of your own"
    link = own_link(identity)
    st.success(f"You are in {who}. **Bookmark this page's address**: it holds your private key, the only way back "
               "to your runs and models from another tab or after a restart. Do not share it: whoever has it is you."
               + (f"\n\nYour link: `{link}`" if link else ""), icon=":material/bookmark:")
