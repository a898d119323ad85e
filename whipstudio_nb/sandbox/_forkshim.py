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
    request = {
        "connection_file": connection_file,
        "cwd": os.getcwd(),
        "env": dict(os.environ),
        "kernel_args": sys.argv[3:],
    }
    sock.sendall(json.dumps(request).encode() + b"\n")
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
