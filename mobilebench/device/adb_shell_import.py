"""Import adb-shell's synchronous ``AdbDevice`` without two modules it never uses over TCP.

adb-shell 0.4 imports, at module level and for every connection type:

- ``asyncio``, in ``adb_shell.hidden_helpers``, only to take ``asyncio.Queue`` for the
  packet store, with ``queue.Queue`` as its fallback when asyncio cannot be imported. The
  synchronous device calls nothing but ``empty()``, ``put_nowait()`` and ``get_nowait()``
  (after ``empty()`` said False) on it, from one thread at a time, which both classes do
  alike;
- its USB transport, in ``adb_shell.adb_device`` (``try: ... except ImportError``), and
  with it the libusb1 bindings (``usb1``, ctypes, platform).

Together that is ~40-50 ms of the ~0.3 s a ``mobilebench profile`` call spends outside the
runner on a 2-core computer, where the goal is that the toolkit costs under 20 %. So the
first import here hides both from adb-shell for the duration of that one import. A USB
connection imports ``adb_shell.transport.usb_transport`` itself afterwards (see
:meth:`mobilebench.device.adb.AdbDevice._make_transport`), which then loads libusb as
usual; nothing else in the process is affected, because the hiding ends with the import.

Where either module is already loaded (a process that uses asyncio), nothing is hidden.
Should a later adb-shell not import without them, the import is simply repeated with
nothing hidden: the cost comes back, the behaviour stays right.
"""

from __future__ import annotations

import sys
from types import ModuleType

#: What adb-shell may import without, and why (see the module docstring).
UNNEEDED = ("asyncio", "adb_shell.transport.usb_transport")


def import_adb_shell(unneeded: tuple[str, ...] = UNNEEDED) -> ModuleType:
    """``adb_shell.adb_device``, imported with ``unneeded`` hidden if it was not yet.

    Hiding means ``sys.modules[name] = None`` (the import system's "not available") for
    the duration of this import only. If adb-shell fails to import that way, the modules
    it loaded half-way are forgotten and it is imported again with nothing hidden.
    """
    try:
        return _import_hiding(unneeded)
    except ImportError:
        _forget_adb_shell()  # half-imported modules would keep what they saw
        return _import_hiding(())


def _import_hiding(modules: tuple[str, ...]) -> ModuleType:
    hidden = [name for name in modules if name not in sys.modules]
    for name in hidden:
        sys.modules[name] = None  # type: ignore[assignment]
    try:
        import adb_shell.adb_device

        return adb_shell.adb_device
    finally:
        for name in hidden:
            if name in sys.modules and sys.modules[name] is None:
                del sys.modules[name]


def _forget_adb_shell() -> None:
    for name in [name for name in sys.modules if name == "adb_shell" or name.startswith("adb_shell.")]:
        del sys.modules[name]


AdbShellDevice = import_adb_shell().AdbDevice

from adb_shell import exceptions as adb_errors  # noqa: E402  (after the import above, on purpose)
from adb_shell.transport.base_transport import BaseTransport  # noqa: E402

__all__ = ["AdbShellDevice", "BaseTransport", "adb_errors", "import_adb_shell"]
