"""The emulated phone's file system, and running its shell commands in a bubblewrap sandbox.

Layout on the host, under the emulator's ROOT directory::

    ROOT/.mobilebench-phone            marks ROOT as an emulator's folder
    ROOT/data/...                      /data (rw; /data/local/tmp is where pushes go)
    ROOT/sys/devices/system/cpu/...    /sys/devices/system/cpu (cpufreq, topology;
                                       writable if rooted)
    ROOT/sys/class/thermal/...         /sys/class/thermal (zones, read-only to commands)
    ROOT/system/bin, etc, build.prop   /system (getprop, taskset; read-only); /etc links here

``ROOT/data`` survives restarts like a phone's storage; ``sys`` and ``system`` are
rewritten on every start. A folder is only used as ROOT if it is new, empty or marked by
an earlier start, so the emulator never deletes what it did not create.

Who the device is: commands run as an unprivileged host user, the *device user* (uid and
gid :data:`DEVICE_UID` when the emulator runs as root, else the emulator's own user), who
owns ``ROOT/data``. Inside the sandbox the shell is uid 2000 (Android's ``shell``), or 0
on a rooted phone, through a user namespace that maps it to the device user, never to
host root. Each command gets its own network namespace (its loopback only: nothing on
the host's network or loopback, no other emulator, no adb server), a PID namespace
(killing a command kills everything it started) and a root built only from binds: the
host's /usr and library dirs read-only (coreutils and dash are the phone's toolbox, and
the runner's libraries live there), this checkout, its virtualenv and Python read-only
(the host build of the runner finds ExecuTorch through its rpath; the ``ort_python``
runner is Python), private /proc, /dev and /tmp, and the phone paths above. Nothing else
of the host is visible: no /etc (the phone's is /system/etc), no /home, no /root.

:class:`PathMap` gives the sync service (pull/push/stat/list) the same view: it resolves
symbolic links inside the phone's namespace, and then opens every directory on the way
relative to the mount's root without following links
(:func:`mobilebench.files.open_dir_beneath`), so a link that the device's shell swaps in
meanwhile makes the operation fail instead of leading it onto a host path.
"""

from __future__ import annotations

import contextlib
import errno
import importlib.util
import json
import os
import platform
import posixpath
import shutil
import stat
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from mobilebench import paths
from mobilebench.device.emulator import arm64, tools
from mobilebench.device.emulator.phones import PhoneSpec
from mobilebench.device.state import normalize_abi
from mobilebench.errors import MobilebenchError, UsageError
from mobilebench.files import atomic_writer_at, open_dir_beneath, write_text_atomic

SHELL_UID = 2000  # Android's "shell" user, as adbd runs on a non-rooted phone
DEVICE_UID = 2000  # the host user (uid = gid) commands run as when the emulator runs as root
MARKER = ".mobilebench-phone"
HOST_ABI = normalize_abi(platform.machine())
_HOST_SYSTEM_DIRS = ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32")
_PHONE_PATH = "/system/bin:/system/xbin:/usr/bin:/bin"
_CHECK_SCRIPT = (
    "getprop ro.product.model >/dev/null || exit 1; test -w /data/local/tmp || "
    "{ echo \"/data/local/tmp is not writable by the phone's shell (uid $(id -u); the folder's owner: $(stat -c %u /data/local/tmp))\"; exit 1; }"
)
#: cpufreq files a rooted phone's root may write (the rest are the kernel's).
_TUNABLE_CPUFREQ_FILES = ("scaling_governor", "scaling_min_freq", "scaling_max_freq", "scaling_setspeed")


def device_ids() -> tuple[int, int]:
    """(uid, gid) on this computer of the device user (see the module docstring)."""
    if os.geteuid() == 0:
        return DEVICE_UID, DEVICE_UID
    return os.getuid(), os.getgid()


@dataclass(frozen=True)
class Mount:
    phone: str  # absolute phone path, e.g. "/data"
    host: Path
    writable: bool


