"""Who is using the app: the server's mode, identities without accounts, a class and its settings.

The app runs in one of three modes (:data:`MODES`, chosen by ``$CATDNN_MODE``, see :func:`current_mode`):

- ``local``: one person on this machine (the default). Every browser tab is the machine's user.
- ``class``: a teacher serves students on a local network (``python -m catdnn serve --class NAME``).
  A student joins with the class code and a display name and gets a private key; the teacher's
  token opens the teacher view.
- ``public``: anonymous visitors on a hosted deployment. Each visitor gets a private key of their own.

There are no accounts and no passwords. A **key** (a student's, a visitor's) and the teacher's **token**
are random strings of :data:`KEY_BYTES` bytes (192 bits) from :mod:`secrets`, handed to their holder once
(in their link, to bookmark) and never stored: the store keeps only their SHA-256, compared in
constant time (:func:`hmac.compare_digest`). What the rest of the engine sees of a person is an
:class:`Identity`, whose :attr:`Identity.owner` is that hash, a name for their work that reveals
nothing of the key (run history, imported datasets and the board are keyed by it).

A wrong class code, key or token is refused with :class:`JoinRefused`, and the failures of one client
(an IPv4 address, or an IPv6 /64 network, which one host may hold whole: :func:`client_key`) are rate
limited (:class:`RateLimiter`: :data:`FAILURES_PER_CLIENT` a minute), so a script cannot try class codes
quickly. There is no limit on all clients together: a script spreading its guesses over many addresses
would then lock every student out. A valid key or token is never refused by the limit (its 192 bits
make guessing hopeless anyway): only misses are counted and refused. Joins that succeed are bounded
too (:data:`MAX_MEMBERS` people a class; :data:`JOINS_PER_CLIENT` an hour from one client; the teacher
can close a class to new joins and remove members), so one script cannot fill a class.

This module imports only the standard library and :mod:`catdnn.errors`: every part of the engine that
takes a caller's identity (history, photos, workers, board) may import it.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import json
import os
import secrets
import sqlite3
import threading
import time
import unicodedata
from collections import deque
from dataclasses import asdict, dataclass, field
from pathlib import Path

from .errors import CatdnnError

#: The three modes of the app, in the order of the people they serve.
MODES = ("local", "class", "public")
#: The environment variable that picks the mode (unset or empty: ``local``).
MODE_ENV = "CATDNN_MODE"
#: The environment variable naming the class a ``class``-mode server serves (its code).
CLASS_ENV = "CATDNN_CLASS"
#: The roles a person can have. ``owner``: the machine's user (local mode, the CLI) sees everything.
ROLES = ("owner", "teacher", "student", "visitor")

#: Random bytes in a key or token: 192 bits (the issue asks for at least 128).
KEY_BYTES = 24
#: A class code's alphabet (no 0/O, 1/I/L that a student would mistype) and length: 31⁸ ≈ 8.5·10¹¹
#: codes: at :data:`FAILURES_PER_CLIENT` tries a minute, a script with 1 000 addresses takes about 80 years
#: to try half of them.
CODE_ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"
CODE_LENGTH = 8
#: A display name: 1 to 40 characters after trimming, letters, digits, spaces and ``-_.'``.
NAME_CHARS = 40
NAME_EXTRA = " -_.'"

#: Failed joins or identifications one client may make in :data:`WINDOW_SECONDS` before it must wait.
FAILURES_PER_CLIENT = 10
WINDOW_SECONDS = 60.0
#: Successful joins (or new public visitors) one client may make in :data:`JOIN_WINDOW_SECONDS`: a classroom
#: behind one NAT joins 30 at once; a script from one address needs 8 hours to fill a class of 500.
JOINS_PER_CLIENT = 60
JOIN_WINDOW_SECONDS = 3600.0
#: People in one class (students), and public visitors kept at once (the oldest idle ones are forgotten).
MAX_MEMBERS = 500
MAX_VISITORS = 10_000

FILE_NAME = "classroom.sqlite3"
BUSY_SECONDS = 10.0

_SCHEMA = """
CREATE TABLE IF NOT EXISTS classes (
    code TEXT PRIMARY KEY, name TEXT NOT NULL UNIQUE, teacher TEXT NOT NULL, created REAL NOT NULL,
    paused INTEGER NOT NULL DEFAULT 0, revealed INTEGER NOT NULL DEFAULT 0, limits TEXT NOT NULL DEFAULT '{}',
    joining INTEGER NOT NULL DEFAULT 1);
