"""adb-shell imported without asyncio and libusb (mobilebench.device.adb_shell_import).

Each test runs in a fresh interpreter: the test process itself has long imported both.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

from .conftest import needs_bwrap


def run_fresh(code: str, *args: str) -> dict:
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code), *args], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.splitlines()[-1])


@needs_bwrap
def test_a_fresh_process_talks_adb_without_asyncio_or_libusb(emulator, tmp_path) -> None:
    payload = tmp_path / "payload.bin"
    payload.write_bytes(bytes(range(256)) * 300)
    facts = run_fresh(
        """
        import json, sys
        from dataclasses import replace
        from pathlib import Path
        from mobilebench.device import connect, get_profile

        profile = replace(get_profile("emulator"), address=sys.argv[1])
        with connect(profile, timeout_s=10) as device:
            model = device.run(["getprop", "ro.product.model"], timeout_s=10).stdout.strip()
            lines = []
            streamed = device.run(["sh", "-c", "for i in 1 2 3; do echo line $i; done"], timeout_s=10,
                                  on_output=lines.append)
            device.push(Path(sys.argv[2]), "/data/local/tmp/payload.bin")
            size = device.stat("/data/local/tmp/payload.bin").size
        loaded = {name: name in sys.modules for name in ("asyncio", "usb1")}
        queue = sys.modules["adb_shell.hidden_helpers"].Queue
        # Nothing stays hidden: both import normally afterwards.
        import asyncio, usb1
        from adb_shell.transport.usb_transport import UsbTransport
        print(json.dumps({"model": model, "streamed": "".join(lines), "size": size, "loaded": loaded,
                          "queue": f"{queue.__module__}.{queue.__name__}"}))
        """,
        emulator.address,
        str(payload),
    )
    assert facts["model"] == "Pixel 4"
    assert facts["streamed"] == "line 1\nline 2\nline 3\n"
    assert facts["size"] == payload.stat().st_size
    assert facts["loaded"] == {"asyncio": False, "usb1": False}
    assert facts["queue"] == "queue.Queue"


def test_an_adb_shell_that_needs_a_hidden_module_is_imported_again_with_nothing_hidden() -> None:
    facts = run_fresh(
        """
        import json, sys
        from mobilebench.device import adb_shell_import

        adb_shell_import._forget_adb_shell()
        # adb_shell.adb_device cannot import without its own exceptions module.
        module = adb_shell_import.import_adb_shell(("adb_shell.exceptions", "usb1"))
        print(json.dumps({
            "device": module.AdbDevice.__name__,
            "exceptions": sys.modules.get("adb_shell.exceptions") is not None,
            "hidden_left": [n for n in ("adb_shell.exceptions", "usb1") if n in sys.modules and sys.modules[n] is None],
        }))
        """
    )
    assert facts == {"device": "AdbDevice", "exceptions": True, "hidden_left": []}


def test_modules_already_loaded_are_not_hidden() -> None:
    facts = run_fresh(
        """
        import asyncio, json, sys
        from mobilebench.device import adb_shell_import

        queue = sys.modules["adb_shell.hidden_helpers"].Queue
        print(json.dumps({"queue": f"{queue.__module__}.{queue.__name__}"}))
        """
    )
    assert facts == {"queue": "asyncio.queues.Queue"}
