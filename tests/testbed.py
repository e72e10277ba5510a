"""A loopback fleet of real OpenSSH servers, each confined to its own cgroup.

Every testbed host is a foreground `/usr/sbin/sshd` bound to its own loopback address
(127.0.0.11, 127.0.0.12, ...) and started inside its own cgroup v1 directory in the `cpu`
and `memory` hierarchies, with its own CFS quota and memory limit. Everything a session
starts inherits that cgroup, so the hosts really differ in capacity, and killing a host
means killing every process in its cgroup.

The cgroups are created below the cgroup this process already belongs to (in a container
that is the container's own cgroup), never at the hierarchy root: the testbed stays inside
whatever limits and accounting the caller runs under. `TestbedHost.cgroup` is therefore the
path relative to the caller's cgroup; the host's processes show it as the tail of their
`/proc/self/cgroup` paths, and `OpenSSHTestbed.cgroup_dir()` gives the absolute directory.

Use it through the `openssh_testbed` fixture: `from testbed import openssh_testbed` in
conftest.py, or `openssh_testbed = testbed.openssh_testbed` in a test module (a plain import
there makes ruff report every test parameter of that name as F811). The methods block briefly
(they wait for processes and ports), which is fine in async tests too.
"""

from __future__ import annotations

import atexit
import contextlib
import errno
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import pytest

SSHD = Path("/usr/sbin/sshd")
CONTROLLERS = ("cpu", "memory")
# Joined too where it is a hierarchy of its own (not co-mounted as "cpu,cpuacct"): the agent
# reads a host's CPU use from it, so utilisation is against the quota, not the machine.
ACCOUNTING = "cpuacct"
CFS_PERIOD_US = 100_000
FIRST_ADDRESS_OCTET = 11  # tb1 -> 127.0.0.11; any 127/8 address is loopback on Linux
READY_TIMEOUT_S = 10.0
KILL_TIMEOUT_S = 10.0
START_ATTEMPTS = 3  # a free port picked by bind(0) can be taken before sshd binds it
LOG_TAIL_CHARS = 2000

# Joins the cgroups before exec'ing sshd, so sshd and everything it forks is confined from
# the first instruction. A shell wrapper rather than preexec_fn: preexec_fn runs Python
# between fork and exec, which can deadlock when the parent has threads (asyncio executors).
_ENTER_CGROUPS = 'IFS=:; for f in $1; do echo $$ > "$f" || exit 97; done; shift; exec "$@"'


class TestbedError(RuntimeError):
    """The testbed could not be set up, driven or torn down."""


@dataclass(frozen=True)
class TestbedHost:
    __test__ = False  # not a pytest test class, despite the name

    name: str  # "tb1", "tb2", ...
    address: str  # "127.0.0.11"
    port: int
    user: str  # "root"
    identity: Path  # client private key (ed25519, no passphrase)
    known_hosts: Path  # holds "[address]:port ssh-ed25519 AAAA..." for this host
    cpu_quota: float  # cores
    mem_limit: int  # bytes
    cgroup: str  # relative to the creator's cgroup, e.g. "edgetop-test-<pid>-<rand>/tb1"


@dataclass
class _Host:
    """Mutable per-host state behind a TestbedHost."""

    spec: TestbedHost
    host_key: Path
    config: Path
    log: Path
    cgroup_dirs: dict[str, Path]  # controller -> absolute cgroup directory
    proc: subprocess.Popen[bytes] | None = field(default=None, repr=False)


def _own_cgroup_dir(controller: str) -> Path:
    """The directory of this process's cgroup in the v1 hierarchy that has `controller`."""
    own: str | None = None
    for line in Path("/proc/self/cgroup").read_text().splitlines():
        _, controllers, path = line.split(":", 2)
        if controller in controllers.split(","):
            own = path
    if own is None:
        raise TestbedError(f"no cgroup v1 '{controller}' controller in /proc/self/cgroup")
    # Found through mountinfo rather than assumed at /sys/fs/cgroup/<controller>: the mount
    # may be "cpu,cpuacct", and in a container its root may be the container's cgroup.
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        left, _, right = line.partition(" - ")
        fields, (fstype, _source, options) = left.split(), right.split(maxsplit=2)
        if fstype != "cgroup" or controller not in options.split(","):
            continue
        rel = os.path.relpath(own, fields[3])
        if not rel.startswith(".."):
            return Path(os.path.normpath(Path(fields[4]) / rel))
    raise TestbedError(f"cgroup v1 '{controller}' hierarchy holding {own} is not mounted")