CREATE TABLE IF NOT EXISTS members (
    owner TEXT PRIMARY KEY, class TEXT NOT NULL, role TEXT NOT NULL, name TEXT NOT NULL,
    joined REAL NOT NULL, last_seen REAL NOT NULL, page TEXT NOT NULL DEFAULT '');
CREATE INDEX IF NOT EXISTS members_class ON members (class, role);
CREATE INDEX IF NOT EXISTS members_seen ON members (role, last_seen);
"""
_ADD_MEMBER = "INSERT INTO members (owner, class, role, name, joined, last_seen) VALUES (?, ?, ?, ?, ?, ?)"


class ClassroomError(CatdnnError):
    """The class store cannot be used, or a setting of a class is impossible."""


class JoinRefused(CatdnnError):
    """A join or identification is refused: a wrong code, key or token, a bad name, a full class.

    ``retry_after`` is the seconds to wait when the refusal is the rate limit (else 0)."""

    def __init__(self, message: str, retry_after: float = 0.0):
        super().__init__(message)
        self.retry_after = float(retry_after)


def current_mode(environ=None) -> str:
    """The app's mode from ``$CATDNN_MODE`` (default ``local``); raises :class:`ClassroomError` for another value."""
    value = (os.environ if environ is None else environ).get(MODE_ENV, "").strip().lower() or "local"
    if value not in MODES:
        raise ClassroomError(f"{MODE_ENV}={value!r} is not a mode of catdnn: use one of {', '.join(MODES)}")
    return value


def class_name(text: str) -> str:
    """A class's name as typed, its spaces tidied; raises :class:`ClassroomError` when empty or too long."""
    name = " ".join(str(text or "").split())
    if not name or len(name) > 80:
        raise ClassroomError("a class needs a name of 1 to 80 characters, e.g. \"Period 3\"")
    return name


def new_key() -> str:
    """A fresh key or token: :data:`KEY_BYTES` random bytes, URL-safe (32 characters)."""
    return secrets.token_urlsafe(KEY_BYTES)


def owner_of(key: str) -> str:
    """The name of a key's holder in stored work: the key's SHA-256 (hex), which reveals nothing of the key."""
    return hashlib.sha256(b"catdnn-key\0" + str(key).encode("utf-8", "surrogatepass")).hexdigest()


def same(a: str, b: str) -> bool:
    """Whether two secrets (or their hashes) are equal, in time independent of where they differ."""
    return hmac.compare_digest(str(a).encode("utf-8", "surrogatepass"), str(b).encode("utf-8", "surrogatepass"))


def clean_name(text: str) -> str:
    """A display name as typed, trimmed and checked: raises :class:`JoinRefused` when it is empty, too long
    or has characters other than letters, digits, spaces and ``-_.'``. Names go into the board and CSV
    exports (where a leading ``=``, ``+``, ``-`` or ``@`` is neutralised too: the CSV writers' job)."""
    name = " ".join(unicodedata.normalize("NFC", str(text or "")).split())
    if not name:
        raise JoinRefused("type a display name: the name the class board and your teacher will see")
    if len(name) > NAME_CHARS:
        raise JoinRefused(f"a display name has at most {NAME_CHARS} characters (this one has {len(name)})")
    bad = sorted({ch for ch in name if not (ch.isalnum() or ch in NAME_EXTRA)})
    if bad:
        raise JoinRefused("a display name may have letters, digits, spaces and - _ . ' only, not "
                          + " ".join(repr(ch) for ch in bad[:5]))
    return name


