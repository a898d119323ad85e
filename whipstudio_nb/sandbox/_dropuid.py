"""Run as root on the host, just before bubblewrap: stage what the sandbox user cannot reach,
then become that unprivileged user and exec bwrap (a plain script, run with ``python -I -S``).

argv: ``SPEC_JSON -- BWRAP_ARGV...``; SPEC is ``{"uid": N, "gid": N, "binds": [[src, stage]]}``.
``binds`` are directories the unprivileged user cannot traverse to (a pyenv interpreter under
root's 0700 home, say): they are bind-mounted onto world-traversable stage directories in a
mount namespace of this process only, so the host's mount table never changes.
"""

import ctypes
import json
import os
import sys

CLONE_NEWNS = 0x00020000
MS_BIND, MS_REC, MS_PRIVATE = 0x1000, 0x4000, 0x40000


def main() -> int:
    spec = json.loads(sys.argv[1])
    argv = sys.argv[sys.argv.index("--") + 1 :]
    libc = ctypes.CDLL(None, use_errno=True)

    def check(ret: int, what: str) -> None:
        if ret != 0:
            err = ctypes.get_errno()
            raise OSError(err, f"{what}: {os.strerror(err)}")

    if spec["binds"]:
        check(libc.unshare(CLONE_NEWNS), "unshare")
        check(libc.mount(None, b"/", None, MS_REC | MS_PRIVATE, None), "make / private")
        for src, stage in spec["binds"]:
            check(libc.mount(src.encode(), stage.encode(), None, MS_BIND | MS_REC, None), src)
    os.setgroups([])
    os.setresgid(spec["gid"], spec["gid"], spec["gid"])
    os.setresuid(spec["uid"], spec["uid"], spec["uid"])
    os.execv(argv[0], argv)
    return 1


if __name__ == "__main__":
    sys.exit(main())
