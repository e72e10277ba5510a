"""hosts.toml: parse and validate the fleet description.

Pure: `parse_config` turns text into a `FleetConfig` or raises exactly one `ConfigError` that
names the file, the line and the key. The only I/O is `load_config` reading the file and
`find_hosts_file` checking which candidate files exist.

File format::

    [defaults]          # optional; any host key except `name`
    interval = 1.0

    [[host]]            # one table per host; its values override [defaults]
    name = "a100-1"
    transport = "sim"
    device = "a100-40gb"

tomllib reports no line numbers for values, so a small scanner (`_Locator`) finds the line of
`key =` inside the right table; messages fall back to the table's header line, then to none.
"""

from __future__ import annotations

import difflib
import math
import os
import re
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, time
from pathlib import Path
from typing import Any

from edgetop.core.profiles import PROFILES
from edgetop.remote.errors import EdgetopError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on 3.10 only
    import tomli as tomllib

__all__ = [
    "HOST_KEYS",
    "KINDS",
    "TRANSPORTS",
    "ConfigError",
    "FleetConfig",
    "HostConfig",
    "UnknownHostError",
    "find_hosts_file",
    "load_config",
    "parse_config",
]

TRANSPORTS: tuple[str, ...] = ("ssh", "local", "sim")
KINDS: tuple[str, ...] = ("gpu-server", "jetson", "cpu")
HOST_KEYS: tuple[str, ...] = (
    "name",
    "transport",
    "kind",
    "address",
    "port",
    "user",
    "identity",
    "known_hosts",
    "jump",
    "device",
    "python",
    "interval",
    "labels",
)
_DEFAULT_KEYS: tuple[str, ...] = tuple(k for k in HOST_KEYS if k != "name")
_DEFAULT_TRANSPORT = "ssh"  # an SSH monitoring tool: a bare host with an address means SSH
_MAX_INTERVAL = 3600.0

# Host names end up in file names (state, logs) and on screen: keep them boring.
_NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,62}")
# Control characters (C0, DEL, C1, Unicode line/paragraph separators) and lone surrogates
# (which cannot be encoded when written to a file or sent over SSH).
_CONTROL_RE = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029\ud800-\udfff]")
_SPACE_OR_CONTROL_RE = re.compile(r"[\s\x00-\x1f\x7f-\x9f\u2028\u2029\ud800-\udfff]")
# "[user@]host[:port]"; host may be a bracketed IPv6 literal.
_JUMP_RE = re.compile(
    r"(?:(?P<user>[^@]+)@)?(?P<host>\[[0-9A-Fa-f:.%\w]+\]|[^:@\[\]]+)(?::(?P<port>\d+))?"
)


# --------------------------------------------------------------------------------------------
# Data


@dataclass(frozen=True)
class HostConfig:
    """One validated [[host]] table, with [defaults] applied."""

    name: str
    transport: str  # "ssh" | "local" | "sim"
    kind: str  # "gpu-server" | "jetson" | "cpu"
    address: str | None  # required for ssh
    port: int = 22
    user: str | None = None
    identity: str | None = None  # "~" expanded
    known_hosts: str | None = None  # "~" expanded; None: the transport's default
    jump: str | None = None  # another [[host]] name, or "[user@]host[:port]"
    device: str | None = None  # sim profile name (required for sim)
    python: str = "python3"  # remote interpreter
    interval: float = 1.0  # seconds
    labels: tuple[str, ...] = ()
    line: int | None = None  # line of the [[host]] header, for later messages


@dataclass(frozen=True)
class FleetConfig:
    """The whole validated file: its path and its hosts in file order."""

    path: Path
    hosts: tuple[HostConfig, ...]

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(h.name for h in self.hosts)

    def host(self, name: str) -> HostConfig:
        """The host called `name`; UnknownHostError (a ConfigError and a KeyError) if none."""
        for h in self.hosts:
            if h.name == name:
                return h
        hint = _did_you_mean(name, self.names)
        raise UnknownHostError(
            str(self.path),
            None,
            None,
            f"no host named {_quote(name)}{hint}; hosts: {', '.join(self.names)}",
        )


# --------------------------------------------------------------------------------------------
# Errors


