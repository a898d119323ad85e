"""Each kernel's private view of the pool directory (strict isolation only).

Every kernel is forked from one fork server inside one bubblewrap sandbox, so without this they
would all see the pool directory: each other's work dirs (another session's code) and IPC
sockets (another kernel's output channel). A forked kernel therefore enters a mount namespace of
its own where the pool directory is an empty tmpfs holding only its own directory, then drops
every capability, so that nothing it runs can undo the mounts. Linux only; it needs
CAP_SYS_ADMIN and CAP_SETPCAP in the sandbox's user namespace, which bwrap grants to the fork
server under strict isolation (the kernels drop them before any code of theirs runs).
"""

from __future__ import annotations

import ctypes
import os

__all__ = ["drop_capabilities", "enter_private_view"]

_CLONE_NEWNS = 0x00020000
_MS_BIND, _MS_REC, _MS_PRIVATE = 0x1000, 0x4000, 0x40000
_MNT_DETACH = 2
_PR_CAPBSET_DROP = 24
_CAP_VERSION_3 = 0x20080522


def _libc() -> ctypes.CDLL:
    return ctypes.CDLL(None, use_errno=True)


def _check(ret: int, what: str) -> None:
    if ret != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")


def _mount(libc: ctypes.CDLL, src: str | None, dst: str, fstype: str | None, flags: int) -> None:
    _check(
        libc.mount(
            src.encode() if src else None, dst.encode(), fstype.encode() if fstype else None,
            flags, None,
        ),
        f"mount {src or fstype} on {dst}",
    )  # fmt: skip


def enter_private_view(own_dir: str, pool_dir: str) -> None:
    """From now on this process sees ``pool_dir`` as an empty directory except ``own_dir``."""
    libc = _libc()
    _check(libc.unshare(_CLONE_NEWNS), "unshare(CLONE_NEWNS)")
    _mount(libc, None, "/", None, _MS_REC | _MS_PRIVATE)  # our mounts stay ours
    name = os.path.relpath(own_dir, pool_dir)
    if name.startswith("..") or os.sep in name:
        raise ValueError(f"{own_dir} is not directly inside {pool_dir}")
    # Keep our directory at a side path, cover the pool, then put it back.
    stash = f"/tmp/.whip-own-{os.getpid()}"
    os.mkdir(stash, 0o700)
    _mount(libc, own_dir, stash, None, _MS_BIND | _MS_REC)
    _mount(libc, "tmpfs", pool_dir, "tmpfs", 0)
    os.mkdir(own_dir, 0o700)
    _mount(libc, stash, own_dir, None, _MS_BIND | _MS_REC)
    _check(libc.umount2(stash.encode(), _MNT_DETACH), f"umount {stash}")
    os.rmdir(stash)


def drop_capabilities() -> None:
    """No capabilities, now or after any exec: the bounding set is emptied first."""
    libc = _libc()
    cap = 0
    while libc.prctl(_PR_CAPBSET_DROP, cap, 0, 0, 0) == 0:
        cap += 1  # until the first number the kernel does not know (EINVAL)
    if cap == 0:
        _check(-1, "prctl(PR_CAPBSET_DROP)")

    class Header(ctypes.Structure):
        _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]

    class Data(ctypes.Structure):
        _fields_ = [(n, ctypes.c_uint32) for n in ("effective", "permitted", "inheritable")]

    _check(libc.capset(ctypes.byref(Header(_CAP_VERSION_3, 0)), (Data * 2)()), "capset")
