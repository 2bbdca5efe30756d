"""An arm64 phone on an x86-64 computer: pushed aarch64 programs run under qemu.

The emulated phone's toolbox (sh, coreutils, taskset) is this computer's, so it runs
natively, like a phone's own system binaries; what the user pushes to ``/data`` is
what must be arm64. The sandbox of an ``--abi arm64-v8a`` emulator preloads a small
library into every dynamically linked program (``/etc/ld.so.preload``, the phone's own
``/etc``) that takes over the ``exec`` family and ``posix_spawn``:

- an aarch64 ELF file runs as ``qemu-aarch64-static -cpu cortex-a76 -0 ARGV0 FILE ...``.
  The CPU model is always given: qemu's default CPU offers SME, with which XNNPACK picks
  kernels that give wrong int8 results and 13x slower fp32; the Pixel 4's Cortex-A76 has
  none (shared/reference/arm64.md). qemu's ``-L`` prefix holds an empty
  ``/etc/ld.so.preload``, so the aarch64 loader does not try to load the x86-64 library;
- any other ELF file under ``/data`` (an x86-64 runner pushed to an arm64 phone) is
  refused with ENOEXEC, "Exec format error", as the phone's kernel would; the shell
  (bash here, as mksh on a phone) then says so with status 126, and so does taskset;
- everything else (the toolbox, scripts) is executed unchanged.

The library is C, compiled with the system's ``cc`` on first use and cached by the
hash of its source (:func:`exec_shim`).
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import tempfile
from pathlib import Path

from mobilebench import paths
from mobilebench.errors import MobilebenchError
from mobilebench.files import write_bytes_atomic

QEMU = "/usr/bin/qemu-aarch64-static"
QEMU_CPU = "cortex-a76"
#: qemu's ``-L`` prefix inside the phone (guest paths are looked up there first).
QEMU_PREFIX = "/system/qemu"
SHIM_PATH = "/system/lib64/libmobilebench_exec.so"

SHIM_SOURCE = r"""
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

extern char **environ;

#define EM_X86_64_ 62
#define EM_AARCH64_ 183
enum kind { NATIVE, AARCH64, FOREIGN };

/* What executing path would mean on an arm64 phone. */
static enum kind classify(const char *path) {
    unsigned char h[20];
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return NATIVE; /* let the real call report it */
    ssize_t n = read(fd, h, sizeof h);
    close(fd);
    if (n < 20 || h[0] != 0x7f || h[1] != 'E' || h[2] != 'L' || h[3] != 'F') return NATIVE;
    int machine = h[5] == 2 ? (h[18] << 8 | h[19]) : (h[18] | h[19] << 8);
    if (machine == EM_AARCH64_) return AARCH64;
    char real[PATH_MAX];
    if (realpath(path, real) && strncmp(real, "/data/", 6) == 0) return FOREIGN;
    return NATIVE;
}

/* [qemu, -L, prefix, -cpu, CPU, -0, argv0, path, argv[1]...]; freed by the caller. */
static char **qemu_argv(const char *path, char *const argv[]) {
    size_t n = 0;
    while (argv && argv[n]) n++;
    char **out = calloc(n + 9, sizeof *out);
    if (!out) return NULL;
    size_t i = 0;
    out[i++] = "@QEMU@";
    out[i++] = "-L";
    out[i++] = "@PREFIX@";
    out[i++] = "-cpu";
    out[i++] = "@CPU@";
    out[i++] = "-0";
    out[i++] = (char *)(n ? argv[0] : path);
    out[i++] = (char *)path;
    for (size_t j = 1; j < n; j++) out[i++] = argv[j];
    return out;
}

typedef int (*execve_t)(const char *, char *const[], char *const[]);
typedef int (*spawn_t)(pid_t *, const char *, const posix_spawn_file_actions_t *, const posix_spawnattr_t *,
                       char *const[], char *const[]);

int execve(const char *path, char *const argv[], char *const envp[]) {
    execve_t real = (execve_t)dlsym(RTLD_NEXT, "execve");
    enum kind k = classify(path);
    if (k == FOREIGN) { errno = ENOEXEC; return -1; }
    if (k == AARCH64) {
        char **q = qemu_argv(path, argv);
        if (!q) { errno = ENOMEM; return -1; }
        real(q[0], q, envp);
        int saved = errno;
        free(q);
        errno = saved;
        return -1;
    }
    return real(path, argv, envp);
}

int execv(const char *path, char *const argv[]) { return execve(path, argv, environ); }

/* PATH search as execvp does, with each candidate going through execve above; a
   non-ELF file the kernel cannot run is run by /bin/sh, an ELF one is not. */
int execvpe(const char *file, char *const argv[], char *const envp[]) {
    if (!file || !*file) { errno = ENOENT; return -1; }
    if (strchr(file, '/')) return execve(file, argv, envp);
    const char *p = getenv("PATH");
    if (!p) p = "/bin:/usr/bin";
    int seen_eacces = 0;
    char buf[PATH_MAX];
    for (;;) {
        const char *end = strchr(p, ':');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        if (len + strlen(file) + 2 <= sizeof buf) {
            if (len) { memcpy(buf, p, len); buf[len] = '/'; strcpy(buf + len + 1, file); }
            else strcpy(buf, file);
            execve(buf, argv, envp);
            if (errno == EACCES) seen_eacces = 1;
            else if (errno == ENOEXEC) {
                if (classify(buf) != NATIVE) return -1;
                unsigned char h[4] = {0};
                int fd = open(buf, O_RDONLY | O_CLOEXEC);
                if (fd >= 0) { if (read(fd, h, 4) < 0) h[0] = 0; close(fd); }
                if (h[0] == 0x7f && h[1] == 'E') return -1;
                size_t n = 0;
                while (argv[n]) n++;
                char **sh = calloc(n + 2, sizeof *sh);
                if (!sh) { errno = ENOMEM; return -1; }
                sh[0] = "/bin/sh";
                sh[1] = buf;
                for (size_t j = 1; j < n; j++) sh[j + 1] = argv[j];
                execve("/bin/sh", sh, envp);
                free(sh);
                return -1;
            }
        }
        if (!end) break;
        p = end + 1;
    }
    errno = seen_eacces ? EACCES : ENOENT;
    return -1;
}

