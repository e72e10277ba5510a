"""hosts.toml parsing: valid files, every error with its line and key, lookup order, fuzzing."""

from __future__ import annotations

import math
import os
import re
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from edgetop.core.config import (
    HOST_KEYS,
    ConfigError,
    FleetConfig,
    HostConfig,
    UnknownHostError,
    find_hosts_file,
    load_config,
    parse_config,
)
from edgetop.core.profiles import PROFILES
from edgetop.remote.errors import EdgetopError

REPO_ROOT = Path(__file__).resolve().parent.parent

SIM_HOST = '[[host]]\nname = "s1"\ntransport = "sim"\ndevice = "t4"\n'


def error_of(text: str, path: str = "hosts.toml") -> ConfigError:
    with pytest.raises(ConfigError) as info:
        parse_config(text, path)
    err = info.value
    rendered = str(err)
    # Every message is one printable line that starts with the file name.
    assert rendered.isprintable(), rendered
    assert rendered.startswith(path)
    return err


def assert_error(text: str, line: int | None, key: str | None, *fragments: str) -> ConfigError:
    err = error_of(text)
    assert (err.line, err.key) == (line, key), str(err)
    rendered = str(err)
    if line is not None:
        assert rendered.startswith(f"hosts.toml:{line}: ")
    if key is not None:
        assert f"key '{key}'" in rendered
    for fragment in fragments:
        assert fragment in rendered, rendered
    return err


# ----------------------------------------------------------------------------------------------
# Valid files


def test_minimal_sim_host_gets_kind_from_profile() -> None:
    fleet = parse_config(SIM_HOST)
    assert isinstance(fleet, FleetConfig)
    assert fleet.path == Path("hosts.toml")
    (host,) = fleet.hosts
    assert host == HostConfig(
        name="s1",
        transport="sim",
        kind="gpu-server",
        address=None,
        device="t4",
        line=1,
    )


def test_defaults_apply_and_host_values_win() -> None:
    text = """
[defaults]
interval = 2
user = "ops"
python = "/usr/bin/python3.11"
labels = ["lab"]

[[host]]
name = "gpu-1"
address = "10.0.0.1"

[[host]]
name = "gpu-2"
address = "10.0.0.2"
interval = 0.5
labels = ["edge", "site-a"]
user = "root"
"""
    one, two = parse_config(text).hosts
    assert (one.transport, one.kind, one.port) == ("ssh", "cpu", 22)  # ssh and cpu by default
    assert (one.interval, one.user, one.python, one.labels) == (
        2.0,
        "ops",
        "/usr/bin/python3.11",
        ("lab",),
    )
    assert isinstance(one.interval, float)
    assert (two.interval, two.user, two.labels) == (0.5, "root", ("edge", "site-a"))
    assert (one.line, two.line) == (8, 12)


def test_local_host_defaults() -> None:
    (host,) = parse_config('[[host]]\nname = "me"\ntransport = "local"\n').hosts
    assert (host.kind, host.address, host.device, host.python) == ("cpu", None, None, "python3")


def test_paths_expand_tilde() -> None:
    text = (
        '[[host]]\nname = "g"\naddress = "g.example"\nidentity = "~/.ssh/id_ed25519"\n'
        'known_hosts = "~/kh"\n'
    )
    (host,) = parse_config(text).hosts
    assert host.identity == os.path.expanduser("~/.ssh/id_ed25519")
    assert host.known_hosts == os.path.expanduser("~/kh")
    assert not host.identity.startswith("~")


def test_ipv6_address_and_jump_specs_accepted() -> None:
    text = (
        '[[host]]\nname = "a"\naddress = "fe80::1"\njump = "ops@[2001:db8::1]:2222"\n'
        '[[host]]\nname = "b"\naddress = "b.example"\njump = "bastion.example:22"\n'
    )
    a, b = parse_config(text).hosts
    assert a.jump == "ops@[2001:db8::1]:2222"
    assert b.jump == "bastion.example:22"


