"""The grading harness's in-kernel half.

The kernel process that talks to the host (P) never runs submitted code. Phase "run" forks a
child (A, its own process group) that runs the submission under a TrainingRecorder and a
TamperGuard. The moment the submission returns, A's main thread forks again (B) and A exits:
B holds the trained model, and it is the only thread in its process, so nothing the submission
started (threads, timers) exists there. P then kills A's process group and every other process
left behind, and waits for B's record. While A runs, P samples the memory of A and of every
process the submission started, on its own clock (``memory_watch.py``). Phase "evaluate" hands
B the held-out *inputs* (labels stay on the host); B calls the task's interface as the script
left it, then again with the parameters training changed reset to their starting values (the
outputs must come from what was trained), and P returns everything with the host's nonce, which
no submitted code ever saw.
"""

from __future__ import annotations

import os
import signal
import time
from typing import Any

from . import sandboxed, wire
from .ledger import Ledger, leaked_rows, rows_of
from .memory_watch import SAMPLE_EVERY_S, MemoryWatch, proc_stats
from .sandboxed import A_FORKED_B
from .wire import decode_array, encode_array

__all__ = ["decode_array", "encode_array", "in_kernel"]

_STATE: dict[str, Any] = {}
SETTLE_S = 0.15  # P sweeps until no leftover process has shown up for this long
FIND_B_S = 3.0  # P waits this long at most for B to stop what A's threads forked last
CHECKS_MIN_S = 2.0  # time left for the record and the task's checks, even at the budget's end


def in_kernel(args: dict[str, Any]) -> dict[str, Any]:
    if args["phase"] == "run":
        return _run(args)
    return _evaluate(args)


# ---------------------------------------------------------------- P: the orchestrator


def _run(args: dict[str, Any]) -> dict[str, Any]:
    from whipstudio_nb.sandbox import kernel_lib as kl

    _kill_b()
    _set_subreaper()
    kl.flush_streams()  # or A would print P's buffered output again
    rec_r, rec_w = os.pipe()
    cmd_r, cmd_w = os.pipe()
    started = time.monotonic()
    # Made before the fork: what already runs below P is not the submission's.
    watch = MemoryWatch() if args.get("record_memory") else None
    a_pid = os.fork()
    if a_pid == 0:  # A
        try:
            os.close(rec_r)
            os.close(cmd_w)
            os.setpgid(0, 0)
            sandboxed.run_then_fork(args, rec_w, cmd_r)
        finally:
            os._exit(70)
    os.close(rec_w)
    os.close(cmd_r)
    budget = float(args.get("budget_s", 20.0))
    a_exit: list[int | None] = []

    def a_ended() -> bool:
        if not a_exit:
            pid, status = os.waitpid(a_pid, os.WNOHANG)
            if pid:
                a_exit.append(os.waitstatus_to_exitcode(status))
        return bool(a_exit)

    ledger = Ledger()
    tick = None
    if watch is not None:
        watch.start(a_pid)
        tick = watch.tick
    shown, shown_at = 0, 0.0
    # Events until A has ended (its own are all in the pipe by then). Nothing a process says
    # about itself counts: any process the script started can write here.
    while (
        msg := wire.recv(rec_r, started + budget, a_ended, tick=tick, poll_s=SAMPLE_EVERY_S)
    ) is not None:
        event = msg.get("ev")
        if not isinstance(event, dict):
            continue
        if "loss" in event and watch is not None:
            watch.loss_event()  # memory as P reads it, not a number A's code could make up
        ledger.add(event)
        now = time.monotonic()
        if len(ledger.losses) > shown and now - shown_at >= kl.PROGRESS_INTERVAL_S:
            kl.emit_progress({"losses": ledger.losses[shown:], "offset": shown})  # live views
            shown, shown_at = len(ledger.losses), now
    # B is the process A's main thread forked last, once the script had returned, right before
    # A exited: the newest of P's children now (P is their subreaper). Anything the script
    # forked earlier is older; a stand-in that calls itself B is swept with the rest.
    b_pid = _newest_child() if a_exit and a_exit[0] == A_FORKED_B else None
    a_status = _end_group(a_pid) if not a_exit else a_exit[0]
    swept = _sweep(keep=b_pid)  # before B runs any submitted code (task checks, evaluation)
    record = None
    if b_pid is not None:
        try:
            # Every other process is dead now, but what they wrote may still be in the pipe
            # (a leftover's events, half a frame, a made-up record). B writes nothing until
            # "go", so all that comes after this is B's.
            wire.drain(rec_r)
            wire.send(cmd_w, {"go": True})
            deadline = max(started + budget, time.monotonic() + CHECKS_MIN_S)
            reply = wire.recv(rec_r, deadline)
            record = reply.get("record") if reply else None
        except OSError:
            record = None
    elapsed = time.monotonic() - started
    if not isinstance(record, dict):
        _kill(b_pid)
        os.close(rec_r)
        os.close(cmd_w)
        if elapsed >= budget:
            return {"status": "timeout", "elapsed_s": round(elapsed, 3)}
        return {"status": "died", "exit_status": a_status}
    if len(ledger.losses) > shown:
        kl.emit_progress({"losses": ledger.losses[shown:], "offset": shown})
    if "internal_error" not in record:
        _STATE["state"] = settle(record, ledger, every_param=bool(args.get("mirror")))
        if watch is not None:
            record["rss_mb"] = [round(x, 2) for x in watch.summary(b_pid)]
    _STATE.update(b_pid=b_pid, rec_r=rec_r, cmd_w=cmd_w, record=record)
    return {"status": "ran", "elapsed_s": round(elapsed, 3), "leftovers_killed": swept}