@dataclass(frozen=True)
class Identity:
    """Who makes a request. ``owner`` names their work in the stores; ``key`` is their secret, kept only to
    put back in their own link (never shown in ``repr``, never stored, logged or exported).

    ``role == "owner"`` is the machine's user: with ``owner == ""`` (:data:`MACHINE`, the CLI) they see
    everything; a local-mode browser tab is an ``owner`` too, with its session's token as ``owner``, and sees
    what every tab sees plus its own private work (its uploads), as before the modes existed.
    """

    role: str
    owner: str = ""
    name: str = ""
    class_code: str = ""
    key: str = field(default="", repr=False, compare=False)

    def __post_init__(self):
        if self.role not in ROLES:
            raise ValueError(f"role {self.role!r} is not one of {ROLES}")

    @property
    def sees_all(self) -> bool:
        """The machine's user (the CLI) and the teacher see and manage everyone's work; others their own."""
        return self.role == "teacher" or (self.role == "owner" and not self.owner)

    def may_see(self, owner: str) -> bool:
        """Whether this person may list, open or delete work owned by ``owner`` (constant-time compare)."""
        return self.sees_all or (bool(self.owner) and same(self.owner, owner or ""))


#: A class's default limits per run (until its teacher sets others) and a public visitor's: multiply-adds
#: (:func:`catdnn.workers.run_work`) and seconds of training. The course's presets and the CNN preset take at
#: most 4e11 multiply-adds and a minute or two on one core (SECURITY.md, Resources).
CLASS_MAX_WORK = 10**13
CLASS_MAX_SECONDS = 1800.0
PUBLIC_MAX_WORK = 2 * 10**12
PUBLIC_MAX_SECONDS = 300.0

#: The machine's user: local mode, the CLI.
MACHINE = Identity("owner")


@dataclass(frozen=True)
class Limits:
    """What one student (or visitor) may train: at most ``max_iterations`` per run (None: the engine's own
    limit), ``runs_at_once`` runs queued or training at once, CNNs only when ``cnn_allowed``, at most
    ``max_work`` multiply-adds per run (estimated at submission, :func:`catdnn.workers.run_work`; None: no
    limit) and ``max_seconds`` of training per run (the worker stops the run there, like a Stop, and keeps
    its model; None: no limit). The defaults are a class's until its teacher sets others (SECURITY.md)."""

    max_iterations: int | None = None
    runs_at_once: int = 1
    cnn_allowed: bool = True
    max_work: int | None = CLASS_MAX_WORK
    max_seconds: float | None = CLASS_MAX_SECONDS

    def __post_init__(self):
        if self.max_iterations is not None and not (isinstance(self.max_iterations, int) and self.max_iterations >= 1):
            raise ClassroomError(f"the iteration limit must be a whole number ≥ 1, not {self.max_iterations!r}")
        if not (isinstance(self.runs_at_once, int) and 1 <= self.runs_at_once <= 16):
            raise ClassroomError(f"runs at once must be a whole number from 1 to 16, not {self.runs_at_once!r}")
        if self.max_work is not None and not (isinstance(self.max_work, int) and self.max_work >= 1):
            raise ClassroomError(f"the work limit must be a whole number of multiply-adds ≥ 1, not {self.max_work!r}")
        if self.max_seconds is not None and not (isinstance(self.max_seconds, (int, float))
                                                 and not isinstance(self.max_seconds, bool) and self.max_seconds >= 1):
            raise ClassroomError(f"the time limit must be at least 1 second, not {self.max_seconds!r}")

    @classmethod
    def from_json(cls, text: str) -> Limits:
        data = json.loads(text or "{}")
        return cls(**{k: data[k] for k in ("max_iterations", "runs_at_once", "cnn_allowed", "max_work", "max_seconds")
                      if k in data})

    def to_json(self) -> str:
        return json.dumps(asdict(self))


#: A public visitor's limits (a teacher sets a class's on the teacher view); figures in SECURITY.md.
PUBLIC_LIMITS = Limits(max_iterations=5000, runs_at_once=1, cnn_allowed=True, max_work=PUBLIC_MAX_WORK,
                       max_seconds=PUBLIC_MAX_SECONDS)


@dataclass(frozen=True)
class ClassInfo:
    """A class as the store holds it (without the teacher's token, which is never stored)."""

    code: str
    name: str
    created: float
    paused: bool
    revealed: bool
    limits: Limits
    joining: bool = True  # new students may join (the teacher can close the class to them)


@dataclass(frozen=True)
class Member:
    """Someone who joined (a student, a visitor): what the teacher view lists. Never holds the key."""

    owner: str
    class_code: str
    role: str
    name: str
    joined: float
    last_seen: float
    page: str