class ConfigError(EdgetopError):
    """Bad hosts file. str() is one line: "path:line: [[host]] #n 'name', key 'k': message"."""

    def __init__(
        self,
        path: str | Path,
        line: int | None,
        key: str | None,
        message: str,
        *,
        table: str | None = None,
    ) -> None:
        self.path = str(path)
        self.line = line
        self.key = key
        self.message = message
        self.table = table  # e.g. "[defaults]" or "[[host]] #3 'a100-1'"
        super().__init__(self._render())

    def _render(self) -> str:
        head = _safe(self.path, limit=None) + (f":{self.line}" if self.line is not None else "")
        where = self.table or ""
        if self.key is not None:
            key_part = f"key {_quote(self.key)}"
            where = f"{where}, {key_part}" if where else key_part
        body = _safe(self.message, limit=None)
        return f"{head}: {where}: {body}" if where else f"{head}: {body}"

    def __str__(self) -> str:
        return self._render()


class UnknownHostError(ConfigError, KeyError):
    """`FleetConfig.host` was asked for a name the file does not define."""

    def __str__(self) -> str:  # KeyError.__str__ would repr() the message
        return self._render()


class _Bad(Exception):
    """A value failed validation; the caller adds file, line, table and key."""


# --------------------------------------------------------------------------------------------
# Public entry points


def parse_config(text: str, path: str | Path = "hosts.toml") -> FleetConfig:
    """Parse and validate the text of a hosts file. Raises ConfigError, nothing else."""
    where = str(path)
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise _syntax_error(where, text, e) from None
    except (ValueError, RecursionError) as e:
        # e.g. an integer too long for int(), or absurdly deep nesting: still bad input.
        reason = "a number is too long" if isinstance(e, ValueError) else "nesting is too deep"
        raise ConfigError(where, None, None, f"TOML syntax error: {reason}") from None
    return _Builder(where, text, data).build()


def load_config(path: Path) -> FleetConfig:
    """Read and parse a hosts file; unreadable, non-UTF-8 or a directory is a ConfigError."""
    try:
        raw = Path(path).read_bytes()
    except IsADirectoryError:
        raise ConfigError(path, None, None, "is a directory, not a hosts file") from None
    except FileNotFoundError:
        raise ConfigError(path, None, None, "no such file") from None
    except PermissionError:
        raise ConfigError(path, None, None, "permission denied") from None
    except OSError as e:
        raise ConfigError(path, None, None, f"cannot read: {e.strerror or e}") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        line = raw.count(b"\n", 0, e.start) + 1
        raise ConfigError(
            path, line, None, f"not UTF-8 text (byte 0x{raw[e.start]:02x} at offset {e.start})"
        ) from None
    # Editors on Windows may prepend a BOM; TOML forbids it, but it is not worth a failure.
    text = text.removeprefix("\ufeff")
    return parse_config(text, path)


def find_hosts_file(explicit: Path | None, cwd: Path, home: Path) -> Path:
    """Which hosts file to use: `explicit`, else ./hosts.toml, else ~/.config/edgetop/hosts.toml."""
    if explicit is not None:
        if explicit.is_dir():
            raise ConfigError(explicit, None, None, "is a directory, not a hosts file")
        if not explicit.is_file():
            raise ConfigError(explicit, None, None, "no such file (given with --hosts)")
        return explicit
    candidates = (cwd / "hosts.toml", home / ".config" / "edgetop" / "hosts.toml")
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    looked = ", ".join(str(c) for c in candidates)
    raise ConfigError(
        "hosts.toml", None, None, f"no hosts file found; looked in {looked}; pass --hosts FILE"
    )


# --------------------------------------------------------------------------------------------
# Building