def test_jump_through_named_ssh_host() -> None:
    text = (
        '[[host]]\nname = "bastion"\naddress = "b.example"\n'
        '[[host]]\nname = "orin"\nkind = "jetson"\naddress = "10.0.5.21"\njump = "bastion"\n'
    )
    fleet = parse_config(text)
    assert fleet.host("orin").jump == "bastion"
    assert fleet.host("orin").kind == "jetson"


def test_inherited_jump_is_dropped_where_it_cannot_apply() -> None:
    text = """
[defaults]
jump = "bastion"

[[host]]
name = "bastion"
address = "b.example"

[[host]]
name = "me"
transport = "local"

[[host]]
name = "orin"
address = "10.0.0.5"
"""
    fleet = parse_config(text)
    assert fleet.host("bastion").jump is None  # would jump through itself
    assert fleet.host("me").jump is None  # local hosts do not use SSH
    assert fleet.host("orin").jump == "bastion"


def test_sim_ignores_default_kind() -> None:
    text = '[defaults]\nkind = "jetson"\n' + SIM_HOST
    assert parse_config(text).hosts[0].kind == "gpu-server"


def test_sim_explicit_matching_kind_is_fine() -> None:
    text = SIM_HOST + 'kind = "gpu-server"\n'
    assert parse_config(text).hosts[0].kind == "gpu-server"


def test_inline_host_array_and_quoted_keys() -> None:
    text = 'host = [{name = "a", transport = "local"}, {"name" = "b", transport = "local"}]\n'
    assert parse_config(text).names == ("a", "b")


def test_fleet_host_lookup() -> None:
    fleet = parse_config(SIM_HOST)
    assert fleet.host("s1").device == "t4"
    with pytest.raises(UnknownHostError) as info:
        fleet.host("s11")
    assert isinstance(info.value, KeyError)
    assert isinstance(info.value, ConfigError)
    assert str(info.value) == "hosts.toml: no host named 's11' (did you mean 's1'?); hosts: s1"


def test_config_error_is_an_edgetop_error() -> None:
    assert issubclass(ConfigError, EdgetopError)


# ----------------------------------------------------------------------------------------------
# The message format


def test_message_exact_example() -> None:
    lines = [
        "# comment",
        "[[host]]",
        'name = "one"',
        'transport = "local"',
        "[[host]]",
        'name = "two"',
        'transport = "local"',
        "",
        "[[host]]",
        'name = "a100-1"',
        'address = "a100-1.lab"',
        'port = "abc"',
    ]
    err = error_of("\n".join(lines) + "\n")
    assert str(err) == (
        "hosts.toml:12: [[host]] #3 'a100-1', key 'port': expected an integer 1-65535, got 'abc'"
    )
    assert (err.path, err.line, err.key) == ("hosts.toml", 12, "port")


def test_message_parts_omitted_when_none() -> None:
    assert str(ConfigError("f.toml", None, None, "bad")) == "f.toml: bad"
    assert str(ConfigError("f.toml", 3, None, "bad")) == "f.toml:3: bad"
    assert str(ConfigError("f.toml", 3, "port", "bad")) == "f.toml:3: key 'port': bad"
    assert str(ConfigError(Path("/x/f.toml"), None, "k", "m")) == "/x/f.toml: key 'k': m"


def test_message_escapes_control_characters() -> None:
    err = ConfigError("f.toml", 1, "a\nb", "got 'x\ny'")
    assert "\n" not in str(err)
    assert "a\\nb" in str(err)


# ----------------------------------------------------------------------------------------------
# Errors, each with its line and key


def test_toml_syntax_error_line() -> None:
    text = '[[host]]\nname = "a"\nport = \n'
    err = assert_error(text, 3, None, "TOML syntax error")
    assert "(at line" not in str(err)  # the position is in the prefix, not repeated


def test_toml_syntax_error_at_end_of_document() -> None:
    err = error_of('[[host]]\nname = "a"\nport =')
    assert err.line == 3


def test_toml_syntax_error_duplicate_key() -> None:
    err = error_of('[[host]]\nname = "a"\nname = "b"\n')
    assert err.line == 3
    assert "TOML syntax error" in str(err)


