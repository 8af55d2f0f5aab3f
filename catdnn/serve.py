"""``catdnn app`` and ``catdnn serve``: run the dashboard, from a checkout or from the installed package.

The app is ``dashboard.py``, ``pages/`` and ``ui/`` with its server settings in
``.streamlit/config.toml`` (only this machine may connect, the upload limit, XSRF: SECURITY.md). In
a checkout they sit at the top, next to ``catdnn/``; the wheel carries a copy of them as
``catdnn/app/`` (pyproject.toml). Streamlit reads ``.streamlit/config.toml`` from its working
folder, so the app runs in that folder, and the paths the user gave in the environment
(``$CATDNN_DATA_DIR``, ``$CATDNN_HOME``) are made absolute first. This module never imports
streamlit: it replaces the process with ``python -m streamlit run``.

``catdnn serve --class NAME`` (or ``--public``) runs the same app for a class on the local network (or for
the public): :func:`serve_plan` opens the class (:class:`catdnn.classroom.ClassStore`, a new teacher token; a
dry run changes nothing), picks the machine's LAN address, allows it as a Host (``$CATDNN_ALLOWED_HOSTS``), sets
the app's mode in its environment, adds Streamlit's TLS options when a certificate and key are given, and says
plainly when the links travel unencrypted; :func:`run_plan` starts it. :func:`qr_svg` draws the student link's
QR code for the teacher view (with ``segno``).
"""

from __future__ import annotations

import os
import socket
import sys
from dataclasses import dataclass, field
from pathlib import Path

from . import classroom
from .data import ENV_VAR, HOME_ENV_VAR
from .errors import CatdnnError, ConfigError

#: The app's entry script (Streamlit's folder mode: pages/ sits next to it).
APP_SCRIPT = "dashboard.py"


def app_dir() -> Path:
    """The folder holding the app: the installed copy ``catdnn/app/``, else the checkout's top folder.

    Raises :class:`CatdnnError` when neither holds it (a copy of ``catdnn/`` alone).
    """
    here = Path(__file__).resolve().parent
    for folder in (here / "app", here.parent):
        if (folder / APP_SCRIPT).is_file() and (folder / "ui" / "__init__.py").is_file():
            return folder
    raise CatdnnError(f"the dashboard ({APP_SCRIPT}, pages/, ui/) is not installed next to {here}: install catdnn "
                      "from its wheel or checkout (pip install .), or run `streamlit run dashboard.py` in a checkout")


def app_command(port: int | None = None, options=()) -> list[str]:
    """The ``streamlit run`` command line of the app: ``options`` are Streamlit's (``--server.port 8502``)."""
    cmd = [sys.executable, "-m", "streamlit", "run"]
    if port is not None:
        cmd += ["--server.port", str(int(port))]
    return [*cmd, *options, str(app_dir() / APP_SCRIPT)]


def run_app(port: int | None = None, options=(), env_extra=None) -> None:
    """Replace this process by the app's Streamlit server (never returns; Ctrl-C stops the server);
    ``env_extra``: variables added to its environment."""
    cmd, folder = app_command(port, options), app_dir()
    env = {**os.environ, **(env_extra or {})}
    for name in (ENV_VAR, HOME_ENV_VAR):  # relative to where the user typed the command, not the app's folder
        if env.get(name, "").strip():
            env[name] = str(Path(env[name]).expanduser().resolve())
    sys.stdout.flush()
    sys.stderr.flush()
    os.chdir(folder)
    os.execve(sys.executable, cmd, env)