class PathMap:
    """Phone paths -> host directories, for the sync service (see the module docstring).

    ``owner`` is given to files and directories the sync service creates (the device
    user, when the emulator runs as root; None: the emulator's own user already is).
    """

    def __init__(self, mounts: list[Mount], symlinks: dict[str, str], owner: tuple[int, int] | None) -> None:
        # Longest prefix first, so /sys/devices/system/cpu wins over a /sys mount.
        self.mounts = sorted(mounts, key=lambda m: len(m.phone), reverse=True)
        self.symlinks = dict(symlinks)
        self.owner = owner
        self._virtual_dirs = {"/"}
        for phone in [m.phone for m in mounts] + list(symlinks):
            parent = posixpath.dirname(phone)
            while parent not in self._virtual_dirs:
                self._virtual_dirs.add(parent)
                parent = posixpath.dirname(parent)

    def _mount_for(self, phone: str) -> tuple[Mount, list[str]] | None:
        for mount in self.mounts:
            if phone == mount.phone or phone.startswith(mount.phone.rstrip("/") + "/"):
                return mount, [p for p in phone[len(mount.phone) :].split("/") if p]
        return None

    def _readlink(self, phone: str) -> str | None:
        if phone in self.symlinks:
            return self.symlinks[phone]
        found = self._mount_for(phone)
        if found is None or not found[1]:
            return None
        mount, parts = found
        try:
            with self.directory(mount, parts[:-1]) as dir_fd:
                return os.readlink(parts[-1], dir_fd=dir_fd)
        except OSError:  # not a link, or not there
            return None

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

    def locate(self, path: str, *, follow_last: bool = True) -> tuple[Mount, list[str]]:
        """The mount holding a phone path, and the names below the mount's root that lead
        to it (links resolved in the phone's view); ENOENT outside every mount."""
        phone = self.resolve_phone(path, follow_last=follow_last)
        found = self._mount_for(phone)
        if found is None:
            raise OSError(errno.ENOENT, os.strerror(errno.ENOENT), path)
        return found

    def may_read(self, st: os.stat_result) -> bool:
        """Whether the device user may read a file with these permissions: the sync
        service runs as the emulator's user, who may be root and read anything."""
        if self.owner is None:
            return True  # the emulator is the device user: the kernel checked at open
        uid, gid = self.owner
        if st.st_uid == uid:
            return bool(st.st_mode & stat.S_IRUSR)
        if st.st_gid == gid:
            return bool(st.st_mode & stat.S_IRGRP)
        return bool(st.st_mode & stat.S_IROTH)

    @contextlib.contextmanager
    def directory(self, mount: Mount, parts: list[str], *, create: bool = False) -> Iterator[int]:
        """A descriptor of the directory ``parts`` below ``mount``'s root, reached without
        following any link (:func:`~mobilebench.files.open_dir_beneath`); with ``create``
        missing directories are made (owned by :attr:`owner`), as adbd's push does."""
        root_fd = os.open(mount.host, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            fd = open_dir_beneath(root_fd, parts, create=create, mode=0o771, owner=self.owner)
        finally:
            os.close(root_fd)
        try:
            yield fd
        finally:
            os.close(fd)


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
    """Creates and maintains the phone's files under ROOT.

    Every write below ROOT goes through :meth:`write_all`, which never follows a link: a
    rooted device may rearrange its cpufreq folders while the emulator writes there.
    """

    def __init__(self, root: Path, phone: PhoneSpec, *, host_cpus: list[int], abi: str = HOST_ABI) -> None:
        self.root = Path(root).resolve()
        self.phone = phone
        self.abi = abi
        #: Programs of this ABI do not run here natively: pushed ones go through qemu.
        self.foreign = abi != HOST_ABI
        self.data = self.root / "data"
        self.cpu_dir = self.root / "sys" / "devices" / "system" / "cpu"
        self.thermal_dir = self.root / "sys" / "class" / "thermal"
        self.system = self.root / "system"
        self.host_cpus = host_cpus
        self.owner = device_ids()

    def claim(self) -> None:
        """Make ROOT the emulator's: a new or empty folder gets the marker; a non-empty one
        must already have it (the emulator never deletes files it did not create)."""
        if self.root.exists() and not self.root.is_dir():
            raise UsageError(f"--root {self.root} is not a folder")
        self.root.mkdir(parents=True, exist_ok=True)
        if (self.root / MARKER).is_file():
            return
        if any(self.root.iterdir()):
            raise UsageError(
                f"--root {self.root} is not empty and is not a phone emulator's folder (it has no {MARKER}); "
                "pass a new or empty folder, or one an earlier `mobilebench emulator` created"
            )
        write_text_atomic(self.root / MARKER, json.dumps({"mobilebench": "phone emulator root", "phone": self.phone.name}) + "\n")

    def create(self, *, initial_temp_c: float, rooted: bool) -> None:
        """Claim ROOT, keep ``data`` and write ``sys`` and ``system`` afresh."""
        self.claim()
        os.chmod(self.root, 0o711)  # the device user passes through to its binds, nothing else
        uid = self.owner if os.geteuid() == 0 else None
        with self._dir(["data", "local", "tmp"], create=True, owner=uid):
            pass
        for generated in (self.root / "sys", self.system):
            if generated.is_symlink():
                generated.unlink()
            elif generated.exists():
                shutil.rmtree(generated)  # never follows links (fd-based on Linux)
        self._create_cpus(writable_owner=uid if rooted else None)
        self._create_thermal(initial_temp_c)
        self._create_system()

    def _create_cpus(self, *, writable_owner: tuple[int, int] | None) -> None:
        count = self.phone.cpu_count
        cpu = ["sys", "devices", "system", "cpu"]
        self.write_all(cpu, {name: f"0-{count - 1}\n" for name in ("possible", "present", "online")})
        for cluster_id, cluster in enumerate(self.phone.clusters):
            span = f"{cluster.cpus[0]}-{cluster.cpus[-1]}"
            for core in cluster.cpus:
                self.write_all([*cpu, f"cpu{core}"], {"online": "1\n"})
                topology = {
                    "physical_package_id": 0,
                    "cluster_id": cluster_id,
                    "core_id": core - cluster.cpus[0],
                    "core_siblings_list": span,
                    "cluster_cpus_list": span,
                    "package_cpus_list": f"0-{count - 1}",
                    "thread_siblings_list": core,
                    "core_cpus_list": core,
                }
                self.write_all([*cpu, f"cpu{core}", "topology"], {k: f"{v}\n" for k, v in topology.items()})
                cpufreq = {
                    "scaling_governor": self.phone.governor,
                    "scaling_available_governors": "schedutil performance powersave userspace",
                    "cpuinfo_min_freq": cluster.min_freq_khz,
                    "cpuinfo_max_freq": cluster.max_freq_khz,
                    "scaling_min_freq": cluster.min_freq_khz,
                    "scaling_max_freq": cluster.max_freq_khz,
                    "scaling_cur_freq": cluster.min_freq_khz,
                    "scaling_setspeed": "<unsupported>",
                    "related_cpus": ",".join(str(c) for c in cluster.cpus),
                }
                files = {k: f"{v}\n" for k, v in cpufreq.items()}
                # What a rooted phone's root may change belongs to the device user.
                tunable = {k: files.pop(k) for k in _TUNABLE_CPUFREQ_FILES}
                self.write_all([*cpu, f"cpu{core}", "cpufreq"], files)
                self.write_all([*cpu, f"cpu{core}", "cpufreq"], tunable, owner=writable_owner)

    def _create_thermal(self, temp_c: float) -> None:
        for index, zone in enumerate(self.phone.zones):
            files = {"type": f"{zone.type}\n", "mode": "enabled\n", "temp": f"{round(temp_c * 1000)}\n"}
            self.write_all(["sys", "class", "thermal", f"thermal_zone{index}"], files)

    def _create_system(self) -> None:
        props = "".join(f"{k}={v}\n" for k, v in sorted(self.phone.all_props(self.abi).items()))
        self.write_all(["system"], {"build.prop": props})
        tools_ = {"getprop": tools.GETPROP, "taskset": tools.taskset_script(self.phone.cpu_count, self.host_cpus)}
        etc = {"hosts": "127.0.0.1 localhost\n::1 ip6-localhost\n"}
        shell = "/bin/sh"
        if self.foreign:  # see mobilebench.device.emulator.arm64
            tools_["uname"] = tools.UNAME_ARM64
            etc["ld.so.preload"] = f"{arm64.SHIM_PATH}\n"
            shim_dir, shim_name = arm64.SHIM_PATH.rsplit("/", 1)
            self.write_all(shim_dir.split("/")[1:], {shim_name: arm64.exec_shim().read_bytes()}, mode=0o755)
            self.write_all([*arm64.QEMU_PREFIX.split("/")[1:], "etc"], {"ld.so.preload": ""})
            shell = "/bin/bash"  # says "Exec format error" (126) for a foreign binary, as mksh does
        self.write_all(["system", "bin"], tools_, mode=0o755)
        self.write_all(["system", "etc"], etc)
        with self._dir(["system", "bin"]) as bin_fd:
            os.symlink(shell, "sh", dir_fd=bin_fd)

    # -- writes and reads below ROOT -------------------------------------------------------

    @contextlib.contextmanager
    def _dir(self, parts: list[str], *, create: bool = True, owner: tuple[int, int] | None = None) -> Iterator[int]:
        root_fd = os.open(self.root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            fd = open_dir_beneath(root_fd, parts, create=create, mode=0o771 if owner else 0o755, owner=owner)
        finally:
            os.close(root_fd)
        try:
            yield fd
        finally:
            os.close(fd)

    def write_all(
        self, folder: list[str], files: dict[str, str | bytes], *, mode: int = 0o644, owner: tuple[int, int] | None = None
    ) -> None:
        """Replace each ROOT/folder/name with its content atomically (a command reading it
        never sees half a value), reaching the folder without following links."""
        with self._dir(folder) as dir_fd:
            for name, content in files.items():
                with atomic_writer_at(dir_fd, name, mode=mode, owner=owner, fsync=False) as handle:
                    handle.write(content.encode() if isinstance(content, str) else content)

    def write_zone_temp(self, index: int, temp_c: float) -> None:
        self.write_all(["sys", "class", "thermal", f"thermal_zone{index}"], {"temp": f"{round(temp_c * 1000)}\n"})

    def read_cpu_file(self, cpu: int, name: str) -> str:
        try:
            with self._dir(["sys", "devices", "system", "cpu", f"cpu{cpu}", "cpufreq"], create=False) as dir_fd:
                fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, dir_fd=dir_fd)
                with os.fdopen(fd, "rb") as handle:
                    return handle.read(4096).decode(errors="replace").strip()
        except OSError:
            return ""

    def write_cpu_file(self, cpu: int, name: str, value: str) -> None:
        self.write_all(["sys", "devices", "system", "cpu", f"cpu{cpu}", "cpufreq"], {name: f"{value}\n"})


class Sandbox:
    """Runs shell commands as the phone would: ``sh -c COMMAND`` inside bubblewrap.

    One mount table (:attr:`mounts`, :attr:`symlinks`) drives both the bubblewrap
    command line and the :class:`PathMap` of the sync service.
    """

    def __init__(self, root: PhoneRoot, *, rooted: bool = False) -> None:
        self.root = root
        self.rooted = rooted
        self.bwrap = shutil.which("bwrap")
        self.symlinks: dict[str, str] = {"/sdcard": "/data/media/0", "/etc": "/system/etc"}
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
        return PathMap(self.mounts, self.symlinks, owner=self.root.owner if os.geteuid() == 0 else None)

    def _build_argv_prefix(self) -> list[str]:
        shell_uid = 0 if self.rooted else SHELL_UID
        args = ["--die-with-parent", "--unshare-pid", "--unshare-ipc", "--unshare-uts", "--unshare-net", "--hostname", "localhost"]
        if os.geteuid() != 0:
            # bubblewrap's user namespace maps the shell's uid to the emulator's own user.
            args += ["--unshare-user", "--uid", str(shell_uid), "--gid", str(shell_uid)]
        # Private /proc, /dev, /tmp and an empty /sys first; mounts below them (a checkout
        # under /tmp, the fake sysfs) go on top, parents before children. Folders leading
        # to a mount are made world-searchable (bubblewrap would make them 0700, closed
        # to the device user).
        args += ["--proc", "/proc", "--dev", "/dev", "--tmpfs", "/tmp", "--tmpfs", "/sys"]
        steps: dict[str, list[str]] = {}
        for mount in self.mounts:
            steps[mount.phone] = ["--bind" if mount.writable else "--ro-bind", str(mount.host), mount.phone]
        for path in [m.phone for m in self.mounts] + list(self.symlinks):
            parent = posixpath.dirname(path)
            while parent not in ("/", "/tmp", "/sys") and parent not in steps:
                steps[parent] = ["--perms", "0755", "--dir", parent]
                parent = posixpath.dirname(parent)
        for path in sorted(steps, key=lambda p: (p.count("/"), p)):
            args += steps[path]
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
        args.append("--")
        if os.geteuid() == 0:
            # bubblewrap as root builds the sandbox; setpriv then leaves root for the device
            # user, for good (no capabilities, no way back through set-uid files). A rooted
            # phone's root is that user in a user namespace of its own.
            uid, gid = self.root.owner
            args += [
                "/usr/bin/setpriv", f"--reuid={uid}", f"--regid={gid}", "--clear-groups",
                "--inh-caps=-all", "--bounding-set=-all", "--no-new-privs", "--",
            ]  # fmt: skip
            if self.rooted:
                args += ["/usr/bin/unshare", "--user", "--map-root-user", "--"]
        return args

    def argv(self, command: list[str]) -> list[str]:
        if self.bwrap is None:
            raise MobilebenchError("the phone emulator needs bubblewrap: apt-get install bubblewrap")
        return [self.bwrap, *self._argv_prefix, *command]

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
                self.argv(["/system/bin/sh", "-c", _CHECK_SCRIPT]),
                capture_output=True,
                timeout=30,
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise MobilebenchError(f"cannot start the phone sandbox (bubblewrap): {exc}") from None
        if result.returncode != 0:
            detail = (result.stderr or result.stdout).decode(errors="replace").strip()
            raise MobilebenchError(
                f"the phone sandbox does not work here: {detail or f'exit {result.returncode}'} (bubblewrap needs "
                "user namespaces or root, and ROOT a file system that allows executables)"
            )