def _evaluate(args: dict[str, Any]) -> dict[str, Any]:
    nonce = args.get("nonce")
    if "record" not in _STATE:
        return {"nonce": nonce, "error": "nothing ran in this kernel"}
    record = _STATE.pop("record")
    out: dict[str, Any] = {"nonce": nonce, "record": record}
    if args.get("send_state"):
        out["state"] = _STATE.get("state")
    if args.get("inputs") is not None:
        try:
            keys = ("inputs", "predict", "model", "load_state", "train_inputs", "check_code")
            wire.send(_STATE["cmd_w"], {k: args.get(k) for k in keys})
            deadline = time.monotonic() + float(args.get("timeout_s", 5.0))
            reply = wire.recv(_STATE["rec_r"], deadline)
        except OSError:
            reply = None
        if reply is None:
            out["eval_error"] = "evaluating the model on held-out inputs did not finish in time"
        else:
            kept = (
                "outputs",
                "outputs_init",
                "train_outputs",
                "train_outputs_init",
                "reference_trained",
                "checks",
                "error",
            )
            out.update({k: reply[k] for k in kept if k in reply})
    _kill_b()
    return out


def settle(
    record: dict[str, Any], ledger: Ledger, every_param: bool = False
) -> dict[str, Any] | None:
    """Replace what B reported of the run's history with the ledger's, check the starting
    values B used against the digests P was sent, and keep only the trained parameters in the
    state the reference model receives (``every_param``: all of them, for a run that recorded
    no history, ``MirrorRecorder``). Returns that state."""
    record["losses"] = ledger.losses
    record["optimizer_steps"] = ledger.steps
    final_val = record.pop("val_rows", None)
    if isinstance(final_val, dict):
        rows, exact, near = leaked_rows([*ledger.vals, rows_of(final_val)], ledger.rows)
        record["leakage"] = {
            "val_rows": rows,
            "val_rows_in_training": exact,
            "val_rows_nearly_in_training": near,
        }
    for key, d in (record.pop("initial_used", None) or {}).items():
        first = ledger.first_digest(str(key))
        if first is not None and first != d:
            record["tampered"] = list(record.get("tampered") or []) + [
                "the recorder's starting values of the parameters"
            ]
            break
    untrained, carried = {}, {}
    for name, pair in (record.pop("final", None) or {}).items():
        how, why = ledger.carry(str(pair[0]), str(pair[1]))
        carried[name] = how
        if how == "none" and why != "no optimizer step changed it":
            untrained[name] = why
    changes = record.get("param_changes") or {}
    record["param_changes"] = {
        n: (v if carried.get(n) != "none" else 0.0) for n, v in changes.items()
    }
    record["untrained_params"] = untrained
    if ledger.unearned_why:
        record["unearned_gradients"] = ledger.unearned_why
    state = record.pop("state", None)
    if not isinstance(state, dict):
        return None
    if every_param:
        carried = {name: "mirrored" for name in state.get("params") or {}}
    return _carried_state(state, carried)