def test_syntax_error_with_python314_attributes() -> None:
    from edgetop.core.config import _syntax_error

    class Fake(ValueError):
        msg = "Invalid value"
        lineno = 7
        colno = 3

    err = _syntax_error("h.toml", "", Fake("Invalid value (at line 7, column 3)"))
    assert str(err) == "h.toml:7: TOML syntax error: Invalid value (column 3)"


def test_huge_integer_is_a_config_error() -> None:
    err = error_of("[[host]]\nport = " + "9" * 5000 + "\n")
    assert "too long" in str(err)


def test_unknown_host_key_suggests_closest() -> None:
    text = SIM_HOST + "prot = 22\n"
    assert_error(text, 5, "prot", "unknown key", "did you mean 'port'?")


def test_unknown_key_without_close_match_lists_keys() -> None:
    text = SIM_HOST + "zzzzzz = 1\n"
    assert_error(text, 5, "zzzzzz", "valid keys:", "known_hosts")


def test_unknown_default_key() -> None:
    text = "[defaults]\n# c\nintervall = 1\n" + SIM_HOST
    assert_error(text, 3, "intervall", "[defaults]", "did you mean 'interval'?")


def test_name_in_defaults_rejected() -> None:
    text = '[defaults]\nname = "x"\n' + SIM_HOST
    assert_error(text, 2, "name", "cannot have a default")


def test_unknown_top_level_key() -> None:
    text = SIM_HOST + '\n[hosts]\nname = "x"\n'
    assert_error(text, 6, "hosts", "did you mean 'host'?")


def test_unknown_top_level_bare_key() -> None:
    assert_error("verbose = true\n" + SIM_HOST, 1, "verbose", "unknown top-level")


def test_defaults_not_a_table() -> None:
    assert_error("defaults = 1\n" + SIM_HOST, 1, "defaults", "expected a table")


def test_single_bracket_host() -> None:
    assert_error('\n[host]\nname = "a"\n', 2, "host", "[[host]]")


def test_host_not_a_table() -> None:
    assert_error("host = [1]\n", 1, "host", "must be a table")


@pytest.mark.parametrize(
    ("line", "fragment"),
    [
        ('port = "abc"', "expected an integer 1-65535, got 'abc'"),
        ("port = true", "got true (a boolean)"),
        ("port = 0", "got 0"),
        ("port = 65536", "got 65536"),
        ("port = 22.0", "got 22.0"),
        ("interval = true", "got true (a boolean)"),
        ('interval = "1"', "expected a number of seconds, got '1'"),
        ("interval = 0", "> 0"),
        ("interval = -1.5", "> 0"),
        ("interval = 3600.5", "<= 3600"),
        ("interval = nan", "got nan"),
        ("interval = inf", "got inf"),
        ('labels = "edge"', "expected an array of strings"),
        ("labels = [1]", "label #1: expected a string, got 1"),
        ('labels = ["a", ""]', "label #2: must not be empty"),
        ('labels = ["a\\u0007"]', "control character"),
        ("user = 5", "expected a string, got 5"),
        ('user = ""', "must not be empty"),
        ('user = "   "', "must not be empty"),
        ('user = "a b"', "whitespace"),
        ('user = "-lroot"', "must not start with '-'"),
        ('identity = ""', "must not be empty"),
        ('identity = "a\\nb"', "control character"),
        ("known_hosts = []", "expected a string, got an array"),
        ('python = "python3\\nrm -rf /"', "control character"),
        ('python = "python3 -u"', "whitespace"),
        ("python = { a = 1 }", "got a table"),
        ("user = 1979-05-27", "got a date/time (1979-05-27)"),
        ('jump = "a b"', "whitespace"),
        ('jump = "-J"', "must not start with '-'"),
        ('jump = "ops@"', "[user@]host[:port]"),
        ('jump = "b:99999"', "1-65535"),
        ('jump = "b:x"', "[user@]host[:port]"),
    ],
)
def test_wrong_types_and_values(line: str, fragment: str) -> None:
    key = line.split(" ", 1)[0]
    text = f'# fleet\n[[host]]\nname = "h"\naddress = "h.example"\n{line}\n'
    assert_error(text, 5, key, "[[host]] #1 'h'", fragment)