class _Builder:
    """Walks the parsed TOML, validating as it goes; the first problem raises."""

    def __init__(self, path: str, text: str, data: dict[str, Any]) -> None:
        self.path = path
        self.data = data
        self.loc = _Locator(text)

    def fail(
        self, line: int | None, key: str | None, message: str, table: str | None = None
    ) -> ConfigError:
        return ConfigError(self.path, line, key, message, table=table)

    def build(self) -> FleetConfig:
        for key in self.data:
            if key not in ("defaults", "host"):
                hint = _did_you_mean(key, ("defaults", "host"))
                raise self.fail(
                    self.loc.top(key),
                    key,
                    f"unknown top-level key or table{hint}; "
                    "a hosts file has a [defaults] table and [[host]] tables",
                )
        defaults = self._defaults()
        raw_hosts = self.data.get("host")
        if raw_hosts is None or raw_hosts == []:
            raise self.fail(None, None, "no hosts defined; add at least one [[host]] table")
        if not isinstance(raw_hosts, list):
            raise self.fail(
                self.loc.top("host"),
                "host",
                "hosts must be an array of tables: write [[host]], not [host]",
            )
        hosts: list[HostConfig] = []
        origins: list[dict[str, str]] = []
        seen: dict[str, int | None] = {}
        for index, raw in enumerate(raw_hosts, start=1):
            host, origin = self._host(index, raw, defaults, seen)
            hosts.append(host)
            origins.append(origin)
        self._check_jumps(hosts, origins)
        return FleetConfig(path=Path(self.path), hosts=tuple(hosts))

    # -- [defaults] ---------------------------------------------------------------------------

    def _defaults(self) -> dict[str, Any]:
        raw = self.data.get("defaults", {})
        table = "[defaults]"
        if not isinstance(raw, dict):
            raise self.fail(
                self.loc.top("defaults"),
                "defaults",
                f"expected a table ([defaults]), got {_describe(raw)}",
            )
        out: dict[str, Any] = {}
        for key, value in raw.items():
            line = self.loc.line(("defaults",), key)
            if key == "name":
                raise self.fail(line, key, "a host name cannot have a default", table)
            if key not in _DEFAULT_KEYS:
                raise self.fail(line, key, _unknown_key_message(key, _DEFAULT_KEYS), table)
            try:
                out[key] = _VALIDATORS[key](value)
            except _Bad as e:
                raise self.fail(line, key, str(e), table) from None
        return out

    # -- [[host]] -----------------------------------------------------------------------------

    def _host(
        self, index: int, raw: Any, defaults: Mapping[str, Any], seen: dict[str, int | None]
    ) -> tuple[HostConfig, dict[str, str]]:
        tkey = ("host", index)
        header = self.loc.header(tkey)
        table = f"[[host]] #{index}"
        if not isinstance(raw, dict):
            raise self.fail(header, "host", f"each host must be a table, got {_describe(raw)}")
        name_raw = raw.get("name")
        if isinstance(name_raw, str) and _NAME_RE.fullmatch(name_raw):
            table = f"{table} {_quote(name_raw)}"  # an invalid name is reported, not echoed twice

        own: dict[str, Any] = {}
        for key, value in raw.items():
            line = self.loc.line(tkey, key)
            if key not in HOST_KEYS:
                raise self.fail(line, key, _unknown_key_message(key, HOST_KEYS), table)
            try:
                own[key] = _VALIDATORS[key](value)
            except _Bad as e:
                raise self.fail(line, key, str(e), table) from None

        if "name" not in own:
            raise self.fail(header, "name", "missing; every host needs a name", table)
        name: str = own["name"]
        name_line = self.loc.line(tkey, "name")
        if name in seen:
            first = seen[name]
            where_first = f" (first defined at line {first})" if first is not None else ""
            raise self.fail(
                name_line, "name", f"duplicate host name {_quote(name)}{where_first}", table
            )
        seen[name] = name_line

        merged: dict[str, Any] = {**defaults, **own}
        origin = {k: ("host" if k in own else "defaults") for k in merged}

        def where(key: str) -> int | None:
            # Point at the line the value came from: the host's own key or the default.
            if origin.get(key) == "defaults":
                return self.loc.line(("defaults",), key)
            return self.loc.line(tkey, key)

        transport: str = merged.get("transport", _DEFAULT_TRANSPORT)

        # jump: only meaningful over SSH. An inherited default that cannot apply (a local or
        # sim host, or the bastion itself) is dropped rather than forcing per-host overrides,
        # which TOML could not express (there is no null).
        jump: str | None = merged.get("jump")
        if jump is not None and transport != "ssh":
            if origin["jump"] == "host":
                raise self.fail(
                    where("jump"),
                    "jump",
                    f"jump applies only to transport 'ssh', this host uses {_quote(transport)}",
                    table,
                )
            jump = None
        if jump is not None and jump == name:
            if origin["jump"] == "host":
                raise self.fail(where("jump"), "jump", "a host cannot be its own jump host", table)
            jump = None

        address: str | None = merged.get("address")
        if transport == "ssh" and address is None:
            raise self.fail(
                header, "address", "missing; an ssh host needs an address (name or IP)", table
            )

        device: str | None = merged.get("device")
        if transport == "sim":
            if device is None:
                raise self.fail(
                    header,
                    "device",
                    "missing; a sim host needs a device profile, one of: " + ", ".join(PROFILES),
                    table,
                )
            profile_kind = PROFILES[device].kind
            kind = profile_kind
            # The profile is the truth about a simulated device; only an explicit, contrary
            # kind on the host itself is an error (a [defaults] kind simply does not apply).
            if origin.get("kind") == "host" and own["kind"] != profile_kind:
                raise self.fail(
                    where("kind"),
                    "kind",
                    f"{_quote(own['kind'])} contradicts device {_quote(device)}, "
                    f"which is a {profile_kind!r}",
                    table,
                )
        else:
            kind = merged.get("kind", "cpu")

        host = HostConfig(
            name=name,
            transport=transport,
            kind=kind,
            address=address,
            port=merged.get("port", 22),
            user=merged.get("user"),
            identity=merged.get("identity"),
            known_hosts=merged.get("known_hosts"),
            jump=jump,
            device=device,
            python=merged.get("python", "python3"),
            interval=merged.get("interval", 1.0),
            labels=merged.get("labels", ()),
            line=header,
        )
        return host, origin

    # -- cross-host checks --------------------------------------------------------------------

    def _check_jumps(self, hosts: list[HostConfig], origins: list[dict[str, str]]) -> None:
        by_name = {h.name: h for h in hosts}
        for index, (host, origin) in enumerate(zip(hosts, origins, strict=True), start=1):
            if host.jump is None or host.jump not in by_name:
                continue  # no jump, or an address ("[user@]host[:port]") outside the file
            table = f"[[host]] #{index} {_quote(host.name)}"
            inherited = ""
            if origin.get("jump") == "defaults":
                # Blame the line that set it, and say which host tripped over it.
                line, table = self.loc.line(("defaults",), "jump"), "[defaults]"
                inherited = f" (inherited by [[host]] #{index} {_quote(host.name)})"
            else:
                line = self.loc.line(("host", index), "jump")
            target = by_name[host.jump]
            if target.transport != "ssh":
                raise self.fail(
                    line,
                    "jump",
                    f"jump host {_quote(target.name)} uses transport {_quote(target.transport)}; "
                    f"a jump host must be reached over ssh{inherited}",
                    table,
                )
            chain = [host.name]
            current = target
            while True:
                if current.name in chain:
                    path = " -> ".join(_quote(n) for n in [*chain, current.name])
                    message = f"jump hosts form a cycle: {path}{inherited}"
                    raise self.fail(line, "jump", message, table)
                chain.append(current.name)
                if current.jump is None or current.jump not in by_name:
                    break
                current = by_name[current.jump]


