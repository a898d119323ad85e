"""What a strict sandbox sees of the host's filesystem: an explicit allowlist, in one place.

Nothing is visible unless an entry below names it, with the reason. In particular there is no
home directory, no checkout (so no ``.git``), no directory of the caller's script or notebook,
no ``/etc/shadow`` and no task pack, wherever a copy of one lies (an editable install puts one
in site-packages). The list depends only on the interpreter and the package, never on the
caller's working directory or ``sys.path[0]``.
"""

from __future__ import annotations

import os
import site
import sys
import sysconfig
from dataclasses import dataclass
from pathlib import Path

__all__ = ["Mount", "mount_plan", "python_roots", "task_pack_copies"]

# The few files of /etc that the interpreter and the C library read.
_ETC_FILES = ("ld.so.cache", "ld.so.conf", "localtime", "nsswitch.conf", "host.conf", "hosts")


@dataclass(frozen=True)
class Mount:
    kind: str  # ro-bind | bind | tmpfs | symlink | dir | dev | proc | file
    dest: str
    source: str = ""
    why: str = ""
    size_mb: int = 0
    read_only: bool = False  # for a tmpfs: empty and unwritable (a mask over something hidden)

    def argv(self) -> list[str]:
        if self.kind in ("ro-bind", "bind"):
            return [f"--{self.kind}", self.source, self.dest]
        if self.kind == "symlink":
            return ["--symlink", self.source, self.dest]
        if self.kind == "tmpfs":
            size = ["--size", str(self.size_mb * 2**20)] if self.size_mb else []
            ro = ["--remount-ro", self.dest] if self.read_only else []
            return [*size, "--tmpfs", self.dest, *ro]
        return [f"--{self.kind}", self.dest]


# whipstudio_nb/ (from this file: importing the package itself would go up the layers)
PACKAGE_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def python_roots() -> list[tuple[str, str]]:
    """Directories the interpreter and this package need, as (path, why), outside /usr."""
    paths = sysconfig.get_paths()
    wanted = [
        (sys.base_prefix, "the interpreter: binary, standard library, libpython"),
        (sys.prefix, "the virtual environment: pyvenv.cfg, installed packages"),
        (os.path.dirname(os.path.realpath(sys.executable)), "the interpreter's real location"),
        (paths["stdlib"], "the standard library"),
        (paths["platstdlib"], "the standard library's C modules"),
        *((p, "site-packages: torch, numpy, ipykernel...") for p in site.getsitepackages()),
        (PACKAGE_DIR, "this package's code"),
    ]
    roots: list[tuple[str, str]] = []
    for path, why in wanted:
        real = os.path.realpath(path)
        if not os.path.isdir(real) or _under(real, "/usr"):
            continue
        if any(_under(real, r) for r, _ in roots):
            continue
        roots = [(r, w) for r, w in roots if not _under(r, real)]  # a parent replaces children
        roots.append((real, why))
    return sorted(roots)


def task_pack_copies(roots: list[str], extra: list[str]) -> list[str]:
    """Every task-pack directory inside a bound root: the search path's and the copies an
    install leaves in site-packages (``whipstudio_nb/tasks``)."""
    found = {os.path.realpath(p) for p in extra if os.path.isdir(p)}
    for root in roots:
        for sp in [root, *site.getsitepackages()]:
            candidate = os.path.join(sp, "whipstudio_nb", "tasks")
            if os.path.isdir(candidate):
                found.add(os.path.realpath(candidate))
    return sorted(p for p in found if any(_under(p, r) for r in roots))


def mount_plan(*, pool_dir: str, hidden: list[str], passwd: str, group: str) -> list[Mount]:
    """The sandbox's filesystem, in mount order (later entries go over earlier ones)."""
    plan = [
        Mount("ro-bind", "/usr", "/usr", "system libraries and tools (no secrets live here)"),
    ]
    for link in ("bin", "sbin", "lib", "lib32", "lib64", "libx32"):
        host = f"/{link}"
        if os.path.islink(host):
            plan.append(Mount("symlink", host, os.readlink(host), "merged /usr layout"))
        elif os.path.isdir(host):
            plan.append(Mount("ro-bind", host, host, "system libraries"))
    for name in _ETC_FILES:
        path = f"/etc/{name}"
        if os.path.exists(path):
            plan.append(Mount("ro-bind", path, path, "read by the C library"))
    plan += [
        Mount("ro-bind", "/etc/passwd", passwd, "a two-line passwd: root and nobody"),
        Mount("ro-bind", "/etc/group", group, "a two-line group file"),
        Mount("dev", "/dev", why="null, zero, random, urandom, tty only"),
        Mount("proc", "/proc", why="this sandbox's processes only; each kernel mounts its own"),
        Mount(
            "tmpfs",
            "/tmp",
            why="empty; each kernel covers it with its own capped tmpfs",
            size_mb=16,
        ),
        Mount("tmpfs", "/run", why="empty", size_mb=1),
    ]
    roots = python_roots()
    for path, why in roots:
        plan.append(Mount("ro-bind", path, path, why))
    for path in task_pack_copies([r for r, _ in roots], hidden):
        plan.append(
            Mount(
                "tmpfs",
                path,
                why="a task pack: solutions and graders stay out",
                size_mb=1,
                read_only=True,
            )
        )
    plan.append(Mount("bind", pool_dir, pool_dir, "IPC sockets; each kernel sees only its own"))
    return plan


def _under(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip(os.sep) + os.sep)


def untraversable(path: str, uid: int, gids: set[int]) -> bool:
    """True if ``uid`` (with ``gids``) cannot reach ``path`` through its parents' permissions."""
    p = Path(path)
    for d in [*reversed(p.parents), p]:
        try:
            st = d.stat()
        except OSError:
            return True
        need = 0o1 if d != p or os.path.isdir(d) else 0o4  # search a directory, read a file
        shift = 6 if st.st_uid == uid else 3 if st.st_gid in gids else 0
        if not st.st_mode & (need << shift):
            return True
    return False