@pytest.mark.parametrize(
    ("value", "fragment"),
    [
        ('"carrier-pigeon"', "expected one of 'ssh', 'local', 'sim'"),
        ('"SSH"', "did you mean 'ssh'?"),
        ("1", "expected a string"),
    ],
)
def test_unknown_transport(value: str, fragment: str) -> None:
    assert_error(f'[[host]]\nname = "h"\ntransport = {value}\n', 3, "transport", fragment)


def test_unknown_kind() -> None:
    text = '[[host]]\nname = "h"\naddress = "x"\nkind = "gpu"\n'
    assert_error(text, 4, "kind", "'gpu-server', 'jetson', 'cpu'", "got 'gpu'")


def test_sim_kind_contradicting_profile() -> None:
    text = SIM_HOST + 'kind = "jetson"\n'
    assert_error(text, 5, "kind", "contradicts device 't4'")


def test_duplicate_host_name_reports_second() -> None:
    text = SIM_HOST + "\n" + SIM_HOST.replace('device = "t4"', 'device = "a100-40gb"')
    assert_error(text, 7, "name", "duplicate host name 's1'", "first defined at line 2")


def test_missing_name() -> None:
    text = SIM_HOST + '\n[[host]]\ntransport = "local"\n'
    assert_error(text, 6, "name", "[[host]] #2", "missing")


def test_missing_address_for_ssh_explicit_and_default() -> None:
    assert_error('[[host]]\nname = "g"\ntransport = "ssh"\n', 1, "address", "missing")
    assert_error('\n\n[[host]]\nname = "g"\nport = 22\n', 3, "address", "ssh host")


def test_missing_device_for_sim_lists_profiles() -> None:
    err = assert_error('[[host]]\nname = "s"\ntransport = "sim"\n', 1, "device", "missing")
    for name in PROFILES:
        assert name in str(err)


def test_unknown_device_lists_profiles() -> None:
    text = '[[host]]\nname = "s"\ntransport = "sim"\ndevice = "a100"\n'
    err = assert_error(text, 4, "device", "unknown device profile 'a100'")
    for name in PROFILES:
        assert name in str(err)


def test_unknown_device_in_defaults() -> None:
    text = '[defaults]\ndevice = "h100"\n' + SIM_HOST
    assert_error(text, 2, "device", "[defaults]", "unknown device profile 'h100'")


def test_jump_naming_itself() -> None:
    text = '[[host]]\nname = "g"\naddress = "g.example"\njump = "g"\n'
    assert_error(text, 4, "jump", "its own jump host")


def test_jump_cycle() -> None:
    text = (
        '[[host]]\nname = "a"\naddress = "a.example"\njump = "b"\n'
        '[[host]]\nname = "b"\naddress = "b.example"\njump = "c"\n'
        '[[host]]\nname = "c"\naddress = "c.example"\njump = "a"\n'
    )
    assert_error(text, 4, "jump", "cycle", "'a' -> 'b' -> 'c' -> 'a'")


def test_jump_host_must_be_ssh() -> None:
    text = SIM_HOST + '[[host]]\nname = "g"\naddress = "g.example"\njump = "s1"\n'
    assert_error(text, 8, "jump", "jump host 's1' uses transport 'sim'")


def test_jump_from_defaults_to_non_ssh_points_at_defaults() -> None:
    text = '[defaults]\njump = "s1"\n' + SIM_HOST + '[[host]]\nname = "g"\naddress = "g"\n'
    assert_error(
        text, 2, "jump", "[defaults]", "must be reached over ssh (inherited by [[host]] #2 'g')"
    )


def test_explicit_jump_on_non_ssh_host() -> None:
    text = '[[host]]\nname = "me"\ntransport = "local"\njump = "b.example"\n'
    assert_error(text, 4, "jump", "only to transport 'ssh'")