# --------------------------------------------------------------------------------------------
# Value validators: each returns the normalised value or raises _Bad with a message.


def _string(value: Any) -> str:
    if not isinstance(value, str):
        raise _Bad(f"expected a string, got {_describe(value)}")
    if not value.strip():
        raise _Bad("must not be empty or blank")
    if _CONTROL_RE.search(value):
        raise _Bad(f"contains a control character: {_quote(value)}")
    return value


def _token(value: Any, what: str) -> str:
    """A string used as one word (address, user, interpreter): no spaces, no leading '-'."""
    s = _string(value)
    if _SPACE_OR_CONTROL_RE.search(s):
        raise _Bad(f"{what} must not contain whitespace, got {_quote(s)}")
    if s.startswith("-"):
        # Would read as an option to ssh or a shell; never a legitimate value.
        raise _Bad(f"{what} must not start with '-', got {_quote(s)}")
    return s


def _choice(value: Any, valid: tuple[str, ...]) -> str:
    s = _string(value)
    if s not in valid:
        options = ", ".join(repr(v) for v in valid)
        raise _Bad(f"expected one of {options}, got {_quote(s)}{_did_you_mean(s, valid)}")
    return s


def _v_name(value: Any) -> str:
    s = _string(value)
    if not _NAME_RE.fullmatch(s):
        raise _Bad(
            "a host name is 1-63 letters, digits, '.', '_' or '-', starting with a letter or "
            f"digit (it is used in file names), got {_quote(s)}"
        )
    return s


def _v_address(value: Any) -> str:
    s = _token(value, "an address")
    if "@" in s:
        raise _Bad(f"an address is a host name or IP; put the user in 'user', got {_quote(s)}")
    return s