# ---------------------------------------------------------------------------------------------- serve
#: The port ``serve`` uses when none is given (Streamlit's own default).
DEFAULT_PORT = 8501
#: The Host names the app answers besides this machine's own (``ui/hosts.py`` applies them).
ALLOWED_HOSTS_ENV = "CATDNN_ALLOWED_HOSTS"
#: The student link a class-mode server hands out (``…/?join=CODE``), for the teacher view to show.
CLASS_URL_ENV = "CATDNN_CLASS_URL"
#: The Dask scheduler a class's trainings go to (``serve --scheduler``), if any.
SCHEDULER_ENV = "CATDNN_SCHEDULER"
#: What a link carries when it travels without TLS.
UNENCRYPTED = (
    "the links travel unencrypted (http://): anyone who can watch this network's traffic (a shared Wi-Fi, a "
    "classroom switch) can read a student's key or the teacher's token from any page request and act as them. "
    "To encrypt them, pass a certificate and its key: --cert FILE --key FILE (Streamlit's server.sslCertFile and "
    "server.sslKeyFile)")


def lan_address() -> str:
    """This machine's address on its local network: the source address of its route to the outside world
    (found without sending a packet), else 127.0.0.1 when it has no network."""
    # connect() on a UDP socket only picks the route: nothing is sent (TEST-NET-1, then a private address)
    for target in (("192.0.2.1", 9), ("10.255.255.255", 9)):
        try:
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
                s.connect(target)
                address = s.getsockname()[0]
            if address and not address.startswith("0."):
                return address
        except OSError:
            continue
    return "127.0.0.1"


@dataclass
class ServePlan:
    """What ``catdnn serve`` will start: the Streamlit command, the environment it adds, and the links.

    ``teacher_url`` carries the teacher's secret token (class mode; "" in public mode): it is printed once, on
    the teacher's terminal, and never put in the environment or the command line."""

    mode: str
    url: str  # the app's address (https:// with TLS)
    student_url: str  # the link to hand out: class mode ``url?join=CODE``, public mode ``url``
    teacher_url: str = ""
    class_name: str = ""
    class_code: str = ""
    encrypted: bool = False
    port: int = DEFAULT_PORT
    options: list = field(default_factory=list)  # Streamlit's options besides the port
    env: dict = field(default_factory=dict)  # added to the server's environment (no secret in it)

    @property
    def command(self) -> list[str]:
        """The Streamlit command line (it holds no secret either)."""
        return app_command(self.port, self.options)

    def lines(self) -> list[str]:
        """What ``serve`` prints before it starts the server."""
        out = []
        if self.mode == "class" and not self.class_code:  # a dry run for a class that does not exist yet
            out += [f"class {self.class_name!r} is new: its code and links are made when the server starts"]
        elif self.mode == "class":
            out += [f"class {self.class_name!r}, code {self.class_code}",
                    f"student link (show it to the class): {self.student_url}"]
        if self.mode == "class":
            out += [f"teacher link (keep it to yourself: it opens the teacher view): {self.teacher_url}"
                    if self.teacher_url else
                    "teacher link: printed when the server starts (a dry run changes nothing: the running "
                    "class's teacher link still works)"]
        else:
            out += [f"public mode: every visitor gets a private key of their own at {self.student_url}"]
        return out

    @property
    def warning(self) -> str:
        """The plain warning when the links travel unencrypted ("" with TLS)."""
        return "" if self.encrypted else "warning: " + UNENCRYPTED


def _check_tls(cert, key) -> tuple[str, str] | None:
    if cert is None and key is None:
        return None
    if not cert or not key:
        raise ConfigError("TLS needs both --cert FILE (the certificate, PEM) and --key FILE (its private key, PEM)")
    paths = []
    for flag, value in (("--cert", cert), ("--key", key)):
        path = Path(value).expanduser().resolve()
        if not path.is_file():
            raise ConfigError(f"{flag} {value}: no such file")
        if not os.access(path, os.R_OK):
            raise ConfigError(f"{flag} {value}: not allowed to read it")
        paths.append(str(path))
    return paths[0], paths[1]


def _check_port(port) -> int:
    port = DEFAULT_PORT if port is None else port
    if not (isinstance(port, int) and 1 <= port <= 65535):
        raise ConfigError(f"--port {port}: a port is a whole number from 1 to 65535")
    return port


