"""The emulated phone's file system, and running its shell commands in a bubblewrap sandbox.

Layout on the host, under the emulator's ROOT directory::

    ROOT/data/...                      /data (rw; /data/local/tmp is where pushes go)
    ROOT/sys/devices/system/cpu/...    /sys/devices/system/cpu (cpufreq; writable if rooted)
    ROOT/sys/class/thermal/...         /sys/class/thermal (zones, read-only to commands)
    ROOT/system/bin, build.prop        /system (getprop, taskset; read-only)

``ROOT/data`` survives restarts like a phone's storage; ``sys`` and ``system`` are
rewritten on every start. Commands see a root built only from binds (never ``--bind /
/``, which as root would create /data on the host): the host's /usr, /etc and library
dirs read-only (coreutils and dash are the phone's toolbox), this project's checkout and
virtualenv read-only (so the host build of the native runner finds its libraries through
its absolute rpath), private /proc, /dev and /tmp, and the phone paths above. A user
namespace makes the shell uid 2000 (Android's ``shell``) unless the phone is rooted, and a
PID namespace makes killing a command kill everything it started.

:class:`PathMap` gives the sync service (pull/push/stat/list) exactly the same view,
resolving symlinks inside the phone's namespace so that no link can reach host files.
"""

from __future__ import annotations

import errno
import importlib.util
import os
import posixpath
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from mobilebench import paths
from mobilebench.device.emulator import tools
from mobilebench.device.emulator.phones import PhoneSpec
from mobilebench.errors import MobilebenchError

SHELL_UID = 2000  # Android's "shell" user, as adbd runs on a non-rooted phone
_HOST_SYSTEM_DIRS = ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32", "/etc")
_PHONE_PATH = "/system/bin:/system/xbin:/usr/bin:/bin"


@dataclass(frozen=True)
class Mount:
    phone: str  # absolute phone path, e.g. "/data"
    host: Path
    writable: bool


class PathMap:
    """Phone paths -> host paths, with symlinks resolved inside the phone's namespace."""

    def __init__(self, mounts: list[Mount], symlinks: dict[str, str]) -> None:
        # Longest prefix first, so /sys/devices/system/cpu wins over a /sys mount.
        self.mounts = sorted(mounts, key=lambda m: len(m.phone), reverse=True)
        self.symlinks = dict(symlinks)
        self._virtual_dirs = {"/"}
        for phone in [m.phone for m in mounts] + list(symlinks):
            parent = posixpath.dirname(phone)
            while parent not in self._virtual_dirs:
                self._virtual_dirs.add(parent)
                parent = posixpath.dirname(parent)

    def _mount_for(self, phone: str) -> tuple[Mount, Path] | None:
        for mount in self.mounts:
            if phone == mount.phone or phone.startswith(mount.phone.rstrip("/") + "/"):
                rel = phone[len(mount.phone) :].lstrip("/")
                return mount, (mount.host / rel if rel else mount.host)
        return None

    def _readlink(self, phone: str) -> str | None:
        if phone in self.symlinks:
            return self.symlinks[phone]
        found = self._mount_for(phone)
        if found is None:
            return None
        host = found[1]
        return os.readlink(host) if host.is_symlink() else None

    def resolve_phone(self, path: str, *, follow_last: bool = True) -> str:
        """The canonical phone path, following symlinks (``..`` never climbs above /)."""
        if not path.startswith("/"):
            raise OSError(errno.ENOENT, "relative paths are not supported", path)
        parts = [p for p in path.split("/") if p and p != "."]
        resolved: list[str] = []
        hops = 0
        while parts:
            name = parts.pop(0)
            if name == "..":
                if resolved:
                    resolved.pop()
                continue
            candidate = "/" + "/".join([*resolved, name])
            target = self._readlink(candidate)
            if target is not None and (parts or follow_last):
                hops += 1
                if hops > 40:
                    raise OSError(errno.ELOOP, os.strerror(errno.ELOOP), path)
                if target.startswith("/"):
                    resolved = []
                parts = [p for p in target.split("/") if p and p != "."] + parts
                continue
            resolved.append(name)
        return "/" + "/".join(resolved)

    def is_virtual_dir(self, phone: str) -> bool:
        """A directory that exists only because something is mounted below it."""
        return phone in self._virtual_dirs and self._mount_for(phone) is None

    def virtual_entries(self, phone: str) -> list[str]:
        prefix = phone.rstrip("/") + "/"
        names = set()
        for entry in [m.phone for m in self.mounts] + list(self.symlinks) + list(self._virtual_dirs):
            if entry.startswith(prefix) and entry != phone:
                names.add(entry[len(prefix) :].split("/")[0])
        return sorted(names)

    def to_host(self, path: str, *, follow_last: bool = True) -> tuple[Path, bool]:
        """(host path, writable) for a phone path; ENOENT outside every mount."""
        phone = self.resolve_phone(path, follow_last=follow_last)
        found = self._mount_for(phone)
        if found is None:
            raise OSError(errno.ENOENT, os.strerror(errno.ENOENT), path)
        return found[1], found[0].writable


