"""The class store: modes, joining, keys, the teacher's token, refusals and the rate limit (catdnn.classroom)."""

import sqlite3

import pytest

from catdnn import classroom as cr
from catdnn.classroom import ClassroomError, ClassStore, Identity, JoinRefused, Limits, RateLimiter


class Clock:
    def __init__(self):
        self.t = 1000.0

    def __call__(self):
        return self.t


@pytest.fixture
def store(tmp_path):
    clock = Clock()
    s = ClassStore(tmp_path / "c.sqlite3", failures=RateLimiter(3, 100, 60, clock),
                   joins=RateLimiter(50, 500, 60, clock), clock=clock)
    s.test_clock = clock
    yield s
    s.close()


def test_mode_from_environment():
    assert cr.current_mode({}) == "local"
    assert cr.current_mode({"CATDNN_MODE": " Class "}) == "class"
    assert cr.current_mode({"CATDNN_MODE": "public"}) == "public"
    with pytest.raises(ClassroomError, match="not a mode"):
        cr.current_mode({"CATDNN_MODE": "admin"})


def test_keys_are_random_long_and_never_stored(store, tmp_path):
    info, token = store.start_class("Period 3")
    ana = store.join(info.code, "Ana", client="10.0.0.2")
    keys = {cr.new_key() for _ in range(200)} | {token, ana.key}
    assert len(keys) == 202  # no repeats
    assert all(len(k) >= 32 for k in keys)  # 24 random bytes, URL-safe: 192 bits
    # Neither the student's key nor the teacher's token is anywhere in the file; their hashes are.
    store.close()
    dump = "\n".join(sqlite3.connect(tmp_path / "c.sqlite3").iterdump())
    assert ana.key not in dump and token not in dump
    assert cr.owner_of(ana.key) in dump and cr.owner_of(token) in dump
    assert ana.key not in repr(ana)


def test_join_then_identify_survives_a_new_store(store, tmp_path):
    info, _ = store.start_class("Period 3")
    ana = store.join(info.code.lower(), "  Ana   B ", client="a")  # codes are case-blind, names trimmed
    assert (ana.role, ana.name, ana.class_code) == ("student", "Ana B", info.code)
    again = ClassStore(tmp_path / "c.sqlite3").identify(ana.key)  # a reload, a server restart
    assert again == ana and again.owner == cr.owner_of(ana.key)


def test_wrong_code_key_or_token_is_refused(store):
    info, token = store.start_class("Period 3")
    other, _ = store.start_class("Period 4")
    with pytest.raises(JoinRefused, match="class code"):
        store.join("ZZZZZZZZ", "Ana", client="a")
    with pytest.raises(JoinRefused, match="key is not known"):
        store.identify(cr.new_key(), client="b")
    with pytest.raises(JoinRefused, match="teacher link"):
        store.teacher(info.code, cr.new_key(), client="c")
    with pytest.raises(JoinRefused, match="teacher link"):  # one class's token opens no other class
        store.teacher(other.code, token, client="c")
    assert store.teacher(info.code, token).sees_all


def test_a_new_serve_rotates_the_teacher_token_and_keeps_students(store):
    info, old = store.start_class("Period 3")
    ana = store.join(info.code, "Ana")
    again, new = store.start_class("Period 3")
    assert again.code == info.code and new != old
    with pytest.raises(JoinRefused):
        store.teacher(info.code, old)
    assert store.teacher(info.code, new).role == "teacher"
    assert store.identify(ana.key) == ana


def test_a_class_is_found_by_its_name_without_a_new_token(store):
    assert store.class_named("Period 3") is None
    info, token = store.start_class("Period 3")
    assert store.class_named("  Period   3 ") == info  # the name as start_class tidies it
    assert store.teacher(info.code, token).role == "teacher"  # looking it up revoked nothing
    with pytest.raises(ClassroomError, match="1 to 80"):
        store.class_named("")


def test_failures_are_rate_limited_per_client_then_released(store):
    info, _ = store.start_class("Period 3")
    for _ in range(3):
        with pytest.raises(JoinRefused, match="class code"):
            store.join("WRONGONE", "Eve", client="evil")
    # The fourth try is refused before the code is even looked at, with the right code too.
    with pytest.raises(JoinRefused, match="too many") as exc:
        store.join(info.code, "Eve", client="evil")
    assert 1 <= exc.value.retry_after <= 60
    with pytest.raises(JoinRefused, match="too many"):
        store.identify(cr.new_key(), client="evil")
    assert store.join(info.code, "Bob", client="other").name == "Bob"  # another client is not held up
    store.test_clock.t += 61
    assert store.join(info.code, "Eve", client="evil").name == "Eve"


def test_guesses_from_many_addresses_lock_out_neither_a_valid_key_nor_a_newcomer(tmp_path):
    """Attack review (issue 16): a global cap on failures let a script spread over 30 addresses refuse every
    student's own key, and a global cap on new visitors let 10 addresses lock newcomers out of public mode.
    Only misses meet the limit, per client, and one host's IPv6 /64 is one client."""
    clock = Clock()
    s = ClassStore(tmp_path / "c.sqlite3", failures=cr.failures_limiter(clock), joins=cr.joins_limiter(clock))
    info, token = s.start_class("P")
    ana = s.join(info.code, "Ana", client="192.168.1.20")
    for n in range(300):
        with pytest.raises(JoinRefused):
            s.identify("forged" + "x" * 32, client=f"10.0.{n // 250}.{n % 250}")
    for n in range(100):
        with pytest.raises(JoinRefused):
            s.identify("forged" + "x" * 32, client=f"2001:db8:0:1::{n + 1:x}")
    assert s.identify(ana.key, client="192.168.1.20") == ana
    assert s.identify(ana.key, client="2001:db8:0:1::5") == ana  # even from the guessing host itself
    assert s.teacher(info.code, token, client="2001:db8:0:1::5").role == "teacher"
    with pytest.raises(JoinRefused, match="too many"):  # the host's own misses are limited as one client
        s.identify("forged" + "y" * 32, client="2001:db8:0:1::ffff")
    for n in range(10):
        for _ in range(cr.JOINS_PER_CLIENT):
            s.visitor(client=f"10.1.0.{n}")
    assert s.visitor(client="198.51.100.7").role == "visitor"