def _carried_state(state: dict[str, Any], carried: dict[str, str]) -> dict[str, Any]:
    """What the reference model loads: the final values of the trained (and transferred)
    parameters and of the normalization statistics, with the names and shapes of all the
    model's parameters and buffers in order (``layout``: how they map onto the reference
    model's when the names differ)."""
    params = state.get("params") or {}
    buffers = state.get("buffers") or {}
    return {
        "params": {n: params[n] for n, how in carried.items() if how != "none" and n in params},
        "buffers": buffers,
        "modes": state.get("modes") or [],
        "layout": {
            "params": [[n, list(a["shape"])] for n, a in params.items()],
            "buffers": [[n, list(a["shape"])] for n, a in buffers.items()],
        },
    }


def _kill_b() -> None:
    _kill(_STATE.pop("b_pid", None))
    for key in ("rec_r", "cmd_w"):
        fd = _STATE.pop(key, None)
        if fd is not None:
            try:
                os.close(fd)
            except OSError:
                pass
    _STATE.pop("record", None)
    _STATE.pop("state", None)


def _kill(pid: int | None) -> None:
    if not pid:
        return
    for target in (lambda: os.killpg(pid, signal.SIGKILL), lambda: os.kill(pid, signal.SIGKILL)):
        try:
            target()
        except (OSError, ProcessLookupError):
            pass
    try:
        os.waitpid(pid, 0)
    except ChildProcessError:
        pass


def _end_group(a_pid: int) -> int | None:
    """Kill A's whole process group (A itself has usually exited already); A's exit status."""
    try:
        os.killpg(a_pid, signal.SIGKILL)
    except OSError:
        pass
    try:
        _, status = os.waitpid(a_pid, 0)
        return os.waitstatus_to_exitcode(status)
    except ChildProcessError:
        return None


def _children() -> list[int]:
    return [pid for pid, _, _, _ in _children_started()]


def _children_started() -> list[tuple[int, int, int, str]]:
    """(pid, session, start time in clock ticks since boot, state) of every child of this
    process."""
    me = os.getpid()
    return [
        (pid, int(fields[3]), int(fields[19]), fields[0])
        for pid, fields in proc_stats()
        if len(fields) > 19 and int(fields[1]) == me
    ]


def _newest_child() -> int | None:
    """B: the child of this session started last that is not stopped. A process the script
    daemonized (a new session) is never it, even when it was forked after B; every process the
    script started is stopped when it returns, and B stops what A's threads forked after that
    (wait for it while more than one runs); pids wrap around at pid_max, so by start time, a
    pid breaking a tie within one clock tick."""
    mine = os.getsid(0)
    give_up = time.monotonic() + FIND_B_S
    while True:
        running = [
            (t, pid)
            for pid, sid, t, state in _children_started()
            if sid == mine and state not in "TtZX"
        ]
        if len(running) <= 1 or time.monotonic() >= give_up:
            return max(running)[1] if running else None
        time.sleep(0.005)


def _sweep(keep: int | None) -> int:
    """Kill every child of P except B. P is a child subreaper, so whatever the submission
    started (double forks, setsid) ends up here once its parent is gone."""
    killed = 0
    quiet_since = time.monotonic()
    while time.monotonic() - quiet_since < SETTLE_S:
        others = [pid for pid in _children() if pid != keep]
        if others:
            quiet_since = time.monotonic()
        for pid in others:
            _kill(pid)
            killed += 1
        time.sleep(0.02)
    return killed


def _set_subreaper() -> None:
    try:
        import ctypes

        ctypes.CDLL(None).prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER
    except Exception:
        pass
