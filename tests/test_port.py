"""A port another program holds is refused: "Address already in use", exit status 1.

Stages 1 to 4 get that from bind() itself. Stages 5 and 6 bind each loop's socket with
SO_REUSEPORT, which joins any group of SO_REUSEPORT listeners of the same user on the
port: another stage-5 or stage-6 server, or an nginx with `listen ... reuseport`. Without
a check, the new server starts without complaint and the kernel splits the clients
between the two programs (shared/listener.c, port_is_free()).
"""

import shutil
import socket
import subprocess
import time

import pytest

from client import scaled

NGINX_CONF = """\
daemon off;
master_process off;
worker_processes 1;
pid {tmp}/nginx.pid;
error_log {tmp}/nginx-error.log;
events {{ worker_connections 64; }}
http {{
    access_log off;
    client_body_temp_path {tmp}/body;
    proxy_temp_path {tmp}/proxy;
    fastcgi_temp_path {tmp}/fastcgi;
    uwsgi_temp_path {tmp}/uwsgi;
    scgi_temp_path {tmp}/scgi;
    server {{
        listen 127.0.0.1:{port} reuseport;
        location / {{ return 200 "nginx\\n"; }}
    }}
}}
"""


def free_port():
    """A port the kernel considers free now (for nginx, which cannot take --port 0)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def assert_refused(run_cli, port, holder):
    result = run_cli("--port", str(port))
    assert result.returncode == 1 and "Address already in use" in result.stderr, (
        f"started on port {port}, which {holder} listens on: exit status {result.returncode}, "
        f"stdout {result.stdout!r}, stderr:\n{result.stderr}"
    )


@pytest.mark.needs("cli")
def test_port_of_another_server_is_refused(server, run_cli):
    """A second server of the same stage on the first one's port."""
    assert_refused(run_cli, server.port, "a server of the same stage")


@pytest.mark.needs("cli")
def test_port_of_nginx_with_reuseport_is_refused(run_cli, tmp_path):
    """nginx listening with SO_REUSEPORT (`listen ... reuseport`) on the port."""
    if not shutil.which("nginx", path="/usr/sbin:/usr/bin:/sbin:/bin"):
        pytest.fail("nginx is not installed: `make deps` installs nginx-light")
    port = free_port()
    conf = tmp_path / "nginx.conf"
    conf.write_text(NGINX_CONF.format(tmp=tmp_path, port=port))
    nginx = subprocess.Popen(
        ["/usr/sbin/nginx", "-p", str(tmp_path), "-e", str(tmp_path / "nginx-error.log"),
         "-c", str(conf)],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + scaled(10)
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if nginx.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"nginx did not start: {nginx.stderr.read()!r}")
                time.sleep(0.05)
        assert_refused(run_cli, port, "nginx (reuseport)")
    finally:
        nginx.terminate()
        nginx.wait(timeout=10)
