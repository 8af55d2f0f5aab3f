"""ui.hosts: only this machine's names (and hosts the user lists) pass the Host check (DNS rebinding)."""

from __future__ import annotations

import pytest

from ui.hosts import allowed_hosts, host_allowed, host_name, shown


@pytest.mark.parametrize("header", ["localhost:8501", "LOCALHOST:8501", "localhost", "localhost.:80",
                                    "127.0.0.1:8501", "127.0.0.1", "[::1]:8501", "[::1]"])
def test_this_machines_names_pass(header):
    assert host_allowed(header, env="")


@pytest.mark.parametrize("header", ["evil.example.com:8501", "evil.example.com", "localhost.evil.com:8501",
                                    "127.0.0.1.nip.io:8501", "192.168.1.5:8501", "[::2]:8501", "localhost:8501:1",
                                    "local host", "[::1", "::1:8501", "0.0.0.0:8501"])
def test_foreign_or_malformed_hosts_are_refused(header):
    assert not host_allowed(header, env="")


def test_listed_hosts_pass_for_a_teacher():
    env = "192.168.1.5, classroom.local:8501 [fe80::1]"
    assert allowed_hosts(env) >= {"192.168.1.5", "classroom.local", "fe80::1", "localhost"}
    assert host_allowed("192.168.1.5:8501", env=env) and host_allowed("Classroom.Local:9000", env=env)
    assert host_allowed("[fe80::1]:8501", env=env)
    assert not host_allowed("evil.example.com:8501", env=env)


def test_the_environment_variable_is_read(monkeypatch):
    monkeypatch.setenv("CATDNN_ALLOWED_HOSTS", "teacher-laptop")
    assert host_allowed("teacher-laptop:8501") and not host_allowed("student-laptop:8501")


def test_no_header_is_not_a_browser():
    assert host_allowed(None, env="") and host_allowed("", env="")


def test_names_and_the_shown_text():
    assert host_name("[::1]:8501") == "::1" and host_name("Example.COM.") == "example.com"
    assert host_name(":8501") is None
    assert shown("evil`**x**`<b>.com:1") == "evilxb.com:1"
    assert len(shown("a" * 500)) == 100
