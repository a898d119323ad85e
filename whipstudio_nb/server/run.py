"""``whip serve``: run the app under uvicorn; SIGINT/SIGTERM close every sandbox kernel."""

from __future__ import annotations

import sys
from typing import TextIO

from .config import TOKEN_ENV_VAR, ServerConfig, is_loopback

__all__ = ["exposure_warning", "serve"]


def exposure_warning(config: ServerConfig) -> str | None:
    """The loud warning for a server reachable from other machines with no token."""
    if config.token or is_loopback(config.host):
        return None
    bar = "!" * 78
    return (
        f"{bar}\n"
        f"!! WARNING: whip serve is binding {config.host}:{config.port} WITHOUT AUTHENTICATION.\n"
        "!! Anyone who can reach this address can run code in your sandbox kernels and use\n"
        "!! your LLM credentials through /baseline. Pass --token T (or set "
        f"{TOKEN_ENV_VAR}),\n"
        "!! or bind 127.0.0.1.\n"
        f"{bar}"
    )


def serve(config: ServerConfig, *, log_level: str = "info", stream: TextIO | None = None) -> None:
    import uvicorn

    from .app import create_app

    out = stream or sys.stderr
    if warning := exposure_warning(config):
        print(warning, file=out, flush=True)
    auth = "bearer token required" if config.token else "no auth"
    print(
        f"whip serve: http://{config.host}:{config.port} ({auth}; max {config.max_sessions} "
        f"sessions, idle expiry {config.idle_timeout_s:g} s)",
        file=out,
        flush=True,
    )
    from .protocol import header_timeout_protocol

    app = create_app(config)
    # uvicorn turns SIGINT/SIGTERM into a graceful shutdown, which runs the app's lifespan
    # exit: every session is closed, then the shared sandbox and all its kernels.
    uvicorn.run(
        app,
        host=config.host,
        port=config.port,
        log_level=log_level,
        http=header_timeout_protocol(config.header_timeout_s),
        h11_max_incomplete_event_size=16 * 1024,  # request line + headers
        ws_max_size=config.max_body_bytes,
        timeout_keep_alive=config.keep_alive_timeout_s,
        limit_concurrency=config.limit_concurrency,
        # X-Forwarded-For decides who a client is (rate limits, default sessions): believe it
        # only from the proxies named, never by default (uvicorn trusts 127.0.0.1 otherwise).
        proxy_headers=config.forwarded_allow_ips is not None,
        forwarded_allow_ips=config.forwarded_allow_ips or "",
        server_header=False,
        timeout_graceful_shutdown=10,
    )
