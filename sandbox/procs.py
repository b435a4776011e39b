"""Start, watch and stop the sandbox's processes by PID, with their logs at hand for errors."""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from pathlib import Path


class SandboxError(RuntimeError):
    """One-line reason, then the tail of the log of the component at fault."""


def log_tail(log: Path, lines: int = 20) -> str:
    try:
        text = log.read_text(errors="replace").splitlines()
    except FileNotFoundError:
        return "    (no log written)"
    return "\n".join("    " + ln for ln in text[-lines:]) or "    (log is empty)"


def fail(reason: str, log: Path | None = None) -> SandboxError:
    return SandboxError(reason + (f"\n  last lines of {log}:\n{log_tail(log)}" if log else ""))


def ensure_port_free(port: int, owner: str) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError as exc:
            raise fail(f"port {port} for {owner} is already in use ({exc.strerror}); stop what holds it "
                       "or set CANARY_ISTIO_SANDBOX_PORT_BASE to another range") from None


def start(name: str, argv: list[str], log: Path) -> int:
    """Start a detached process (it outlives `sandbox up`) writing to `log`; return its PID."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "ab") as out:
        proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                start_new_session=True, close_fds=True)
    return proc.pid


def alive(pid: int, binary: str | None = None) -> bool:
    """True when `pid` runs and (if given) is still our `binary`, so a reused PID is never ours."""
    try:
        os.kill(pid, 0)
    except (ProcessLookupError, PermissionError):
        return False
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        if stat.rsplit(")", 1)[1].split()[0] == "Z":  # exited, not yet reaped by its parent
            return False
        if binary:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[0].decode()
            return cmdline == binary
    except (FileNotFoundError, IndexError):
        return False
    return True


def wait_until(what: str, check, timeout: float, pid: int, name: str, log: Path,
               interval: float = 0.2):
    """Poll `check()` until truthy. Fails fast, with the log tail, when the process dies."""
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        if not alive(pid):
            raise fail(f"{name} exited while waiting for {what}", log)
        try:
            result = check()
            if result:
                return result
        except Exception as exc:  # noqa: BLE001 - any error just means "not yet"; kept for the message
            last_error = exc
        time.sleep(interval)
    detail = f" (last error: {last_error})" if last_error else ""
    raise fail(f"timed out after {timeout:.0f}s waiting for {what}{detail}", log)


def stop(pid: int, binary: str | None, timeout: float = 10, sig: int = signal.SIGTERM) -> None:
    """Stop `pid` with `sig` (SIGKILL for a crash, no graceful shutdown), SIGKILL after `timeout`."""
    if not alive(pid, binary):
        return
    os.killpg(pid, sig) if _is_group_leader(pid) else os.kill(pid, sig)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not alive(pid):
            return
        time.sleep(0.1)
    os.kill(pid, signal.SIGKILL)


def _is_group_leader(pid: int) -> bool:
    try:
        return os.getpgid(pid) == pid
    except ProcessLookupError:
        return False