class RateLimiter:
    """Counts events (failed attempts, joins) per client in a sliding window of ``window`` seconds.

    :meth:`check` raises :class:`JoinRefused` (with ``retry_after``) once a client has ``per_client`` events in
    the window, or all clients together ``total`` (None: no such limit, the default: see the module's
    docstring); :meth:`add` records one. Clients are named by :func:`client_key`. Thread-safe; kept in
    the server's memory (a restart forgets it). ``clock`` is for tests.
    """

    def __init__(self, per_client: int, total: int | None = None, window: float = WINDOW_SECONDS,
                 clock=time.monotonic):
        self.per_client, self.window, self.clock = int(per_client), float(window), clock
        self.total = None if total is None else int(total)
        self._events: dict[str, deque] = {}
        self._all: deque = deque()
        self._lock = threading.Lock()

    def _trim(self, q: deque, now: float) -> None:
        while q and q[0] <= now - self.window:
            q.popleft()

    def check(self, client: str, what: str = "attempts") -> None:
        now = self.clock()
        with self._lock:
            self._trim(self._all, now)
            mine = self._events.get(client)
            if mine is not None:
                self._trim(mine, now)
                if not mine:
                    del self._events[client]
            for q, limit in ((mine, self.per_client), (self._all, self.total)):
                if q is not None and limit is not None and len(q) >= limit:
                    wait = max(1.0, q[0] + self.window - now)
                    raise JoinRefused(f"too many {what}: wait {wait:.0f} s and try again", retry_after=wait)

    def add(self, client: str) -> None:
        now = self.clock()
        with self._lock:
            self._events.setdefault(client, deque()).append(now)
            self._all.append(now)
            if len(self._events) > 100_000:  # forget the quietest clients first (memory bound)
                for c in [c for c, q in self._events.items() if not q or q[-1] <= now - self.window]:
                    del self._events[c]


def failures_limiter(clock=time.monotonic) -> RateLimiter:
    """The server's limit on failed attempts: :data:`FAILURES_PER_CLIENT` a minute per client, none in all."""
    return RateLimiter(FAILURES_PER_CLIENT, None, WINDOW_SECONDS, clock)


def joins_limiter(clock=time.monotonic) -> RateLimiter:
    """The server's limit on joins and new visitors: :data:`JOINS_PER_CLIENT` an hour per client, none in all."""
    return RateLimiter(JOINS_PER_CLIENT, None, JOIN_WINDOW_SECONDS, clock)


#: The server's limiters (one process serves every session): failures, and successful joins.
FAILURES = failures_limiter()
JOINS = joins_limiter()


def client_key(address: str) -> str:
    """The name a client's address is counted under: an IPv4 address as it is, an IPv6 address by its /64
    network (one host is given a whole /64 and may use any of its 2⁶⁴ addresses), anything else as it is."""
    text = str(address or "").strip()
    try:
        ip = ipaddress.ip_address(text.split("%", 1)[0])
    except ValueError:
        return text
    if ip.version == 4:
        return str(ip)
    if ip.ipv4_mapped is not None:  # ::ffff:a.b.c.d is the IPv4 client a.b.c.d
        return str(ip.ipv4_mapped)
    return str(ipaddress.ip_network(f"{ip}/64", strict=False))


def default_path() -> Path:
    """``classroom.sqlite3`` in the user's catdnn folder (``$CATDNN_HOME``, else ``~/.catdnn``)."""
    from .data import home_dir

    return home_dir() / FILE_NAME


