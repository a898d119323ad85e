"""The seccomp filter every strict kernel runs under (Linux, through libseccomp).

The list is what a debugging kernel never needs and what container escapes are made of:
mounting, namespaces, tracing other processes, kernel keyrings, BPF, perf, io_uring, module
loading, kexec and file handles. Denied calls fail with EPERM; ``clone3`` fails with ENOSYS so
that the C library falls back to ``clone``, whose namespace flags are refused the same way.
"""

from __future__ import annotations

import errno
from typing import Any

__all__ = ["DENIED_SYSCALLS", "build_kernel_filter", "seccomp_problem"]

DENIED_SYSCALLS: tuple[str, ...] = (
    # filesystems and namespaces: a kernel's view of the host is fixed before its code runs
    "mount",
    "umount2",
    "unshare",
    "setns",
    "pivot_root",
    "chroot",
    "fsopen",
    "fsconfig",
    "fsmount",
    "fspick",
    "move_mount",
    "open_tree",
    "mount_setattr",
    # other processes' memory
    "ptrace",
    "process_vm_readv",
    "process_vm_writev",
    "kcmp",
    "pidfd_getfd",
    # kernel attack surface with a history of escapes
    "bpf",
    "perf_event_open",
    "userfaultfd",
    "keyctl",
    "add_key",
    "request_key",
    "io_uring_setup",
    "io_uring_enter",
    "io_uring_register",
    # the host kernel itself
    "kexec_load",
    "kexec_file_load",
    "init_module",
    "finit_module",
    "delete_module",
    "open_by_handle_at",
    "name_to_handle_at",
    "syslog",
    "acct",
    "swapon",
    "swapoff",
    "reboot",
)

_CLONE_NS_FLAGS = (
    0x00020000,  # CLONE_NEWNS
    0x02000000,  # CLONE_NEWCGROUP
    0x04000000,  # CLONE_NEWUTS
    0x08000000,  # CLONE_NEWIPC
    0x10000000,  # CLONE_NEWUSER
    0x20000000,  # CLONE_NEWPID
    0x40000000,  # CLONE_NEWNET
)


def seccomp_problem() -> str | None:
    """Why no filter can be built here, or None."""
    try:
        build_kernel_filter()
    except Exception as exc:  # ImportError (no pyseccomp), OSError (no libseccomp)
        return f"seccomp is unavailable ({type(exc).__name__}: {exc}); install libseccomp2"
    return None


def build_kernel_filter() -> Any:
    """A ``pyseccomp.SyscallFilter`` (allow by default, deny the list). Build it once, before
    forking, and ``.load()`` it in each kernel: loading only hands the program to the kernel."""
    import pyseccomp as sc

    f = sc.SyscallFilter(defaction=sc.ALLOW)
    for name in DENIED_SYSCALLS:
        try:
            f.add_rule(sc.ERRNO(errno.EPERM), name)
        except Exception:  # a call this architecture does not have
            continue
    f.add_rule(sc.ERRNO(errno.ENOSYS), "clone3")  # its flags live in memory: no filtering
    for flag in _CLONE_NS_FLAGS:
        f.add_rule(sc.ERRNO(errno.EPERM), "clone", sc.Arg(0, sc.MASKED_EQ, flag, flag))
    # every thread, the ones ipykernel and libzmq start included
    f.set_attr(sc.Attr.CTL_TSYNC, 1)
    return f