@pytest.mark.parametrize(
    "name",
    [
        "../etc/passwd",
        "-rf",
        ".hidden",
        "a b",
        "a/b",
        "a\\nb",
        "ä",
        "x" * 64,
        "",
        "a;reboot",
    ],
)
def test_hostile_host_names(name: str) -> None:
    text = f'[[host]]\ntransport = "local"\nname = "{name}"\n'
    assert_error(text, 3, "name")


def test_longest_valid_name() -> None:
    name = "a" * 63
    assert parse_config(f'[[host]]\nname = "{name}"\ntransport = "local"\n').names == (name,)


def test_non_string_name() -> None:
    assert_error('[[host]]\nname = 7\ntransport = "local"\n', 2, "name", "expected a string")


@pytest.mark.parametrize(
    ("address", "fragment"),
    [
        ("-oProxyCommand=touch", "must not start with '-'"),
        ("host name", "whitespace"),
        ("host\\tname", "control character"),
        ("host\\u0000", "control character"),
        ("ops@host", "put the user in 'user'"),
        ("", "must not be empty"),
    ],
)
def test_hostile_addresses(address: str, fragment: str) -> None:
    text = f'[[host]]\nname = "g"\naddress = "{address}"\n'
    assert_error(text, 3, "address", fragment)


def test_no_hosts() -> None:
    for text in ("", "# nothing\n", "[defaults]\ninterval = 1\n", "host = []\n"):
        err = error_of(text)
        assert err.line is None
        assert "no hosts" in str(err)


# ----------------------------------------------------------------------------------------------
# The line locator


def test_locator_skips_comments_and_multiline_strings() -> None:
    text = """[[host]]
name = "g"
# port = "commented out"
address = "g.example"
labels = ['''
port = "inside a string"''']
"port" = "abc"
"""
    assert_error(text, 7, "port", "expected an integer")


def test_locator_handles_header_comments_and_spacing() -> None:
    text = (
        '[ defaults ]  # shared\n  interval   =  0\n[[ host ]] # first\nname = "a"\n'
        'transport = "local"\n'
    )
    assert_error(text, 2, "interval", "[defaults]")


def test_locator_counts_crlf_lines_like_toml() -> None:
    text = '[[host]]\r\nname = "g"\r\naddress = "g"\r\nport = -1\r\n'
    assert_error(text, 4, "port")


def test_locator_ignores_other_line_separators() -> None:
    # NEL and U+2028 are line breaks to str.splitlines but not to TOML.
    text = '# a\x85 b \u2028 c\n[[host]]\nname = "g"\naddress = "g"\nport = 0\n'
    assert_error(text, 5, "port")


def test_locator_dotted_key() -> None:
    text = '[[host]]\nname = "g"\naddress = "g"\nport.x = 1\n'
    assert_error(text, 4, "port", "got a table")


def test_locator_falls_back_to_header() -> None:
    text = '[[host]]\nname = "g"\naddress = "g"\n[host.extra]\nx = 1\n'
    assert_error(text, 1, "extra", "unknown key")


def test_locator_inline_hosts_fall_back_to_host_key_line() -> None:
    text = '# x\nhost = [{name = "a", transport = "local", port = "x"}]\n'
    assert_error(text, 2, "port")


# ----------------------------------------------------------------------------------------------
# load_config and find_hosts_file


def test_load_config_reads_file(tmp_path: Path) -> None:
    path = tmp_path / "hosts.toml"
    path.write_text(SIM_HOST, encoding="utf-8")
    fleet = load_config(path)
    assert fleet.path == path
    assert fleet.names == ("s1",)