def _root_is_locked() -> bool:
    # With UsePAM no, sshd itself refuses accounts whose shadow password starts with "!".
    try:
        for line in Path("/etc/shadow").read_text().splitlines():
            user, _, rest = line.partition(":")
            if user == "root":
                return rest.startswith("!")
    except OSError:
        pass
    return False


def testbed_unavailable_reason() -> str | None:
    """Why the testbed cannot run here, or None when it can."""
    if os.geteuid() != 0:
        return "the OpenSSH testbed needs root (sshd, cgroup writes)"
    if not os.access(SSHD, os.X_OK):
        return f"{SSHD} is missing (install openssh-server)"
    if shutil.which("ssh-keygen") is None:
        return "ssh-keygen is missing (install openssh-client)"
    for controller, knob in (("cpu", "cpu.cfs_quota_us"), ("memory", "memory.limit_in_bytes")):
        try:
            base = _own_cgroup_dir(controller)
        except (OSError, ValueError, TestbedError) as exc:
            return f"no usable cgroup v1 '{controller}' controller: {exc}"
        if not (base / knob).exists():
            return f"{base} has no {knob}"
        probe = base / f"edgetop-probe-{os.getpid()}-{secrets.token_hex(4)}"
        try:  # the only reliable test for "writable" (read-only mounts, delegation)
            probe.mkdir()
            probe.rmdir()
        except OSError as exc:
            return f"cannot create cgroups under {base}: {exc}"
    if _root_is_locked():
        return "root is locked in /etc/shadow ('!'); sshd refuses it (usermod -p '*' root)"
    return None


def _keygen(path: Path) -> None:
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", path.name, "-f", str(path)],
        check=True,
        capture_output=True,
    )


def _free_port(address: str) -> int:
    with socket.socket() as sock:
        sock.bind((address, 0))
        return sock.getsockname()[1]


def _write(path: Path, value: str | int) -> None:
    try:
        path.write_text(f"{value}\n")
    except OSError as exc:
        raise TestbedError(f"cannot write {value} to {path}: {exc}") from None


def _subtree(root: Path) -> list[Path]:
    """`root` and the cgroups below it (sessions may create their own), deepest first."""
    return [Path(d) for d, _, _ in os.walk(root, topdown=False)]


def _read_pids(cgroup: Path) -> set[int]:
    pids: set[int] = set()
    for path in _subtree(cgroup):
        with contextlib.suppress(FileNotFoundError):  # removed meanwhile
            pids.update(int(pid) for pid in (path / "cgroup.procs").read_text().split())
    return pids


def _rmdir(path: Path) -> None:
    # The kernel may take a moment to let go of a cgroup whose last task just died.
    for _ in range(100):
        try:
            path.rmdir()
            return
        except FileNotFoundError:
            return
        except OSError as exc:
            if exc.errno != errno.EBUSY:
                raise
            time.sleep(0.01)
    path.rmdir()


def _sshd_accepts(option: str, host_key: Path) -> bool:
    """Whether this sshd knows `option` (e.g. PerSourcePenalties, OpenSSH >= 9.8)."""
    probe = [str(SSHD), "-t", "-f", "/dev/null", "-h", str(host_key), "-o", option]
    return subprocess.run(probe, capture_output=True).returncode == 0