def _host_cpus() -> list[int]:
    return sorted(os.sched_getaffinity(0))


def _read_only_host_dirs() -> list[Path]:
    """This checkout, the virtualenv, Python's prefix and the ExecuTorch package: the host
    runner build and its rpath libraries live there. Dirs already visible through a
    parent (or through /usr) are left out."""
    dirs = [paths.project_root(), Path(sys.prefix), Path(sys.base_prefix)]
    spec = importlib.util.find_spec("executorch")
    if spec is not None and spec.submodule_search_locations:
        dirs += [Path(p) for p in spec.submodule_search_locations]
    out: list[Path] = []
    for d in sorted({d.resolve() for d in dirs if d.is_dir()}, key=lambda p: len(p.parts)):
        covered = any(d == o or o in d.parents for o in out)
        system = any(str(d) == s or str(d).startswith(s + "/") for s in _HOST_SYSTEM_DIRS)
        if not covered and not system and d != Path("/"):
            out.append(d)
    return out


class PhoneRoot:
    """Creates and maintains the phone's files under ROOT."""

    def __init__(self, root: Path, phone: PhoneSpec) -> None:
        self.root = Path(root).resolve()
        self.phone = phone
        self.data = self.root / "data"
        self.cpu_dir = self.root / "sys" / "devices" / "system" / "cpu"
        self.thermal_dir = self.root / "sys" / "class" / "thermal"
        self.system = self.root / "system"
        self.host_cpus = _host_cpus()

    def create(self, *, initial_temp_c: float) -> None:
        (self.data / "local" / "tmp").mkdir(parents=True, exist_ok=True)
        for generated in (self.root / "sys", self.system):
            if generated.exists():
                shutil.rmtree(generated)
        self._create_cpus()
        self._create_thermal(initial_temp_c)
        self._create_system()

    def _create_cpus(self) -> None:
        count = self.phone.cpu_count
        span = f"0-{count - 1}\n"
        for name in ("possible", "present", "online"):
            _write(self.cpu_dir / name, span)
        for cluster in self.phone.clusters:
            related = ",".join(str(c) for c in cluster.cpus)
            for cpu in cluster.cpus:
                freq = self.cpu_dir / f"cpu{cpu}" / "cpufreq"
                _write(self.cpu_dir / f"cpu{cpu}" / "online", "1\n")
                for name, value in {
                    "scaling_governor": self.phone.governor,
                    "scaling_available_governors": "schedutil performance powersave userspace",
                    "cpuinfo_min_freq": cluster.min_freq_khz,
                    "cpuinfo_max_freq": cluster.max_freq_khz,
                    "scaling_min_freq": cluster.min_freq_khz,
                    "scaling_max_freq": cluster.max_freq_khz,
                    "scaling_cur_freq": cluster.min_freq_khz,
                    "scaling_setspeed": "<unsupported>",
                    "related_cpus": related,
                }.items():
                    _write(freq / name, f"{value}\n")

    def _create_thermal(self, temp_c: float) -> None:
        for index, zone in enumerate(self.phone.zones):
            directory = self.thermal_dir / f"thermal_zone{index}"
            _write(directory / "type", f"{zone.type}\n")
            _write(directory / "mode", "enabled\n")
            _write(directory / "temp", f"{round(temp_c * 1000)}\n")

    def _create_system(self) -> None:
        bin_dir = self.system / "bin"
        bin_dir.mkdir(parents=True, exist_ok=True)
        props = "".join(f"{k}={v}\n" for k, v in sorted(self.phone.all_props().items()))
        _write(self.system / "build.prop", props)
        _write(bin_dir / "getprop", tools.GETPROP, mode=0o755)
        _write(bin_dir / "taskset", tools.taskset_script(self.phone.cpu_count, self.host_cpus), mode=0o755)
        os.symlink("/bin/sh", bin_dir / "sh")

    # -- live values written by the physics loop -------------------------------------------

    def write_zone_temp(self, index: int, temp_c: float) -> None:
        _write(self.thermal_dir / f"thermal_zone{index}" / "temp", f"{round(temp_c * 1000)}\n")

    def read_cpu_file(self, cpu: int, name: str) -> str:
        try:
            return (self.cpu_dir / f"cpu{cpu}" / "cpufreq" / name).read_text().strip()
        except OSError:
            return ""

    def write_cpu_file(self, cpu: int, name: str, value: str) -> None:
        _write(self.cpu_dir / f"cpu{cpu}" / "cpufreq" / name, f"{value}\n")

