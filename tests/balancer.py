"""Debian's nginx, running the shipped deploy/nginx.conf, in front of real server processes.

Used by tests/test_balancer.py and bench/bench_balancer.py. The shipped file is used as
it is: only its listen port and its upstream `server` lines (one per process) change. A
top-level nginx.conf of the test's own holds what a system's /etc/nginx/nginx.conf would
(pid and log files, temp folders), and adds an `X-Upstream` header naming the process that
answered, so that a test can see where each request landed.
"""

import contextlib
import re
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = ROOT / "deploy" / "nginx.conf"
UPSTREAM_LINE = re.compile(r"^( +)server 127\.0\.0\.1:\d+ (.*)$", re.MULTILINE)
LISTEN_LINE = re.compile(r"^( +)listen 127\.0\.0\.1:\d+;$", re.MULTILINE)
START_TIMEOUT_S = 10.0

MAIN_CONFIG = """\
daemon off;
worker_processes 1;
pid {folder}/nginx.pid;
error_log {folder}/error.log warn;
events {{ worker_connections 512; }}
http {{
    access_log off;
    client_body_temp_path {folder}/body;
    proxy_temp_path {folder}/proxy;
    fastcgi_temp_path {folder}/fastcgi;
    uwsgi_temp_path {folder}/uwsgi;
    scgi_temp_path {folder}/scgi;
    add_header X-Upstream $upstream_addr always;
    include {folder}/bankbot.conf;
}}
"""


def nginx_binary() -> str | None:
    return shutil.which("nginx") or next(
        (path for path in ("/usr/sbin/nginx",) if Path(path).is_file()), None
    )


def site_config(listen_port: int, server_ports: list[int]) -> str:
    """deploy/nginx.conf with this listen port and one upstream line per server port."""
    shipped = SHIPPED.read_text(encoding="utf-8")
    lines = list(UPSTREAM_LINE.finditer(shipped))  # consecutive, in the upstream block
    assert lines, "deploy/nginx.conf has no upstream server lines"
    indent, options = lines[0].groups()
    upstream = "\n".join(f"{indent}server 127.0.0.1:{port} {options}" for port in server_ports)
    site = shipped[: lines[0].start()] + upstream + shipped[lines[-1].end() :]
    site, listens = LISTEN_LINE.subn(rf"\g<1>listen 127.0.0.1:{listen_port};", site)
    assert listens == 1, "deploy/nginx.conf must listen on exactly one 127.0.0.1 port"
    return site


@contextlib.contextmanager
def running_nginx(folder: Path, listen_port: int, server_ports: list[int]) -> Iterator[str]:
    """nginx in the foreground, on `listen_port`; yields its base URL, stops it after."""
    binary = nginx_binary()
    assert binary is not None, "nginx is not installed (make test-packages)"
    for temp in ("body", "proxy", "fastcgi", "uwsgi", "scgi"):
        (folder / temp).mkdir(parents=True, exist_ok=True)
    (folder / "bankbot.conf").write_text(site_config(listen_port, server_ports))
    main = folder / "nginx.conf"
    main.write_text(MAIN_CONFIG.format(folder=folder))
    command = [binary, "-p", str(folder), "-c", str(main), "-e", str(folder / "error.log")]
    checked = subprocess.run([*command, "-t"], capture_output=True, text=True, check=False)
    assert checked.returncode == 0, checked.stderr
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    base = f"http://127.0.0.1:{listen_port}"
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            assert process.poll() is None, process.stderr.read() if process.stderr else ""
            try:
                httpx.get(f"{base}/health", timeout=5)
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline, "nginx did not answer"
                time.sleep(0.1)
        yield base
    finally:
        process.terminate()
        process.wait(timeout=10)


def upstream(response: httpx.Response) -> str:
    """The process (host:port) that answered; the last one nginx tried."""
    return response.headers["x-upstream"].split(",")[-1].strip()