class OpenSSHTestbed:
    """sshd processes on 127.0.0.11, .12, ..., one cgroup each; see the module docstring."""

    def __init__(self, workdir: Path, specs: Sequence[tuple[float, int]]) -> None:
        if not 0 < len(specs) <= 255 - FIRST_ADDRESS_OCTET:
            raise ValueError(f"need 1..{255 - FIRST_ADDRESS_OCTET} hosts, got {len(specs)}")
        for cores, mem in specs:
            if cores <= 0 or mem <= 0:
                raise ValueError(f"cpu quota and memory limit must be positive: {cores}, {mem}")
        self.workdir = Path(workdir).resolve()
        self.specs = [(float(cores), int(mem)) for cores, mem in specs]
        self.cgroup_name = f"edgetop-test-{os.getpid()}-{secrets.token_hex(4)}"
        self._hosts: dict[str, _Host] = {}
        self._parents: dict[str, Path] = {}  # controller -> the testbed's own cgroup dir
        # bash started by sshd reads ~/.bashrc even for a command unless SHLVL is set; this
        # machine's root .bashrc runs `pyenv init` (a global lock per start), which a stock
        # fleet host would not. Setting it keeps the testbed's cost the OpenSSH cost alone.
        self._extra_config: list[str] = ["SetEnv SHLVL=1"]

    # -- lifecycle -------------------------------------------------------------------------

    def start(self) -> list[TestbedHost]:
        if self._hosts or self._parents:
            raise TestbedError("testbed already started")
        _LIVE.add(self)
        try:
            self._setup()
            for host in self._hosts.values():
                self._launch(host, pick_port=True)
        except BaseException:
            # Report the setup failure, not a teardown one; atexit retries what is left.
            with contextlib.suppress(Exception):
                self.close()
            raise
        return self.hosts

    def kill(self, name: str) -> None:
        """SIGKILL every process in the host's cgroup; return once the cgroup is empty."""
        host = self._host(name)
        deadline = time.monotonic() + KILL_TIMEOUT_S
        while True:
            pids = self._pids(host)
            if not pids:
                break
            if time.monotonic() > deadline:
                raise TestbedError(f"{name}: processes {sorted(pids)} survive SIGKILL")
            # Read-then-kill races only with pid reuse, which needs the pid space to wrap
            # in between; sessions forking meanwhile are caught by the next round.
            for pid in pids:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            time.sleep(0.01)
        # Dead tasks leave cgroup.procs before they are reaped; reap our own sshd child.
        if host.proc is not None:
            host.proc.kill()
            host.proc.wait(timeout=KILL_TIMEOUT_S)
            host.proc = None

    def restart(self, name: str) -> None:
        """Start sshd again with the same address, port, host key and cgroup."""
        host = self._host(name)
        if host.proc is not None and host.proc.poll() is None:
            raise TestbedError(f"{name} is still running; kill() it first")
        self._launch(host, pick_port=False)

    def pids(self, name: str) -> list[int]:
        """The processes currently in the host's cgroup (either controller)."""
        return sorted(self._pids(self._host(name)))

    def close(self) -> None:
        """Kill every host and remove every cgroup directory created; idempotent."""
        errors: list[BaseException] = []
        for name in self._hosts:
            try:
                self.kill(name)
            except Exception as exc:
                errors.append(exc)
        dirs = [
            d for h in self._hosts.values() for top in h.cgroup_dirs.values() for d in _subtree(top)
        ]
        for path in [*dirs, *self._parents.values()]:  # children before their parent
            try:
                _rmdir(path)
            except OSError as exc:
                errors.append(exc)
        if errors:
            raise TestbedError(f"testbed teardown incomplete: {errors}")
        _LIVE.discard(self)

    # -- views -----------------------------------------------------------------------------

    @property
    def hosts(self) -> list[TestbedHost]:
        return [host.spec for host in self._hosts.values()]

    def cgroup_dir(self, name: str, controller: str) -> Path:
        """Absolute cgroup directory of a host, e.g. cgroup_dir("tb1", "memory")."""
        return self._host(name).cgroup_dirs[controller]

    def log(self, name: str) -> str:
        return self._host(name).log.read_text(errors="replace")

    def hosts_toml(self, python: str) -> str:
        """A hosts.toml listing every testbed host, using `python` as the remote interpreter."""

        def quote(value: object) -> str:
            return json.dumps(str(value))  # JSON strings are valid TOML basic strings

        blocks = [
            "\n".join(
                [
                    "[[host]]",
                    f"name = {quote(h.name)}",
                    f"address = {quote(h.address)}",
                    f"port = {h.port}",
                    f"user = {quote(h.user)}",
                    f"identity = {quote(h.identity)}",
                    f"known_hosts = {quote(h.known_hosts)}",
                    'transport = "ssh"',
                    'kind = "cpu"',
                    f"python = {quote(python)}",
                    "interval = 0.5",
                ]
            )
            for h in self.hosts
        ]
        return "\n\n".join(blocks) + "\n"

    # -- internals -------------------------------------------------------------------------

    def _host(self, name: str) -> _Host:
        try:
            return self._hosts[name]
        except KeyError:
            raise KeyError(f"no testbed host {name!r}; have {sorted(self._hosts)}") from None

    def _pids(self, host: _Host) -> set[int]:
        return set().union(*(_read_pids(d) for d in host.cgroup_dirs.values()))

    @staticmethod
    def _controllers() -> list[str]:
        try:
            separate = _own_cgroup_dir(ACCOUNTING) != _own_cgroup_dir("cpu")
        except TestbedError:
            separate = False
        return [*CONTROLLERS, *([ACCOUNTING] if separate else [])]

    def _setup(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        # sshd's privilege-separation directory; it refuses to start without it.
        Path("/run/sshd").mkdir(mode=0o755, parents=True, exist_ok=True)
        identity = self.workdir / "client_ed25519"
        _keygen(identity)
        authorized_keys = self.workdir / "authorized_keys"
        authorized_keys.write_text(identity.with_suffix(".pub").read_text())

        for controller in self._controllers():
            parent = _own_cgroup_dir(controller) / self.cgroup_name
            parent.mkdir()
            self._parents[controller] = parent

        for index, (cores, mem) in enumerate(self.specs):
            name = f"tb{index + 1}"
            address = f"127.0.0.{FIRST_ADDRESS_OCTET + index}"
            hostdir = self.workdir / name
            hostdir.mkdir()
            host_key = hostdir / "ssh_host_ed25519_key"
            _keygen(host_key)
            if index == 0 and _sshd_accepts("PerSourcePenalties=no", host_key):
                # OpenSSH >= 9.8 would otherwise lock out 127.0.0.1 after the aborted
                # connections that readiness probes and kill() produce.
                self._extra_config.append("PerSourcePenalties no")
            dirs = {c: self._parents[c] / name for c in self._parents}
            for path in dirs.values():
                path.mkdir()
            _write(dirs["cpu"] / "cpu.cfs_period_us", CFS_PERIOD_US)
            _write(dirs["cpu"] / "cpu.cfs_quota_us", max(1000, round(cores * CFS_PERIOD_US)))
            _write(dirs["memory"] / "memory.limit_in_bytes", mem)
            memsw = dirs["memory"] / "memory.memsw.limit_in_bytes"
            if memsw.exists():  # only with swap accounting; must not be below the RAM limit
                _write(memsw, mem)
            self._hosts[name] = _Host(
                spec=TestbedHost(
                    name=name,
                    address=address,
                    port=0,  # chosen at launch
                    user="root",
                    identity=identity,
                    known_hosts=hostdir / "known_hosts",
                    cpu_quota=cores,
                    mem_limit=mem,
                    cgroup=f"{self.cgroup_name}/{name}",
                ),
                host_key=host_key,
                config=hostdir / "sshd_config",
                log=hostdir / "sshd.log",
                cgroup_dirs=dirs,
            )

    def _write_config(self, host: _Host, port: int) -> None:
        hostdir = host.config.parent
        lines = [
            f"ListenAddress {host.spec.address}",
            f"Port {port}",
            f'HostKey "{host.host_key}"',
            f'PidFile "{hostdir / "sshd.pid"}"',
            f'AuthorizedKeysFile "{self.workdir / "authorized_keys"}"',
            "PubkeyAuthentication yes",
            "PasswordAuthentication no",
            "KbdInteractiveAuthentication no",
            "PermitRootLogin prohibit-password",
            "UsePAM no",  # PAM session modules (pam_loginuid, ...) fail in containers
            "StrictModes no",  # tmp dirs are not laid out like ~/.ssh
            "MaxStartups 100:30:200",
            "MaxSessions 50",
            "LogLevel ERROR",
            "PrintMotd no",
            "Subsystem sftp internal-sftp",
            *self._extra_config,
        ]
        host.config.write_text("\n".join(lines) + "\n")
        key_type, key_b64 = host.host_key.with_suffix(".pub").read_text().split()[:2]
        host.spec.known_hosts.write_text(f"[{host.spec.address}]:{port} {key_type} {key_b64}\n")

    def _launch(self, host: _Host, *, pick_port: bool) -> None:
        for attempt in range(1, START_ATTEMPTS + 1):
            if pick_port:
                port = _free_port(host.spec.address)
                self._write_config(host, port)
                host.spec = replace(host.spec, port=port)
            with host.log.open("ab") as log:
                what = "start" if pick_port else "restart"
                log.write(f"--- testbed: sshd {what}, attempt {attempt}\n".encode())
                log.flush()
                procs = ":".join(str(d / "cgroup.procs") for d in host.cgroup_dirs.values())
                sshd = [str(SSHD), "-D", "-e", "-f", str(host.config)]
                host.proc = subprocess.Popen(
                    ["/bin/sh", "-c", _ENTER_CGROUPS, "sh", procs, *sshd],
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=log,
                )
            if self._wait_ready(host):
                return
            port_taken = "Address already in use" in self._log_tail(host)
            if not (pick_port and port_taken):
                break
        raise TestbedError(
            f"sshd for {host.spec.name} on {host.spec.address}:{host.spec.port} did not come "
            f"up; {host.log} ends with:\n{self._log_tail(host)}"
        )

    def _wait_ready(self, host: _Host) -> bool:
        """Wait until sshd sends its banner; False if it exited or never answered."""
        assert host.proc is not None
        deadline = time.monotonic() + READY_TIMEOUT_S
        while time.monotonic() < deadline:
            if host.proc.poll() is not None:
                host.proc = None
                return False
            try:
                with socket.create_connection((host.spec.address, host.spec.port), 1) as sock:
                    sock.settimeout(1)
                    if sock.recv(64).startswith(b"SSH-"):
                        # Answering with an ident keeps sshd from logging the probe as an error.
                        sock.sendall(b"SSH-2.0-edgetop-testbed-probe\r\n")
                        return True
            except OSError:
                pass
            time.sleep(0.02)
        self.kill(host.spec.name)
        return False

    def _log_tail(self, host: _Host) -> str:
        try:
            return host.log.read_text(errors="replace")[-LOG_TAIL_CHARS:]
        except OSError as exc:
            return f"<cannot read log: {exc}>"


# Second line of defence after the fixture's finalizer: an interpreter that exits with a
# testbed still open (a crash in a fixture, a script without the fixture) cleans it up.
_LIVE: set[OpenSSHTestbed] = set()


@atexit.register
def _close_leftovers() -> None:
    for testbed in list(_LIVE):
        try:
            testbed.close()
        except Exception as exc:  # keep going: the other testbeds still need closing
            print(f"edgetop testbed: cleanup of {testbed.cgroup_name} failed: {exc}")


class TestbedFactory:
    """What `openssh_testbed` yields: call it with specs to get hosts; drive them here."""

    __test__ = False  # not a pytest test class, despite the name

    def __init__(self, workdir_factory: Callable[[], Path]) -> None:
        self._workdir_factory = workdir_factory
        self.testbeds: list[OpenSSHTestbed] = []

    def __call__(self, specs: Sequence[tuple[float, int]]) -> list[TestbedHost]:
        testbed = OpenSSHTestbed(self._workdir_factory(), specs)
        self.testbeds.append(testbed)
        return testbed.start()

    def testbed(self, host: TestbedHost | str) -> OpenSSHTestbed:
        """The testbed a host belongs to (the last one made when given a bare name)."""
        for testbed in reversed(self.testbeds):
            if host in testbed.hosts or host in {h.name for h in testbed.hosts}:
                return testbed
        raise KeyError(f"{host!r} belongs to no testbed of this factory")

    def kill(self, host: TestbedHost | str) -> None:
        self.testbed(host).kill(_name(host))

    def restart(self, host: TestbedHost | str) -> None:
        self.testbed(host).restart(_name(host))

    def pids(self, host: TestbedHost | str) -> list[int]:
        return self.testbed(host).pids(_name(host))

    def close(self) -> None:
        errors: list[Exception] = []
        for testbed in reversed(self.testbeds):
            try:
                testbed.close()
            except Exception as exc:
                errors.append(exc)
        if errors:
            raise TestbedError(f"closing testbeds failed: {errors}")


def _name(host: TestbedHost | str) -> str:
    return host if isinstance(host, str) else host.name


@pytest.fixture
def openssh_testbed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestbedFactory]:
    """Yields a factory: `make(specs) -> list[TestbedHost]`; every testbed closes at teardown.

    Skips where the testbed cannot run, except under CI=true, where that is a failure:
    CI provisions root, sshd and cgroups, so a skip there would hide a broken testbed.
    """
    reason = testbed_unavailable_reason()
    if reason is not None:
        if os.environ.get("CI") == "true":
            pytest.fail(f"OpenSSH testbed unavailable under CI: {reason}", pytrace=False)
        pytest.skip(reason)
    factory = TestbedFactory(lambda: tmp_path_factory.mktemp("testbed"))
    try:
        yield factory
    finally:
        factory.close()


@contextlib.contextmanager
def script_testbed(
    specs: Sequence[tuple[float, int]], prefix: str = "edgetop-bench-"
) -> Iterator[tuple[list[TestbedHost], Path, Path]]:
    """For scripts under bench/: (hosts, their hosts.toml with this Python as the hosts',
    a scratch directory), all torn down and removed afterwards. Exits with the reason where
    the testbed cannot run."""
    reason = testbed_unavailable_reason()
    if reason is not None:
        sys.exit(f"cannot run the testbed here: {reason}")
    work = Path(tempfile.mkdtemp(prefix=prefix))
    testbed = OpenSSHTestbed(work / "tb", specs)
    try:
        hosts = testbed.start()
        fleet = work / "hosts.toml"
        fleet.write_text(testbed.hosts_toml(sys.executable))
        yield hosts, fleet, work
    finally:
        testbed.close()
        shutil.rmtree(work, ignore_errors=True)
