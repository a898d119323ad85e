"""Each kernel's private world (strict isolation only): its own PID namespace, mount namespace,
capped scratch tmpfs and no capabilities.

The fork server forks every kernel's *supervisor*, which creates a PID namespace for the
kernel and, imports nothing and running no user code, builds the kernel's view:
- a fresh ``/proc`` that shows only the kernel's own processes (no ``/proc/1/root`` of anything
  outside, no other kernel, no fork server);
- the pool directory covered by an empty tmpfs except the kernel's own directory (its IPC
  sockets), so ``fork.sock`` and other kernels' sockets are gone;
- ``/tmp``, ``/dev/shm`` and the work dir on one private tmpfs with a size cap, freed with the
  namespace when the kernel ends (host disk is never used);
- every shared writable mount (``/dev``, ``/run``) made read-only.
It then forks the kernel, PID 1 of the new namespace, which mounts its /proc, drops every
capability and loads the seccomp filter before it imports or runs anything; once the kernel has
bound its sockets, the supervisor makes the kernel's own directory read-only too. Linux only;
the supervisor needs CAP_SYS_ADMIN in the sandbox's user namespace, which bwrap grants to the
fork server under strict isolation.

Stash directories are created in a tmpfs this process has just mounted in its own namespace:
no other process can have created anything there first.
"""

from __future__ import annotations

import ctypes
import fcntl
import os
import socket
import struct

__all__ = [
    "CLONE_NEWNET",
    "CLONE_NEWNS",
    "CLONE_NEWPID",
    "drop_capabilities",
    "enter_private_view",
    "loopback_up",
    "make_read_only",
    "mount_proc",
    "unshare",
]

CLONE_NEWNS = 0x00020000
CLONE_NEWPID = 0x20000000
CLONE_NEWNET = 0x40000000
_MS_RDONLY, _MS_NOSUID, _MS_NODEV, _MS_NOEXEC = 0x1, 0x2, 0x4, 0x8
_MS_REMOUNT, _MS_BIND, _MS_REC, _MS_PRIVATE = 0x20, 0x1000, 0x4000, 0x40000
_MNT_DETACH = 2
_PR_CAPBSET_DROP = 24
_CAP_VERSION_3 = 0x20080522
_SIOCGIFFLAGS, _SIOCSIFFLAGS, _IFF_UP = 0x8913, 0x8914, 0x1
_IFREQ = struct.Struct("16sh22x")  # struct ifreq: the name, then ifr_flags

_libc = ctypes.CDLL(None, use_errno=True)  # loaded before any fork: nothing to import later


def _check(ret: int, what: str) -> None:
    if ret != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")


def _mount(src: str | None, dst: str, fstype: str | None, flags: int, data: str = "") -> None:
    _check(
        _libc.mount(
            src.encode() if src else None,
            dst.encode(),
            fstype.encode() if fstype else None,
            flags,
            data.encode() if data else None,
        ),
        f"mount {src or fstype} on {dst}",
    )


def unshare(flags: int) -> None:
    _check(_libc.unshare(flags), f"unshare({flags:#x})")


def loopback_up() -> None:
    """Bring up ``lo`` in a fresh network namespace (needs CAP_NET_ADMIN there). The namespace
    reaches nothing else; loopback is what ipykernel uses to forward the output of processes
    forked inside the kernel (a graded run, a snippet's child). Without it each such print waits
    out a 3 s send timeout and is lost."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        _, flags = _IFREQ.unpack(fcntl.ioctl(s.fileno(), _SIOCGIFFLAGS, _IFREQ.pack(b"lo", 0)))
        fcntl.ioctl(s.fileno(), _SIOCSIFFLAGS, _IFREQ.pack(b"lo", flags | _IFF_UP))


def make_read_only(path: str) -> None:
    _mount(None, path, None, _MS_REMOUNT | _MS_BIND | _MS_RDONLY | _MS_NOSUID | _MS_NODEV)


def _under(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip("/") + "/")


def enter_private_view(
    own_dir: str, pool_dir: str, scratch_mb: int, keep_under_tmp: list[str]
) -> None:
    """Build the view described above for this process (the kernel's supervisor, PID 1 of a
    new PID namespace). ``keep_under_tmp``: bound paths that live under /tmp (a checkout or a
    venv there) and must stay visible when /tmp is replaced."""
    unshare(CLONE_NEWNS)
    _mount(None, "/", None, _MS_REC | _MS_PRIVATE)  # our mounts stay ours
    # A fresh tmpfs for stashes: created right now, in our own namespace.
    _mount("tmpfs", "/run", "tmpfs", _MS_NOSUID | _MS_NODEV, "size=64k,mode=700")
    stashes: list[tuple[str, str]] = []

    def stash(path: str) -> None:
        where = f"/run/{len(stashes)}"
        os.mkdir(where, 0o700)
        _mount(path, where, None, _MS_BIND | _MS_REC)
        stashes.append((where, path))

    def restore() -> None:
        for where, path in stashes:
            os.makedirs(path, exist_ok=True)
            _mount(where, path, None, _MS_BIND | _MS_REC)
            _check(_libc.umount2(where.encode(), _MNT_DETACH), f"umount {where}")
            os.rmdir(where)
        stashes.clear()

    # The pool: only our own directory (our IPC sockets) stays.
    stash(own_dir)
    _mount("tmpfs", pool_dir, "tmpfs", _MS_NOSUID | _MS_NODEV, "size=64k,mode=755")
    restore()
    # /tmp: a private, capped tmpfs; what must stay visible under it is put back.
    for path in sorted({*keep_under_tmp, *([pool_dir] if _under(pool_dir, "/tmp") else [])}):
        stash(path)
    _mount("tmpfs", "/tmp", "tmpfs", _MS_NOSUID | _MS_NODEV, f"size={scratch_mb}m,mode=1777")
    restore()
    # /dev/shm and the work dir live on that same tmpfs, so one cap bounds all three.
    for sub, target in (("/tmp/.whip-shm", "/dev/shm"), ("/tmp/.whip-work", own_dir + "/work")):
        os.mkdir(sub, 0o700)
        os.makedirs(target, exist_ok=True)
        _mount(sub, target, None, _MS_BIND)
    _check(_libc.umount2(b"/run", _MNT_DETACH), "umount /run")
    for shared in ("/dev", "/run"):  # shared with every kernel: never writable from here
        make_read_only(shared)


def mount_proc() -> None:
    """A /proc of this process's PID namespace (called by the kernel, PID 1 there, before it
    drops its capabilities): it shows the kernel's own processes and nothing else."""
    _mount("proc", "/proc", "proc", _MS_NOSUID | _MS_NODEV | _MS_NOEXEC)


def drop_capabilities() -> None:
    """No capabilities, now or after any exec: the bounding set is emptied first."""
    cap = 0
    while _libc.prctl(_PR_CAPBSET_DROP, cap, 0, 0, 0) == 0:
        cap += 1  # until the first number the kernel does not know (EINVAL)
    if cap == 0:
        _check(-1, "prctl(PR_CAPBSET_DROP)")

    class Header(ctypes.Structure):
        _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]

    class Data(ctypes.Structure):
        _fields_ = [(n, ctypes.c_uint32) for n in ("effective", "permitted", "inheritable")]

    _check(_libc.capset(ctypes.byref(Header(_CAP_VERSION_3, 0)), (Data * 2)()), "capset")