def test_load_config_errors_name_the_file(tmp_path: Path) -> None:
    path = tmp_path / "fleet.toml"
    path.write_text(SIM_HOST + "port = 0\n", encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert str(info.value).startswith(f"{path}:5: ")


def test_load_config_accepts_bom(tmp_path: Path) -> None:
    path = tmp_path / "hosts.toml"
    path.write_bytes(b"\xef\xbb\xbf" + SIM_HOST.encode())
    assert load_config(path).names == ("s1",)


def test_load_config_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "hosts.toml"
    path.write_bytes(SIM_HOST.encode() + b'user = "\xff"\n')
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert info.value.line == 5
    assert "not UTF-8" in str(info.value)


def test_load_config_missing_and_directory(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no such file"):
        load_config(tmp_path / "nope.toml")
    with pytest.raises(ConfigError, match="is a directory"):
        load_config(tmp_path)


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="root reads anything")
def test_load_config_unreadable(tmp_path: Path) -> None:
    path = tmp_path / "hosts.toml"
    path.write_text(SIM_HOST, encoding="utf-8")
    path.chmod(0)
    with pytest.raises(ConfigError, match="permission denied"):
        load_config(path)


def _make(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(SIM_HOST, encoding="utf-8")
    return path


def test_find_hosts_file_order(tmp_path: Path) -> None:
    cwd, home = tmp_path / "cwd", tmp_path / "home"
    cwd.mkdir()
    home.mkdir()
    user_file = _make(home / ".config" / "edgetop" / "hosts.toml")
    assert find_hosts_file(None, cwd, home) == user_file
    cwd_file = _make(cwd / "hosts.toml")
    assert find_hosts_file(None, cwd, home) == cwd_file
    explicit = _make(tmp_path / "other.toml")
    assert find_hosts_file(explicit, cwd, home) == explicit


def test_find_hosts_file_explicit_must_exist(tmp_path: Path) -> None:
    _make(tmp_path / "hosts.toml")  # present in cwd, but an explicit path is never replaced
    with pytest.raises(ConfigError) as info:
        find_hosts_file(tmp_path / "missing.toml", tmp_path, tmp_path)
    assert str(info.value).startswith(str(tmp_path / "missing.toml"))
    with pytest.raises(ConfigError, match="is a directory"):
        find_hosts_file(tmp_path, tmp_path, tmp_path)


def test_find_hosts_file_none_lists_places(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        find_hosts_file(None, tmp_path / "cwd", tmp_path / "home")
    message = str(info.value)
    assert str(tmp_path / "cwd" / "hosts.toml") in message
    assert str(tmp_path / "home" / ".config" / "edgetop" / "hosts.toml") in message


def test_find_hosts_file_ignores_directory_named_hosts_toml(tmp_path: Path) -> None:
    (tmp_path / "hosts.toml").mkdir()
    user_file = _make(tmp_path / ".config" / "edgetop" / "hosts.toml")
    assert find_hosts_file(None, tmp_path, tmp_path) == user_file


# ----------------------------------------------------------------------------------------------
# The repository's default fleet


def test_repo_hosts_toml() -> None:
    fleet = load_config(REPO_ROOT / "hosts.toml")
    assert fleet.names == (
        "this-machine",
        "a100-1",
        "a100-2",
        "v100-1",
        "xavier-1",
        "xavier-2",
        "xavier-3",
    )
    me = fleet.host("this-machine")
    assert (me.transport, me.kind) == ("local", "cpu")
    devices = {h.name: h.device for h in fleet.hosts if h.transport == "sim"}
    assert devices == {
        "a100-1": "a100-40gb",
        "a100-2": "a100-40gb",
        "v100-1": "v100-16gb",
        "xavier-1": "jetson-agx-xavier",
        "xavier-2": "jetson-agx-xavier",
        "xavier-3": "jetson-agx-xavier",
    }
    for host in fleet.hosts:
        assert host.interval == 1.0
        assert host.transport != "ssh"  # works on a fresh machine with no SSH
        if host.transport == "sim":
            assert "simulated" in host.labels
            assert host.kind == PROFILES[host.device or ""].kind


def test_repo_hosts_toml_examples_parse_when_uncommented() -> None:
    # The commented-out examples must be valid too, once an operator uncomments them.
    text = (REPO_ROOT / "hosts.toml").read_text(encoding="utf-8")
    uncommented = re.sub(r"(?m)^# (\[\[host\]\]|[a-z_]+ = .*)$", r"\1", text)
    fleet = parse_config(uncommented)
    orin = fleet.host("orin-01")
    assert (orin.transport, orin.kind, orin.jump) == ("ssh", "jetson", "bastion")
    assert fleet.host("bastion").transport == "ssh"
    gpu = fleet.host("gpu-01")
    assert gpu.identity == os.path.expanduser("~/.ssh/id_ed25519")
    assert gpu.known_hosts == os.path.expanduser("~/.ssh/known_hosts")


# ----------------------------------------------------------------------------------------------
# Property tests


def check_outcome(text: str) -> FleetConfig | ConfigError:
    """parse_config returns a FleetConfig or raises ConfigError; the message is one line."""
    try:
        return parse_config(text, "fuzz.toml")
    except ConfigError as e:
        rendered = str(e)
        assert rendered.startswith("fuzz.toml")
        assert rendered.isprintable(), rendered
        n_lines = text.count("\n") + 1
        assert e.line is None or 1 <= e.line <= n_lines
        return e


FRAGMENTS = [
    "[[host]]",
    "[defaults]",
    "[host]",
    "[[ host ]] # c",
    'name = "a"',
    'name = "b"',
    "name = 1",
    'transport = "sim"',
    'transport = "local"',
    'transport = "ssh"',
    'device = "t4"',
    'device = "nope"',
    'address = "10.0.0.1"',
    'address = "-x"',
    "port = 22",
    "port = true",
    'jump = "a"',
    'jump = "b"',
    "interval = 0.5",
    "interval = nan",
    'labels = ["x"]',
    "labels = [",
    "]",
    "'''",
    '"""',
    "# comment",
    "= =",
    "a.b.c = 1",
    "",
]


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.characters(codec=None)))
def test_fuzz_arbitrary_text(text: str) -> None:
    check_outcome(text)


@settings(max_examples=400, deadline=None)
@given(st.lists(st.sampled_from(FRAGMENTS), max_size=25).map("\n".join))
def test_fuzz_toml_like_text(text: str) -> None:
    check_outcome(text)


# -- a tiny TOML serializer, so generated structures reach the parser as text -----------------

BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")


def toml_key(key: str) -> str:
    return key if BARE_KEY.fullmatch(key) else toml_string(key)


def toml_string(s: str) -> str:
    out = []
    for c in s:
        if c in '"\\':
            out.append("\\" + c)
        elif ord(c) < 0x20 or ord(c) == 0x7F:
            out.append(f"\\u{ord(c):04x}")
        else:
            out.append(c)
    return '"' + "".join(out) + '"'


def toml_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        if math.isnan(v):
            return "nan"
        if math.isinf(v):
            return "inf" if v > 0 else "-inf"
        return repr(v)
    if isinstance(v, str):
        return toml_string(v)
    if isinstance(v, date):
        return v.isoformat()
    if isinstance(v, list):
        return "[" + ", ".join(toml_value(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{" + ", ".join(f"{toml_key(k)} = {toml_value(x)}" for k, x in v.items()) + "}"
    raise TypeError(v)


def toml_table(header: str, table: dict[str, Any]) -> str:
    return header + "\n" + "".join(f"{toml_key(k)} = {toml_value(v)}\n" for k, v in table.items())


def toml_document(defaults: dict[str, Any] | None, hosts: list[dict[str, Any]]) -> str:
    parts = [toml_table("[defaults]", defaults)] if defaults is not None else []
    parts += [toml_table("[[host]]", h) for h in hosts]
    return "\n".join(parts)


# -- structured fuzzing: right keys, random values of random types ----------------------------

scalars = st.one_of(
    st.booleans(),
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.integers(min_value=0, max_value=70000),
    st.floats(),
    st.text(max_size=12),
    st.sampled_from(["ssh", "local", "sim", "cpu", "jetson", "gpu-server", "a", "b"]),
    st.sampled_from(list(PROFILES)),
    st.dates(),
)
values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3),
        st.dictionaries(st.sampled_from(["x", "y", "name"]), inner, max_size=2),
    ),
    max_leaves=6,
)
keys = st.one_of(st.sampled_from(HOST_KEYS), st.text(min_size=1, max_size=8))
tables = st.dictionaries(keys, values, max_size=8)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(st.none(), tables), st.lists(tables, max_size=5))
def test_fuzz_structured(defaults: dict[str, Any] | None, hosts: list[dict[str, Any]]) -> None:
    text = toml_document(defaults, hosts)
    result = check_outcome(text)
    if isinstance(result, ConfigError) and result.key is not None and result.line is not None:
        # The reported line is the key's own line or its table's header.
        reported = text.split("\n")[result.line - 1]
        assert reported.startswith("[") or toml_key(result.key) in reported, (result, reported)


