"""Android tools the emulated phone provides in /system/bin (POSIX shell scripts).

Everything else a benchmark uses (sh, cat, ls, mv, rm, mkdir, chmod, df, id, sha256sum,
md5sum) is the host's coreutils/dash, visible read-only in the sandbox.
"""

from __future__ import annotations

GETPROP = r"""#!/bin/sh
# getprop [NAME [DEFAULT]] for the phone emulator: answers from /system/build.prop.
# Without arguments lists every property as "[name]: [value]", like Android's getprop.
props=/system/build.prop
if [ $# -eq 0 ]; then
  while IFS= read -r line; do
    case $line in ''|'#'*) continue ;; esac
    printf '[%s]: [%s]\n' "${line%%=*}" "${line#*=}"
  done < "$props"
  exit 0
fi
while IFS= read -r line; do
  case $line in "$1="*) printf '%s\n' "${line#*=}"; exit 0 ;; esac
done < "$props"
printf '%s\n' "${2-}"
"""

UNAME_ARM64 = r"""#!/bin/sh
# uname for an arm64 phone emulated on this computer: its kernel, the phone's machine.
/usr/bin/uname "$@" | /usr/bin/sed 's/x86_64/aarch64/g'
"""

# The phone has more cores than this computer: phone CPU c runs on host CPU
# HOST_CPUS[c % len(HOST_CPUS)], and the command is then really pinned there with
# util-linux taskset. The phone CPUs asked for are exported in MOBILEBENCH_EMU_CPUS, which
# the emulator's thermal model reads to know which simulated core is working.
TASKSET = r"""#!/bin/sh
# taskset for the phone emulator. Forms: taskset [-a] MASK COMMAND [ARG...]
#                                        taskset [-a] -c LIST COMMAND [ARG...]
# MASK is hexadecimal (80 = cpu7); LIST is like 7 or 4-7 or 0,7.
# Phone CPU c (0..NCPU-1) is mapped to host CPU number (c mod HOSTN) of HOST_CPUS.
NCPU=@NCPU@
HOST_CPUS="@HOST_CPUS@"
usage() { echo "usage: taskset [-a] [-c LIST | MASK] COMMAND [ARG...]" >&2; exit 1; }
list=0
while [ $# -gt 0 ]; do
  case $1 in
    -a|--all-tasks) shift ;;
    -c|--cpu-list|-ac|-ca) list=1; shift ;;
    -p|--pid|-ap|-pa|-cp|-pc|-acp) echo "taskset: -p is not supported by the phone emulator" >&2; exit 1 ;;
    --) shift; break ;;
    -*) usage ;;
    *) break ;;
  esac
done
[ $# -ge 2 ] || usage
spec=$1
shift
cpus=
if [ "$list" = 1 ]; then
  old_ifs=$IFS
  IFS=,
  for part in $spec; do
    case $part in
      *-*) lo=${part%-*}; hi=${part#*-} ;;
      *) lo=$part; hi=$part ;;
    esac
    case "$lo" in ''|*[!0-9]*) echo "taskset: bad CPU list '$spec'" >&2; exit 1 ;; esac
    case "$hi" in ''|*[!0-9]*) echo "taskset: bad CPU list '$spec'" >&2; exit 1 ;; esac
    i=$lo
    while [ "$i" -le "$hi" ]; do cpus="$cpus $i"; i=$((i + 1)); done
  done
  IFS=$old_ifs
else
  case $spec in 0x*|0X*) spec=${spec#??} ;; esac
  case $spec in ''|*[!0-9a-fA-F]*) echo "taskset: bad mask '$spec'" >&2; exit 1 ;; esac
  if [ ${#spec} -gt 15 ]; then echo "taskset: mask too long '$spec'" >&2; exit 1; fi
  mask=$((0x$spec))
  i=0
  while [ "$i" -lt 60 ]; do
    [ $(( (mask >> i) & 1 )) -eq 1 ] && cpus="$cpus $i"
    i=$((i + 1))
  done
fi
[ -n "$cpus" ] || { echo "taskset: sched_setaffinity: Invalid argument (empty CPU set)" >&2; exit 1; }
hostn=0
for h in $HOST_CPUS; do hostn=$((hostn + 1)); done
phone=
host=
for c in $cpus; do
  if [ "$c" -ge "$NCPU" ]; then
    echo "taskset: sched_setaffinity: Invalid argument (this phone has CPUs 0-$((NCPU - 1)))" >&2
    exit 1
  fi
  want=$((c % hostn))
  n=0
  for h in $HOST_CPUS; do
    [ "$n" -eq "$want" ] && host="$host${host:+,}$h"
    n=$((n + 1))
  done
  phone="$phone${phone:+,}$c"
done
MOBILEBENCH_EMU_CPUS=$phone
export MOBILEBENCH_EMU_CPUS
exec /usr/bin/taskset -c "$host" "$@"
"""


def taskset_script(phone_cpus: int, host_cpus: list[int]) -> str:
    return TASKSET.replace("@NCPU@", str(phone_cpus)).replace("@HOST_CPUS@", " ".join(str(c) for c in host_cpus))