def test_one_client_cannot_fill_a_class_and_the_teacher_can_close_it(tmp_path):
    clock = Clock()
    s = ClassStore(tmp_path / "c.sqlite3", failures=cr.failures_limiter(clock), joins=cr.joins_limiter(clock),
                   clock=clock)
    info, _ = s.start_class("P")
    for i in range(cr.JOINS_PER_CLIENT):
        s.join(info.code, f"bot {i}", client="192.168.1.66")
    with pytest.raises(JoinRefused, match="too many joins") as exc:
        s.join(info.code, "bot x", client="192.168.1.66")
    assert exc.value.retry_after > 600  # an hour's window: 500 places take a script 8 hours
    assert s.join(info.code, "Ana", client="192.168.1.20").name == "Ana"
    s.update_class(info.code, joining=False)
    with pytest.raises(JoinRefused, match="no new students"):
        s.join(info.code, "Bob", client="192.168.1.21")
    bot = s.members(info.code)[-1]
    assert s.remove_member(info.code, bot.owner) and bot.owner not in {m.owner for m in s.members(info.code)}


def test_client_keys():
    assert cr.client_key("192.168.1.2") == "192.168.1.2"
    assert cr.client_key("2001:db8::1") == cr.client_key("2001:db8::ffff:1") == "2001:db8::/64"
    assert cr.client_key("::ffff:10.0.0.1") == "10.0.0.1" and cr.client_key("") == ""


@pytest.mark.parametrize("name, message", [
    ("", "display name"), ("   ", "display name"), ("x" * 41, "at most 40"),
    ("=HYPERLINK(1)", "letters, digits"), ("<b>", "letters, digits"), ("a\nb:c", "letters, digits"),
])
def test_bad_names_are_refused(store, name, message):
    info, _ = store.start_class("Period 3")
    with pytest.raises(JoinRefused, match=message):
        store.join(info.code, name)


def test_a_taken_name_is_refused_and_a_full_class_too(store, monkeypatch):
    info, _ = store.start_class("Period 3")
    store.join(info.code, "Ana")
    with pytest.raises(JoinRefused, match="already called"):
        store.join(info.code, "Ana")
    monkeypatch.setattr(cr, "MAX_MEMBERS", 2)
    store.join(info.code, "Bob")
    with pytest.raises(JoinRefused, match="full"):
        store.join(info.code, "Cy")


def test_identity_may_see_only_its_own_unless_it_sees_all(store):
    info, token = store.start_class("Period 3")
    ana, bob = store.join(info.code, "Ana"), store.join(info.code, "Bob")
    assert ana.may_see(ana.owner) and not ana.may_see(bob.owner) and not ana.may_see("")
    assert store.teacher(info.code, token).may_see(bob.owner)
    assert cr.MACHINE.may_see(bob.owner)
    with pytest.raises(ValueError):
        Identity("admin")


def test_visitors_get_their_own_keys(store):
    a, b = store.visitor("1.1.1.1"), store.visitor("1.1.1.1")
    assert a.role == "visitor" and a.owner != b.owner
    assert store.identify(a.key) == a and not a.may_see(b.owner)


def test_class_settings_and_online_members(store):
    info, _ = store.start_class("Period 3")
    assert (info.paused, info.revealed, info.limits) == (False, False, Limits())
    ana = store.join(info.code, "Ana")
    store.join(info.code, "Bob")
    store.test_clock.t += 120
    store.touch(ana, "Train")
    assert [m.name for m in store.members(info.code, seen_within=60)] == ["Ana"]
    assert store.members(info.code, seen_within=60)[0].page == "Train"
    assert [m.name for m in store.members(info.code)] == ["Ana", "Bob"]
    limits = Limits(max_iterations=1000, runs_at_once=1, cnn_allowed=False)
    new = store.update_class(info.code, paused=True, limits=limits)
    assert new.paused and new.limits.max_iterations == 1000 and not new.limits.cnn_allowed
    assert store.name_of(ana.owner) == "Ana"
    with pytest.raises(ClassroomError):
        Limits(runs_at_once=0)
    with pytest.raises(ClassroomError, match="at least 1 second"):
        Limits(max_seconds=0)
    with pytest.raises(ClassroomError, match="work limit"):
        Limits(max_work=-5)
    timed = Limits(max_seconds=90.0, max_work=None)
    assert store.update_class(info.code, limits=timed).limits == timed == Limits.from_json(timed.to_json())
    assert Limits.from_json("{}").max_seconds == cr.CLASS_MAX_SECONDS  # a class stored before them gets the defaults
    with pytest.raises(ClassroomError, match="no class"):
        store.get_class("NOPE")


def test_a_local_tab_is_the_machine_user_but_sees_all_only_without_a_token():
    assert cr.MACHINE.sees_all
    tab = Identity("owner", owner="session-token")
    assert not tab.sees_all and tab.may_see("session-token") and not tab.may_see("another-tab")