def serve_plan(class_name: str | None = None, *, public: bool = False, address: str | None = None,
               port: int | None = None, cert=None, key=None, hosts=(), scheduler: str | None = None,
               store: classroom.ClassStore | None = None, dry_run: bool = False) -> ServePlan:
    """Plan a class's (or the public's) server; opens the class in ``store`` (default: the catdnn folder's), which
    gives the class a **new teacher token** (the previous teacher link stops working; students' keys stay).
    ``dry_run``: change nothing (no class made, no new token): the plan holds the class's code and student link
    when it exists already, and no teacher link.

    ``address``: the address to serve on (default: :func:`lan_address`; ``0.0.0.0`` serves every interface, the
    links then name the LAN address). ``hosts``: more names the app answers to (a public deployment's domain).
    Raises :class:`ConfigError` for impossible options, :class:`~catdnn.classroom.ClassroomError` for a bad class
    name or an unusable store."""
    if public == bool(class_name):
        raise ConfigError("serve needs either --class NAME (a class on the local network) or --public (anonymous "
                          "visitors), not both or neither")
    port = _check_port(port)
    tls = _check_tls(cert, key)
    bind = str(address or "").strip() or lan_address()
    shown = lan_address() if bind in ("0.0.0.0", "::") else bind
    scheme = "https" if tls else "http"
    url = f"{scheme}://{'[' + shown + ']' if ':' in shown else shown}:{port}/"
    kept = os.environ.get(ALLOWED_HOSTS_ENV, "").replace(",", " ").split()  # those the user allowed already stay
    names = [shown, socket.gethostname(), *[str(h).strip() for h in hosts if str(h).strip()], *kept]
    options = ["--server.address", bind, "--server.headless", "true"]
    if tls:
        options += ["--server.sslCertFile", tls[0], "--server.sslKeyFile", tls[1]]
    env = {classroom.MODE_ENV: "public" if public else "class",
           ALLOWED_HOSTS_ENV: ",".join(dict.fromkeys(n for n in names if n))}
    if scheduler:
        from .sweep import SCHEDULERS_ENV_VAR, check_scheduler

        scheduler = check_scheduler(scheduler)
        env[SCHEDULER_ENV] = scheduler
        trusted = [a for a in os.environ.get(SCHEDULERS_ENV_VAR, "").split(",") if a.strip()]
        env[SCHEDULERS_ENV_VAR] = ",".join(dict.fromkeys([*trusted, scheduler]))  # the app may connect to it
    plan = ServePlan("public" if public else "class", url, url, encrypted=bool(tls), port=port, options=options,
                     env=env)
    if public:
        return plan
    plan.class_name, token = classroom.class_name(class_name), ""
    owned = store is None
    if owned and dry_run and not classroom.default_path().exists():  # no store yet: a dry run makes none
        info = None
    else:
        store = classroom.ClassStore() if owned else store
        try:
            info = store.class_named(class_name) if dry_run else None
            if not dry_run:
                info, token = store.start_class(class_name)
        finally:
            if owned:
                store.close()
    plan.student_url = ""
    if info is not None:
        plan.class_name, plan.class_code = info.name, info.code
        plan.student_url = f"{url}?join={info.code}"
        env[classroom.CLASS_ENV] = info.code
        env[CLASS_URL_ENV] = plan.student_url
    if token:
        plan.teacher_url = f"{url}?teacher={token}"
    return plan


def run_plan(plan: ServePlan) -> None:
    """Start the planned server in place of this process (never returns)."""
    run_app(plan.port, plan.options, env_extra=plan.env)


def qr_svg(url: str) -> str:
    """The QR code of ``url`` as an SVG document (a string), black on white, for a screen across a classroom.

    Uses ``segno`` (a small, well-kept QR library, no dependencies). Raises :class:`CatdnnError` for an empty
    link or one too long for a QR code."""
    import segno

    text = str(url or "").strip()
    if not text:
        raise CatdnnError("there is no link to draw as a QR code")
    try:
        code = segno.make(text, error="m", micro=False)
    except segno.DataOverflowError:
        raise CatdnnError(f"this link ({len(text)} characters) is too long for a QR code") from None
    return code.svg_inline(scale=8, border=4, dark="#000", light="#fff")