def _v_port(value: Any) -> int:
    # bool is an int subclass in Python; `port = true` is a mistake, not port 1.
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 65535:
        raise _Bad(f"expected an integer 1-65535, got {_describe(value)}")
    return value


def _v_path(value: Any) -> str:
    return os.path.expanduser(_string(value))


def _v_jump(value: Any) -> str:
    s = _token(value, "a jump host")
    m = _JUMP_RE.fullmatch(s)
    if m is None:
        raise _Bad(f"expected a [[host]] name or '[user@]host[:port]', got {_quote(s)}")
    if m["host"].startswith("-") or (m["user"] or "").startswith("-"):
        raise _Bad(f"jump host parts must not start with '-', got {_quote(s)}")
    if m["port"] is not None and not 1 <= int(m["port"]) <= 65535:
        raise _Bad(f"jump port must be 1-65535, got {_quote(s)}")
    return s


def _v_device(value: Any) -> str:
    s = _string(value)
    if s not in PROFILES:
        raise _Bad(
            f"unknown device profile {_quote(s)}{_did_you_mean(s, tuple(PROFILES))}; "
            f"valid profiles: {', '.join(PROFILES)}"
        )
    return s


def _v_interval(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise _Bad(f"expected a number of seconds, got {_describe(value)}")
    seconds = float(value)
    if not math.isfinite(seconds) or not 0 < seconds <= _MAX_INTERVAL:
        raise _Bad(f"expected seconds > 0 and <= {_MAX_INTERVAL:g}, got {_describe(value)}")
    return seconds


def _v_labels(value: Any) -> tuple[str, ...]:
    if not isinstance(value, list):
        raise _Bad(f"expected an array of strings, got {_describe(value)}")
    labels: list[str] = []
    for i, item in enumerate(value, start=1):
        try:
            labels.append(_string(item))
        except _Bad as e:
            raise _Bad(f"label #{i}: {e}") from None
    return tuple(labels)


_VALIDATORS: dict[str, Any] = {
    "name": _v_name,
    "transport": lambda v: _choice(v, TRANSPORTS),
    "kind": lambda v: _choice(v, KINDS),
    "address": _v_address,
    "port": _v_port,
    "user": lambda v: _token(v, "a user name"),
    "identity": _v_path,
    "known_hosts": _v_path,
    "jump": _v_jump,
    "device": _v_device,
    "python": lambda v: _token(v, "the interpreter"),
    "interval": _v_interval,
    "labels": _v_labels,
}


# --------------------------------------------------------------------------------------------
# Message helpers: everything user-supplied is escaped so an error stays one printable line.


def _safe(text: str, limit: int | None = 80) -> str:
    out = "".join(
        c if c.isprintable() else c.encode("unicode_escape").decode("ascii") for c in text
    )
    if limit is not None and len(out) > limit:
        out = out[: limit - 3] + "..."
    return out


def _quote(text: str) -> str:
    return f"'{_safe(text)}'"


def _describe(value: Any) -> str:
    if isinstance(value, str):
        return _quote(value)
    if isinstance(value, bool):
        return f"{str(value).lower()} (a boolean)"
    if isinstance(value, int):
        return str(value) if abs(value) < 10**30 else "a huge integer"
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "a table"
    if isinstance(value, (datetime, date, time)):
        return f"a date/time ({value.isoformat()})"
    return type(value).__name__


def _did_you_mean(word: str, valid: Iterable[str]) -> str:
    # Case-insensitive, so "SSH" suggests "ssh".
    by_lower = {v.lower(): v for v in valid}
    match = difflib.get_close_matches(word.lower(), list(by_lower), n=1, cutoff=0.6)
    return f" (did you mean {_quote(by_lower[match[0]])}?)" if match else ""


def _unknown_key_message(key: str, valid: tuple[str, ...]) -> str:
    hint = _did_you_mean(key, valid)
    if hint:
        return f"unknown key{hint}"
    return f"unknown key; valid keys: {', '.join(valid)}"


_SYNTAX_RE = re.compile(
    r"^(?P<msg>.*?)\s*\((?:at line (?P<line>\d+), column (?P<col>\d+)|at end of document)\)$",
    re.S,
)


def _syntax_error(path: str, text: str, err: ValueError) -> ConfigError:
    # Python 3.14 adds attributes; older versions only put the position in the message.
    raw = str(err)
    line: int | None = getattr(err, "lineno", None)
    col: int | None = getattr(err, "colno", None)
    msg: str = getattr(err, "msg", None) or raw
    m = _SYNTAX_RE.match(raw)
    if m is not None:
        msg = m["msg"]
        if line is None and m["line"] is not None:
            line, col = int(m["line"]), int(m["col"])
        elif line is None:
            line = text.count("\n") + 1  # "at end of document"
    detail = f"TOML syntax error: {msg}" + (f" (column {col})" if col is not None else "")
    return ConfigError(path, line, None, detail)


# --------------------------------------------------------------------------------------------
# Line locator


_KEY_PART = r"""(?:[A-Za-z0-9_-]+|"(?:[^"\\]|\\.)*"|'[^']*')"""
_LINE_KEY_RE = re.compile(rf"\s*({_KEY_PART})\s*[=.]")
_HEADER_RE = re.compile(
    rf"\s*(\[\[?)\s*({_KEY_PART}(?:\s*\.\s*{_KEY_PART})*)\s*(\]\]?)\s*(?:#.*)?$"
)
_PART_RE = re.compile(_KEY_PART)

_Table = tuple[Any, ...]  # () top level, ("defaults",), ("host", n), ("other", parts)


def _unquote(part: str) -> str:
    if len(part) >= 2 and part[0] == part[-1] and part[0] in "\"'":
        return part[1:-1]
    return part


class _Locator:
    """Finds the line of `key =` in a given table by scanning the raw text once.

    Understands comments, [defaults] and the n-th [[host]] header, quoted and dotted keys, and
    skips lines inside multi-line strings. Lines are counted on "\\n" only, as TOML does.
    """

    def __init__(self, text: str) -> None:
        self.headers: dict[_Table, int] = {}
        self.keys: dict[_Table, dict[str, int]] = {}
        self.top_headers: dict[str, int] = {}
        current: _Table = ()
        host_count = 0
        in_multiline: str | None = None
        for lineno, line in enumerate(text.split("\n"), start=1):
            if in_multiline is None:
                header = _HEADER_RE.match(line)
                key = _LINE_KEY_RE.match(line)
                if header is not None and len(header[1]) == len(header[3]):
                    parts = tuple(_unquote(p) for p in _PART_RE.findall(header[2]))
                    self.top_headers.setdefault(parts[0], lineno)
                    if header[1] == "[[" and parts == ("host",):
                        host_count += 1
                        current = ("host", host_count)
                    elif header[1] == "[" and parts == ("defaults",):
                        current = ("defaults",)
                    else:
                        current = ("other", parts)
                    self.headers.setdefault(current, lineno)
                elif key is not None:
                    self.keys.setdefault(current, {}).setdefault(_unquote(key[1]), lineno)
            in_multiline = _scan_strings(line, in_multiline)

    def header(self, table: _Table) -> int | None:
        line = self.headers.get(table)
        if line is None and table and table[0] == "host":
            # Hosts written inline (host = [{...}]) have no header; use the `host =` line.
            line = self.keys.get((), {}).get("host")
        return line

    def line(self, table: _Table, key: str) -> int | None:
        found = self.keys.get(table, {}).get(key)
        return found if found is not None else self.header(table)

    def top(self, key: str) -> int | None:
        found = self.keys.get((), {}).get(key)
        return found if found is not None else self.top_headers.get(key)


def _scan_strings(line: str, state: str | None) -> str | None:
    """The multi-line string delimiter still open at the end of `line`, or None."""
    i, n = 0, len(line)
    while i < n:
        if state is not None:  # inside a multi-line string: look for its end
            j = line.find(state, i)
            while j > 0 and state == '"""' and _escaped(line, j):
                j = line.find(state, j + 1)
            if j < 0:
                return state
            i, state = j + 3, None
            continue
        c = line[i]
        if c == "#":
            return None
        if line.startswith('"""', i) or line.startswith("'''", i):
            state, i = line[i : i + 3], i + 3
            continue
        if c in "\"'":  # a one-line string: skip to its closing quote
            j = i + 1
            while j < n and (line[j] != c or (c == '"' and _escaped(line, j))):
                j += 1
            i = j + 1
            continue
        i += 1
    return state


def _escaped(line: str, j: int) -> bool:
    backslashes = 0
    while j - 1 - backslashes >= 0 and line[j - 1 - backslashes] == "\\":
        backslashes += 1
    return backslashes % 2 == 1