int execvp(const char *file, char *const argv[]) { return execvpe(file, argv, environ); }

static char **collect(const char *arg, va_list ap, char ***envp) {
    size_t cap = 8, n = 0;
    char **out = malloc(cap * sizeof *out);
    if (!out) return NULL;
    for (const char *a = arg; a; a = va_arg(ap, const char *)) {
        if (n + 2 > cap) { cap *= 2; char **grown = realloc(out, cap * sizeof *out); if (!grown) { free(out); return NULL; } out = grown; }
        out[n++] = (char *)a;
    }
    out[n] = NULL;
    if (envp) *envp = va_arg(ap, char **);
    return out;
}

int execl(const char *path, const char *arg, ...) {
    va_list ap; va_start(ap, arg);
    char **argv = collect(arg, ap, NULL);
    va_end(ap);
    if (!argv) { errno = ENOMEM; return -1; }
    execve(path, argv, environ);
    free(argv);
    return -1;
}

int execlp(const char *file, const char *arg, ...) {
    va_list ap; va_start(ap, arg);
    char **argv = collect(arg, ap, NULL);
    va_end(ap);
    if (!argv) { errno = ENOMEM; return -1; }
    execvpe(file, argv, environ);
    free(argv);
    return -1;
}

int execle(const char *path, const char *arg, ...) {
    va_list ap; va_start(ap, arg);
    char **envp;
    char **argv = collect(arg, ap, &envp);
    va_end(ap);
    if (!argv) { errno = ENOMEM; return -1; }
    execve(path, argv, envp);
    free(argv);
    return -1;
}

static int spawn(const char *sym, pid_t *pid, const char *path, const posix_spawn_file_actions_t *fa,
                 const posix_spawnattr_t *at, char *const argv[], char *const envp[], const char *resolved) {
    spawn_t real = (spawn_t)dlsym(RTLD_NEXT, sym);
    enum kind k = resolved ? classify(resolved) : NATIVE;
    if (k == FOREIGN) return ENOEXEC;
    if (k == AARCH64) {
        char **q = qemu_argv(resolved, argv);
        if (!q) return ENOMEM;
        spawn_t plain = (spawn_t)dlsym(RTLD_NEXT, "posix_spawn");
        int rc = plain(pid, q[0], fa, at, q, envp);
        free(q);
        return rc;
    }
    return real(pid, path, fa, at, argv, envp);
}

int posix_spawn(pid_t *pid, const char *path, const posix_spawn_file_actions_t *fa, const posix_spawnattr_t *at,
                char *const argv[], char *const envp[]) {
    return spawn("posix_spawn", pid, path, fa, at, argv, envp, path);
}

int posix_spawnp(pid_t *pid, const char *file, const posix_spawn_file_actions_t *fa, const posix_spawnattr_t *at,
                 char *const argv[], char *const envp[]) {
    const char *resolved = NULL;
    char buf[PATH_MAX];
    if (strchr(file, '/')) resolved = file;
    else {
        const char *p = getenv("PATH");
        if (!p) p = "/bin:/usr/bin";
        while (p && *p && !resolved) {
            const char *end = strchr(p, ':');
            size_t len = end ? (size_t)(end - p) : strlen(p);
            if (len && len + strlen(file) + 2 <= sizeof buf) {
                memcpy(buf, p, len); buf[len] = '/'; strcpy(buf + len + 1, file);
                if (access(buf, X_OK) == 0) resolved = buf;
            }
            p = end ? end + 1 : NULL;
        }
    }
    return spawn("posix_spawnp", pid, file, fa, at, argv, envp, resolved);
}
"""


def shim_source() -> str:
    return SHIM_SOURCE.replace("@QEMU@", QEMU).replace("@PREFIX@", QEMU_PREFIX).replace("@CPU@", QEMU_CPU)


def exec_shim() -> Path:
    """The compiled shim (``<cache dir>/emulator/exec-shim-<hash>.so``), built with ``cc``
    the first time this source is needed."""
    source = shim_source()
    out = paths.cache_dir() / "emulator" / f"exec-shim-{hashlib.sha256(source.encode()).hexdigest()[:16]}.so"
    if out.is_file():
        return out
    compiler = shutil.which("cc") or shutil.which("gcc")
    if compiler is None:
        raise MobilebenchError("the arm64 emulator needs a C compiler for its exec shim: apt-get install gcc")
    with tempfile.TemporaryDirectory(prefix="mobilebench-shim-") as tmp:
        source_file, built = Path(tmp, "shim.c"), Path(tmp, "shim.so")
        source_file.write_text(source)
        result = subprocess.run(
            [compiler, "-shared", "-fPIC", "-O2", "-Wall", "-o", str(built), str(source_file), "-ldl"],
            capture_output=True,
            text=True,
            timeout=120,
        )
        if result.returncode != 0:
            raise MobilebenchError(f"cannot build the arm64 emulator's exec shim: {' '.join(result.stderr.split())[:300]}")
        write_bytes_atomic(out, built.read_bytes(), mode=0o755)
    return out


def check_qemu() -> None:
    if not Path(QEMU).is_file():
        raise MobilebenchError(f"--abi arm64-v8a needs {QEMU}: apt-get install qemu-user-static")