class ClassStore:
    """Classes, their members and settings, in the SQLite file ``path`` (default :func:`default_path`).

    Keys and tokens are never stored, only :func:`owner_of` them. ``failures`` and ``joins`` are the rate
    limiters (default: the server's :data:`FAILURES` and :data:`JOINS`; tests pass their own).
    """

    def __init__(self, path=None, *, failures: RateLimiter | None = None, joins: RateLimiter | None = None,
                 clock=time.time):
        self.path = Path(path) if path is not None else default_path()
        self.failures = FAILURES if failures is None else failures
        self.joins = JOINS if joins is None else joins
        self.clock = clock
        self._lock = threading.RLock()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(str(self.path), timeout=BUSY_SECONDS, isolation_level=None,
                                       check_same_thread=False)
            self._db.execute("PRAGMA journal_mode = WAL")
            columns = {r[1] for r in self._db.execute("PRAGMA table_info(classes)")}
            if columns and "joining" not in columns:  # a store from before the teacher could close joins
                self._db.execute("ALTER TABLE classes ADD COLUMN joining INTEGER NOT NULL DEFAULT 1")
            self._db.executescript(_SCHEMA)
        except (OSError, sqlite3.Error) as exc:
            raise ClassroomError(f"cannot open the class store {self.path}: {exc}") from None

    # ------------------------------------------------------------------ classes
    def start_class(self, name: str) -> tuple[ClassInfo, str]:
        """Open the class called ``name`` (created with a new code the first time) with a **new** teacher token.

        Returns the class and the token, which is shown to the teacher once and never stored: starting a
        class again gives a new token (the old one stops working); students' keys stay valid.
        """
        name = class_name(name)
        token = new_key()
        with self._lock:
            row = self._db.execute("SELECT code FROM classes WHERE name = ?", (name,)).fetchone()
            if row is None:
                code = "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))
                self._db.execute("INSERT INTO classes (code, name, teacher, created) VALUES (?, ?, ?, ?)",
                                 (code, name, owner_of(token), self.clock()))
            else:
                code = row[0]
                self._db.execute("UPDATE classes SET teacher = ? WHERE code = ?", (owner_of(token), code))
        return self.get_class(code), token

    def class_named(self, name: str) -> ClassInfo | None:
        """The class called ``name`` (None when there is none yet); changes nothing (``serve --dry-run``)."""
        row = self._db.execute("SELECT code FROM classes WHERE name = ?", (class_name(name),)).fetchone()
        return None if row is None else self.get_class(row[0])

    def get_class(self, code: str) -> ClassInfo:
        """The class with this code; raises :class:`ClassroomError` when there is none."""
        row = self._db.execute("SELECT code, name, created, paused, revealed, limits, joining FROM classes "
                               "WHERE code = ?", (str(code),)).fetchone()
        if row is None:
            raise ClassroomError(f"there is no class with the code {str(code)[:16]!r} on this server")
        return ClassInfo(row[0], row[1], row[2], bool(row[3]), bool(row[4]), Limits.from_json(row[5]), bool(row[6]))

    def update_class(self, code: str, *, paused: bool | None = None, revealed: bool | None = None,
                     limits: Limits | None = None, joining: bool | None = None) -> ClassInfo:
        """Change a class's settings (the teacher view's pause, reveal, limits, and whether new students may join)."""
        self.get_class(code)
        with self._lock:
            for column, value in (("paused", paused), ("revealed", revealed), ("joining", joining)):
                if value is not None:
                    self._db.execute(f"UPDATE classes SET {column} = ? WHERE code = ?", (int(bool(value)), code))
            if limits is not None:
                self._db.execute("UPDATE classes SET limits = ? WHERE code = ?", (limits.to_json(), code))
        return self.get_class(code)

    # ------------------------------------------------------------------ people
    def join(self, code: str, name: str, client: str = "") -> Identity:
        """A student joins the class ``code`` as ``name``; returns their :class:`Identity`, whose ``key`` goes
        into their link (shown once, never stored).

        Refused (:class:`JoinRefused`) for a wrong code (counted against ``client``'s rate limit), a bad or
        taken name, a full class, or a client over its rate limit.
        """
        client = client_key(client)
        self.failures.check(client)  # before the code is compared: a client over its limit learns nothing
        self.joins.check(client, "joins")
        code = str(code or "").strip().upper()
        found = None
        for (stored,) in self._db.execute("SELECT code FROM classes").fetchall():
            if same(stored, code):
                found = stored
        if found is None:
            self.failures.add(client)
            raise JoinRefused("that class code is not this server's: check it with your teacher")
        name = clean_name(name)
        if not self.get_class(found).joining:
            raise JoinRefused("this class takes no new students now: ask your teacher")
        key = new_key()
        now = self.clock()
        with self._lock:
            taken = self._db.execute("SELECT 1 FROM members WHERE class = ? AND role = 'student' AND name = ?",
                                     (found, name)).fetchone()
            if taken:
                raise JoinRefused(f"someone in this class is already called {name!r}: pick another name")
            count = self._db.execute("SELECT COUNT(*) FROM members WHERE class = ? AND role = 'student'",
                                     (found,)).fetchone()[0]
            if count >= MAX_MEMBERS:
                raise JoinRefused(f"this class is full ({MAX_MEMBERS} students): ask your teacher")
            self._db.execute(_ADD_MEMBER, (owner_of(key), found, "student", name, now, now))
        self.joins.add(client)
        return Identity("student", owner_of(key), name, found, key)

    def visitor(self, client: str = "") -> Identity:
        """A new public visitor, with a key of their own (public mode). The oldest idle visitors beyond
        :data:`MAX_VISITORS` are forgotten (their key no longer identifies them)."""
        client = client_key(client)
        self.joins.check(client, "new visitors")
        key, now = new_key(), self.clock()
        with self._lock:
            self._db.execute(_ADD_MEMBER, (owner_of(key), "", "visitor", "", now, now))
            count = self._db.execute("SELECT COUNT(*) FROM members WHERE role = 'visitor'").fetchone()[0]
            if count > MAX_VISITORS:  # forget the longest idle (an index on last_seen: no sort of them all)
                self._db.execute("DELETE FROM members WHERE owner IN (SELECT owner FROM members WHERE role = "
                                 "'visitor' ORDER BY last_seen LIMIT ?)", (count - MAX_VISITORS,))
        self.joins.add(client)
        return Identity("visitor", owner_of(key), "", "", key)

    def identify(self, key: str, client: str = "") -> Identity:
        """The student or visitor holding ``key``; a key this store never gave is refused (and counted). A valid
        key is never refused by the rate limit: guesses from other addresses cannot lock its holder out."""
        client = client_key(client)
        owner = owner_of(key)
        row = self._db.execute("SELECT owner, class, role, name FROM members WHERE owner = ?", (owner,)).fetchone()
        if row is None or not same(row[0], owner):
            self.failures.check(client)
            self.failures.add(client)
            raise JoinRefused("this link's key is not known here: join the class again (your teacher has its link)")
        return Identity(row[2], row[0], row[3], row[1], str(key))

    def teacher(self, code: str, token: str, client: str = "") -> Identity:
        """The teacher of class ``code``, if ``token`` is its current token; else refused (and counted)."""
        client = client_key(client)
        row = self._db.execute("SELECT teacher, name FROM classes WHERE code = ?", (str(code),)).fetchone()
        if row is None or not same(row[0], owner_of(token)):  # as identify(): only misses meet the limit
            self.failures.check(client)
            self.failures.add(client)
            raise JoinRefused("this teacher link is not valid (a newer `catdnn serve` gives a new one)")
        return Identity("teacher", owner_of(token), "teacher", str(code), str(token))

    def touch(self, identity: Identity, page: str = "") -> None:
        """Mark ``identity`` as seen now, on ``page`` (the teacher view's "who is online")."""
        if identity.role in ("student", "visitor"):
            with self._lock:
                self._db.execute("UPDATE members SET last_seen = ?, page = ? WHERE owner = ?",
                                 (self.clock(), str(page)[:60], identity.owner))

    def members(self, code: str, *, role: str = "student", seen_within: float | None = None) -> list[Member]:
        """The class's members (students by default), by name; only those seen in the last ``seen_within`` s."""
        sql = "SELECT owner, class, role, name, joined, last_seen, page FROM members WHERE class = ? AND role = ?"
        args: tuple = (str(code), role)
        if seen_within is not None:
            sql += " AND last_seen >= ?"
            args += (self.clock() - float(seen_within),)
        return [Member(*r) for r in self._db.execute(sql + " ORDER BY name", args).fetchall()]

    def remove_member(self, code: str, owner: str) -> bool:
        """Remove a student from class ``code`` (the teacher view): their key no longer identifies them and their
        name is free again. Their runs stay in the history (the teacher may delete them). Returns whether one was."""
        with self._lock:
            cur = self._db.execute("DELETE FROM members WHERE class = ? AND owner = ? AND role = 'student'",
                                   (str(code), str(owner)))
        return cur.rowcount > 0

    def name_of(self, owner: str) -> str:
        """The display name of ``owner`` ("" when unknown: the machine's user, a forgotten visitor)."""
        row = self._db.execute("SELECT name FROM members WHERE owner = ?", (str(owner),)).fetchone()
        return row[0] if row else ""

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
