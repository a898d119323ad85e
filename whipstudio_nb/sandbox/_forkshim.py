"""The process jupyter_client launches for a fork-server kernel (run as a plain script with
``python -I -S``, so it starts in milliseconds and imports nothing from the package).

It asks the fork server to fork a warm kernel for this connection file, then stands in for that
kernel: it forwards SIGINT/SIGTERM to it (through the server), and exits with the kernel's exit
status when the server reports that the kernel ended. If this process is killed, the server
sees its connection close and kills the kernel's whole process group.
"""

import json
import os
import signal
import socket
import sys


def main() -> int:
    server_path, connection_file = sys.argv[1], sys.argv[2]
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.connect(server_path)
    # The connection file holds the kernel's signing key, and the sandbox cannot see it. This
    # shim (host side) hands its contents to the kernel through a pipe whose read end travels
    # with the request: the fork server passes the pipe on unread, so the key never enters the
    # memory that later kernels are forked from.
    with open(connection_file, "rb") as f:
        connection = f.read()
    r, w = os.pipe()
    os.write(w, connection)  # a few hundred bytes: well within a pipe's buffer
    os.close(w)
    request = {
        "connection_file": connection_file,
        "cwd": os.getcwd(),
        "env": dict(os.environ),
        "kernel_args": sys.argv[3:],
    }
    socket.send_fds(sock, [json.dumps(request).encode() + b"\n"], [r])
    os.close(r)
    reader = sock.makefile("rb")
    reply = json.loads(reader.readline() or b"{}")
    pid = reply.get("pid")
    if not pid:
        sys.stderr.write(f"fork server refused: {reply.get('error', 'no reply')}\n")
        return 1

    def forward(signum: int, frame: object) -> None:
        # Through the server: under strict isolation the kernel's pid is in another namespace.
        try:
            sock.sendall(json.dumps({"signal": signum}).encode() + b"\n")
        except OSError:
            pass

    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, forward)
    line = reader.readline()  # blocks until the kernel ends (or the server goes away)
    status = json.loads(line).get("exit", 1) if line else 1
    return int(status)


if __name__ == "__main__":
    sys.exit(main())