# -- valid fleets round-trip ------------------------------------------------------------------

names = st.from_regex(r"[A-Za-z0-9][A-Za-z0-9._-]{0,62}", fullmatch=True)
tokens = st.from_regex(r"[A-Za-z0-9_][A-Za-z0-9_.:/-]{0,20}", fullmatch=True)
free_text = st.text(
    alphabet=st.characters(blacklist_categories=("Cc", "Cs", "Zl", "Zp")), min_size=1, max_size=10
).filter(str.strip)
intervals = st.one_of(
    st.floats(min_value=1e-3, max_value=3600.0, allow_nan=False),
    st.integers(min_value=1, max_value=3600),
)


@st.composite
def fleets(draw: st.DrawFn) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    defaults: dict[str, Any] = {}
    if draw(st.booleans()):
        defaults["interval"] = draw(intervals)
    if draw(st.booleans()):
        defaults["python"] = draw(tokens)
    host_names = draw(st.lists(names, min_size=1, max_size=6, unique=True))
    hosts: list[dict[str, Any]] = []
    ssh_names: list[str] = []
    for name in host_names:
        transport = draw(st.sampled_from(["ssh", "local", "sim"]))
        host: dict[str, Any] = {"name": name, "transport": transport}
        if transport == "ssh":
            host["address"] = draw(tokens.filter(lambda s: "@" not in s))
            host["kind"] = draw(st.sampled_from(["gpu-server", "jetson", "cpu"]))
            if draw(st.booleans()):
                host["port"] = draw(st.integers(min_value=1, max_value=65535))
            if draw(st.booleans()):
                host["user"] = draw(tokens)
            if draw(st.booleans()):
                host["identity"] = "/keys/" + draw(tokens)
            if draw(st.booleans()):
                host["known_hosts"] = "/kh/" + draw(tokens)
            if ssh_names and draw(st.booleans()):
                host["jump"] = draw(st.sampled_from(ssh_names))  # earlier hosts only: no cycles
            ssh_names.append(name)
        elif transport == "sim":
            host["device"] = draw(st.sampled_from(list(PROFILES)))
        if draw(st.booleans()):
            host["interval"] = draw(intervals)
        if draw(st.booleans()):
            host["labels"] = draw(st.lists(free_text, max_size=3))
        hosts.append(host)
    return defaults, hosts


@settings(max_examples=200, deadline=None)
@given(fleets())
def test_valid_fleet_round_trips(fleet: tuple[dict[str, Any], list[dict[str, Any]]]) -> None:
    defaults, hosts = fleet
    config = parse_config(toml_document(defaults or None, hosts))
    assert len(config.hosts) == len(hosts)
    for given_host, host in zip(hosts, config.hosts, strict=True):
        merged = {**defaults, **given_host}
        assert host.name == merged["name"]
        assert host.transport == merged["transport"]
        if host.transport == "sim":
            assert host.kind == PROFILES[merged["device"]].kind
        else:
            assert host.kind == merged.get("kind", "cpu")
        assert host.address == merged.get("address")
        assert host.port == merged.get("port", 22)
        assert host.user == merged.get("user")
        assert host.identity == merged.get("identity")
        assert host.known_hosts == merged.get("known_hosts")
        assert host.jump == merged.get("jump")
        assert host.device == merged.get("device")
        assert host.python == merged.get("python", "python3")
        assert host.interval == float(merged.get("interval", 1.0))
        assert host.labels == tuple(merged.get("labels", ()))
        assert host.line is not None