def _write(path: Path, text: str, *, mode: int = 0o644) -> None:
    """Replace a file atomically, so a command reading it never sees half a value."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    os.chmod(tmp, mode)
    os.replace(tmp, path)


class Sandbox:
    """Runs shell commands as the phone would: ``sh -c COMMAND`` inside bubblewrap.

    One mount table (:attr:`mounts`, :attr:`symlinks`) drives both the bubblewrap
    command line and the :class:`PathMap` of the sync service.
    """

    def __init__(self, root: PhoneRoot, *, rooted: bool = False) -> None:
        self.root = root
        self.rooted = rooted
        self.bwrap = shutil.which("bwrap")
        self.symlinks: dict[str, str] = {"/sdcard": "/data/media/0"}
        mounts: list[Mount] = []
        for d in _HOST_SYSTEM_DIRS:
            if os.path.islink(d):
                self.symlinks[d] = os.readlink(d)
            elif os.path.isdir(d):
                mounts.append(Mount(d, Path(d), False))
        mounts += [Mount(str(d), d, False) for d in _read_only_host_dirs()]
        mounts += [
            Mount("/data", root.data, True),
            # Only root may change governors and frequency limits, as on a phone.
            Mount("/sys/devices/system/cpu", root.cpu_dir, rooted),
            Mount("/sys/class/thermal", root.thermal_dir, False),
            Mount("/system", root.system, False),
        ]
        self.mounts = mounts
        self._argv_prefix = self._build_argv_prefix()

    def path_map(self) -> PathMap:
        return PathMap(self.mounts, self.symlinks)

    def _build_argv_prefix(self) -> list[str]:
        uid = 0 if self.rooted else SHELL_UID
        args = ["--die-with-parent", "--unshare-pid", "--unshare-ipc", "--unshare-uts", "--hostname", "localhost"]
        args += ["--unshare-user", "--uid", str(uid), "--gid", str(uid)]
        # Private /proc, /dev, /tmp and an empty /sys first; mounts below them (a checkout
        # under /tmp, the fake sysfs) go on top, parents before children.
        args += ["--proc", "/proc", "--dev", "/dev", "--tmpfs", "/tmp", "--tmpfs", "/sys"]
        for mount in sorted(self.mounts, key=lambda m: m.phone.count("/")):
            args += ["--bind" if mount.writable else "--ro-bind", str(mount.host), mount.phone]
        for link, target in self.symlinks.items():
            args += ["--symlink", target, link]
        args += ["--chdir", "/", "--clearenv"]
        env = {
            "PATH": _PHONE_PATH,
            "HOME": "/",
            "TMPDIR": "/data/local/tmp",
            "ANDROID_DATA": "/data",
            "ANDROID_ROOT": "/system",
            "USER": "root" if self.rooted else "shell",
            "LANG": "C.UTF-8",
        }
        for key, value in env.items():
            args += ["--setenv", key, value]
        return args

    def argv(self, command: list[str]) -> list[str]:
        if self.bwrap is None:
            raise MobilebenchError("the phone emulator needs bubblewrap: apt-get install bubblewrap")
        return [self.bwrap, *self._argv_prefix, "--", *command]

    def spawn(self, script: str | None, *, merge_stderr: bool = True) -> subprocess.Popen:
        """Start ``sh -c script`` (or an interactive ``sh`` reading stdin when None).

        stdin and stdout are pipes; the process leads its own process group, so killing
        the group (and with it the PID namespace) ends everything the command started.
        Core dumps are off, as on a phone.
        """
        shell = ["/system/bin/sh"] if script is None else ["/system/bin/sh", "-c", f"ulimit -c 0 2>/dev/null\n{script}"]
        return subprocess.Popen(
            self.argv(shell),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT if merge_stderr else subprocess.DEVNULL,
            start_new_session=True,
            bufsize=0,
        )

    def check(self) -> None:
        """Fail early and clearly if bubblewrap cannot build the sandbox here."""
        try:
            result = subprocess.run(
                self.argv(["/system/bin/sh", "-c", "getprop ro.product.model && test -w /data/local/tmp"]),
                capture_output=True,
                timeout=30,
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise MobilebenchError(f"cannot start the phone sandbox (bubblewrap): {exc}") from None
        if result.returncode != 0:
            detail = (result.stderr or result.stdout).decode(errors="replace").strip()
            raise MobilebenchError(
                f"bubblewrap cannot create the phone sandbox: {detail or f'exit {result.returncode}'}; "
                "it needs user namespaces (or root) and a ROOT directory that allows executables"
            )
