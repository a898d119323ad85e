"""What ``whip doctor`` says about the sandbox: the view a kernel really has, read from inside
one (mounts, identity, capabilities, seccomp) and the limits and mount list behind it."""

from __future__ import annotations

import json
import os
from typing import Any

from ..config import SandboxConfig
from .isolation import Limits, bwrap_problem, sandbox_identity

__all__ = ["deployment_hint", "sandbox_view"]

_PROBE = r"""
import json, os
status = dict(l.split(":", 1) for l in open("/proc/self/status") if ":" in l)
mounts = []
for line in open("/proc/self/mountinfo"):
    left, right = line.split(" - ", 1)
    f = left.split()
    mounts.append({"at": f[4], "options": f[5], "type": right.split()[0]})
print(json.dumps({
    "uid": os.getuid(), "uid_map": open("/proc/self/uid_map").read().split(),
    "caps": status["CapEff"].strip(), "seccomp": status.get("Seccomp", "?").strip(),
    "no_new_privs": status.get("NoNewPrivs", "?").strip(), "pid": os.getpid(),
    "mounts": mounts,
}))
"""


def sandbox_view(kernel: Any, isolation: str, config: SandboxConfig | None = None) -> list[str]:
    """Lines describing the sandbox as seen from inside ``kernel`` (``config``: the sandbox's,
    default the ``WHIP_*`` variables now)."""
    config = config if config is not None else SandboxConfig.from_env()
    res = kernel.execute(_PROBE, timeout=30)
    try:
        view = json.loads(res.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        return [f"  could not read the sandbox view: {res.stderr[-300:] or res.error}"]
    ident = sandbox_identity(config.sandbox_user) if isolation == "strict" else None
    host_user = f"uid {os.geteuid()} (the host user)"
    if ident is not None:
        host_user = f"uid {ident[0]} ({config.sandbox_user})"
    lines = [
        f"  runs as       {host_user} on the host; uid {view['uid']} inside",
        f"  capabilities  {view['caps']} (0 = none)",
        f"  seccomp       {'filter active' if view['seccomp'] == '2' else 'none'} "
        f"(no_new_privs={view['no_new_privs']})",
        f"  own PID view  {'yes' if view['pid'] <= 2 else 'no'} (kernel is pid {view['pid']})",
    ]
    limits = Limits.from_config(config)
    lines.append(
        f"  limits        memory {limits.address_space_mb} MiB, cpu {limits.cpu_time_s} s, "
        f"processes {limits.processes}, scratch tmpfs {limits.scratch_mb} MiB "
        f"(/tmp + /dev/shm + work dir), results {limits.max_results} x "
        f"{limits.max_result_bytes // 2**20} MiB"
    )
    lines.append("  mounts (inside the kernel; the top one at each place):")
    top = {m["at"]: m for m in view["mounts"]}  # later mounts cover earlier ones
    for m in top.values():
        ro = "ro" if m["options"].split(",")[0] == "ro" else "rw"
        lines.append(f"    {m['at']:<58} {m['type']:<8} {ro}")
    return lines


def deployment_hint() -> str | None:
    """What to change where strict isolation is impossible, or None."""
    problem = bwrap_problem()
    if problem is None:
        return None
    if "not installed" in problem or "libseccomp" in problem:
        return f"{problem}. Debian/Ubuntu: apt-get install bubblewrap libseccomp2"
    return (
        f"{problem}. In Docker, run with --security-opt seccomp=unconfined (the default profile "
        "blocks user namespaces) or a profile that allows unshare/clone; in Kubernetes set the "
        "pod's seccompProfile to Unconfined or a custom one; on Ubuntu 23.10+ set "
        "kernel.apparmor_restrict_unprivileged_userns=0; elsewhere check "
        "user.max_user_namespaces > 0."
    )
