"""Real servers on loopback for the multi-process tests: PostgreSQL, Redis, the ASGI web
process and qcluster workers, each started as a user would start them."""
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
PGBIN = Path(os.environ.get("PG_TEST_BIN", "/usr/lib/postgresql/15/bin"))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _as_postgres(cmd):
    if os.geteuid() == 0:
        return ["runuser", "-u", "postgres", "--", *cmd]
    return cmd


class Postgres:
    def __init__(self, durable: bool = False):
        """durable: fsync on, as in production (each commit waits for its WAL flush); tests and
        most benchmarks run without it."""
        self.durable = durable
        self.dir = Path(tempfile.mkdtemp(prefix="whatsnap-pg-"))
        if os.geteuid() == 0:
            shutil.chown(self.dir, "postgres")
        self.port = free_port()
        subprocess.run(_as_postgres([str(PGBIN / "initdb"), "-D", str(self.dir / "data"), "-U", "postgres", "-A", "trust",
                                     "--no-sync"]), check=True, capture_output=True)
        self.start()

    @property
    def url(self) -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/postgres"

    def start(self):
        subprocess.run(_as_postgres([str(PGBIN / "pg_ctl"), "-D", str(self.dir / "data"), "-l", str(self.dir / "log"), "-w",
                                     "-o", f"-h 127.0.0.1 -p {self.port} -k {self.dir} {'' if self.durable else '-F'} -c max_connections=200", "start"]),
                       check=True, capture_output=True)

    def stop(self, mode="fast"):
        subprocess.run(_as_postgres([str(PGBIN / "pg_ctl"), "-D", str(self.dir / "data"), "-m", mode, "-w", "stop"]),
                       capture_output=True)

    def destroy(self):
        self.stop("immediate")
        shutil.rmtree(self.dir, ignore_errors=True)


class Redis:
    def __init__(self):
        self.port = free_port()
        self.proc = None
        self.start()

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self):
        self.proc = subprocess.Popen(["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
                                      "--appendonly", "no"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for _ in range(100):
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("redis-server did not start")

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=10)


class Product:
    """Environment + processes of one deployment (several web and worker processes)."""

    def __init__(self, *, database_url: str, redis_url: str = "", **extra):
        self.var = tempfile.mkdtemp(prefix="whatsnap-var-")
        self.env = {k: v for k, v in os.environ.items() if k not in ("DJANGO_SETTINGS_MODULE", "REDIS_URL", "DATABASE_URL")}
        self.env.update({"DATABASE_URL": database_url, "DJANGO_SETTINGS_MODULE": "whatsnap.settings", "SECRET_KEY": "k" * 50,
                         "ENCRYPTION_KEY": "e" * 40, "WHATSNAP_VAR_DIR": self.var, "PUBLIC_BASE_URL": "http://127.0.0.1:8000",
                         "ALLOWED_HOSTS": "127.0.0.1,localhost", "Q_WORKERS": "1", **extra})
        if redis_url:
            self.env["REDIS_URL"] = redis_url
        self.procs: dict[str, subprocess.Popen] = {}

    def manage(self, *args, stdin: str | None = None) -> str:
        result = subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=self.env, input=stdin,
                                capture_output=True, text=True, timeout=120)
        if result.returncode:
            raise RuntimeError(f"manage.py {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")
        return result.stdout

    def shell(self, code: str) -> str:
        return self.manage("shell", "-c", code)

    def start_web(self, name: str) -> str:
        port = free_port()
        log = open(Path(self.var) / f"{name}.log", "w")
        self.procs[name] = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "whatsnap.asgi:application", "--host", "127.0.0.1", "--port", str(port),
             "--lifespan", "off", "--log-level", "warning"],
            cwd=ROOT, env=self.env, start_new_session=True, stdout=log, stderr=subprocess.STDOUT)
        base = f"http://127.0.0.1:{port}"
        for _ in range(150):
            try:
                httpx.get(base + "/livez", timeout=1)
                return base
            except httpx.HTTPError:
                time.sleep(0.1)
        raise RuntimeError(f"web {name} did not start")

    def start_worker(self, name: str) -> None:
        log = open(Path(self.var) / f"{name}.log", "w")
        self.procs[name] = subprocess.Popen([sys.executable, "manage.py", "qcluster"], cwd=ROOT, env=self.env,
                                            start_new_session=True, stdout=log, stderr=subprocess.STDOUT)

    def kill(self, name: str, sig=signal.SIGKILL) -> None:
        proc = self.procs.pop(name)
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            pass
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)

    def logs(self) -> str:
        return "\n".join(f"--- {p.name}\n{p.read_text()[-3000:]}" for p in Path(self.var).glob("*.log"))

    def stop_all(self, keep_logs: bool = False) -> None:
        for name in list(self.procs):
            self.kill(name, signal.SIGTERM)
        if not keep_logs:
            shutil.rmtree(self.var, ignore_errors=True)


def login_cookie(base: str, username: str, password: str) -> str:
    with httpx.Client(base_url=base, follow_redirects=False) as client:
        page = client.get("/login/")
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text).group(1)
        response = client.post("/login/", data={"username": username, "password": password, "csrfmiddlewaretoken": token},
                               headers={"Referer": base + "/login/"})
        assert response.status_code == 302, response.text[:500]
        return f"sessionid={client.cookies['sessionid']}"
