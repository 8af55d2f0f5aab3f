"""A light Streamlit client: one real WebSocket session speaking Streamlit's own protocol, no browser.

A browser tab costs a Chromium renderer (about 100 MB and a share of the 2 cores); this costs a thread.
It connects to ``/_stcore/stream`` like the browser does (the ``streamlit`` subprotocol, an Origin that
matches the Host), asks for a script run with a page, a query string and widget values
(``BackMsg.rerun_script``, the ``ClientState`` the browser sends), and reads the ``ForwardMsg``s the
server answers with: the new session (its pages), each element (``delta.new_element``, with widget ids
that end in the widget's key) and ``script_finished``. It clicks a button by sending its id with a
``trigger_value``, as the browser does. Only what bench_class needs is here: it is a load generator for
benchmarks, not a test helper.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from streamlit.proto.BackMsg_pb2 import BackMsg
from streamlit.proto.ForwardMsg_pb2 import ForwardMsg
from websockets.sync.client import connect

FINISHED = {ForwardMsg.FINISHED_SUCCESSFULLY, ForwardMsg.FINISHED_EARLY_FOR_RERUN}


@dataclass
class Element:
    kind: str  # the element's proto field: "button", "text_input", "metric", "markdown", …
    proto: object  # that proto message

    @property
    def id(self) -> str:
        return getattr(self.proto, "id", "")

    @property
    def text(self) -> str:
        p = self.proto
        for name in ("body", "label", "value"):
            value = getattr(p, name, None)
            if isinstance(value, str) and value:
                return value
        return ""


@dataclass
class Page:
    """The elements of the last script run, by their delta path, and the widgets among them by key."""

    elements: dict = field(default_factory=dict)

    def widget(self, key: str) -> Element | None:
        for e in self.elements.values():
            if e.id.endswith("-" + key):
                return e
        return None

    def texts(self, kind: str | None = None) -> list[str]:
        return [e.text for e in self.elements.values() if kind is None or e.kind == kind]

    def metric(self, label: str) -> str | None:
        for e in self.elements.values():
            if e.kind == "metric" and e.proto.label == label:
                return e.proto.body
        return None


class Client:
    """One Streamlit session on ``base`` (``http://127.0.0.1:8501``)."""

    def __init__(self, base: str, timeout: float = 600.0):
        parts = urlsplit(base)
        self.base, self.host = base.rstrip("/"), parts.netloc
        self.ws = connect(f"ws://{parts.netloc}/_stcore/stream", subprotocols=["streamlit"], origin=self.base,
                          open_timeout=timeout, max_size=None,
                          ping_interval=None)  # a student waiting at the barrier reads nothing for a while
        self.timeout = timeout
        self.pages: dict[str, str] = {}  # url path name ("Train") -> page_script_hash
        self.page = Page()
        self.page_hash = ""
        self.query = ""

    def close(self) -> None:
        self.ws.close()

    def _send(self, widgets=(), page: str | None = None, query: str | None = None) -> None:
        msg = BackMsg()
        state = msg.rerun_script
        if query is not None:
            self.query = query
        state.query_string = self.query
        if page is not None:
            self.page_hash = self.pages.get(page, page)
        state.page_script_hash = self.page_hash
        state.context_info.url = f"{self.base}/?{self.query}"
        for w in widgets:
            state.widget_states.widgets.append(w)
        self.ws.send(msg.SerializeToString())

    def run(self, *, page: str | None = None, query: str | None = None, click: str | None = None,
            values: dict | None = None, until=None) -> Page:
        """Run the script (a page, a query, a click on the button keyed ``click``, widget ``values`` by key)
        and read the answer until the run finishes (and ``until(page)`` holds, when given)."""
        from streamlit.proto.WidgetStates_pb2 import WidgetState

        widgets = []
        for key, value in (values or {}).items():
            e = self.page.widget(key)
            if e is None:
                raise KeyError(f"no widget keyed {key!r} on the page")
            w = WidgetState(id=e.id)
            if isinstance(value, bool):
                w.bool_value = value
            elif isinstance(value, int):
                w.int_value = value
            elif isinstance(value, float):
                w.double_value = value
            else:
                w.string_value = str(value)
            widgets.append(w)
        if click is not None:
            e = self.page.widget(click)
            if e is None:
                raise KeyError(f"no button keyed {click!r} on the page: {sorted(self.page.texts('button'))}")
            widgets.append(WidgetState(id=e.id, trigger_value=True))
        self._send(widgets, page=page, query=query)
        return self.read(until)

    def read(self, until=None) -> Page:
        deadline = time.monotonic() + self.timeout
        fresh = Page()
        while True:
            data = self.ws.recv(timeout=max(0.1, deadline - time.monotonic()))
            msg = ForwardMsg()
            msg.ParseFromString(data)
            kind = msg.WhichOneof("type")
            if kind == "new_session":
                self.pages = {p.url_pathname or p.page_name: p.page_script_hash for p in msg.new_session.app_pages}
                if not self.page_hash:
                    self.page_hash = msg.new_session.page_script_hash
                fresh = Page()
            elif kind == "page_info_changed":  # the script changed the address (st.query_params)
                self.query = msg.page_info_changed.query_string
            elif kind == "navigation":
                self.pages.update({p.url_pathname or p.page_name: p.page_script_hash for p in msg.navigation.app_pages})
            elif kind == "delta" and msg.delta.WhichOneof("type") == "new_element":
                el = msg.delta.new_element
                which = el.WhichOneof("type")
                fresh.elements[tuple(msg.metadata.delta_path)] = Element(which, getattr(el, which))
            elif kind == "script_finished":
                self.page = fresh
                if msg.script_finished in FINISHED and (until is None or until(fresh)):
                    return fresh
                fresh = Page()
            if time.monotonic() > deadline:
                raise TimeoutError("the server did not finish the script run in time")
