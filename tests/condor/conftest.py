"""Session fixture for a real HTCondor pool on 127.0.0.1 (built by ``ci/condor/pool.sh``).

The pool lives in a Debian trixie chroot; the host's Python and this project tree are
bind-mounted into it at the same paths, so anything run through :class:`CondorPool` sees the
same interpreter, the same ``taucoffea`` and the same file paths as the test process.  Work
runs as an ordinary submit user inside the chroot, because HTCondor refuses root submitters.
When the machine cannot host the pool, every test that uses it is *skipped with the reason*,
never passed silently.  See docs/condor.md.
"""

from __future__ import annotations

import functools
import itertools
import os
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pytest

_REPO = Path(__file__).resolve().parents[2]
POOL_SH = _REPO / "ci" / "condor" / "pool.sh"
_EXIT_CANNOT_HOST = 3  # pool.sh: "this machine cannot host the pool" -> skip, not fail
_SETUP_TIMEOUT_S = 900  # cold setup downloads ~150 MB of Debian packages
_START_TIMEOUT_S = 180


def _pool_env() -> dict[str, str]:
    """Environment for pool.sh: bind *this* interpreter's prefix, whatever launched pytest."""
    env = dict(os.environ)
    env["TAUCOFFEA_CONDOR_PYTHON"] = sys.executable
    env["TAUCOFFEA_CONDOR_PROJECT"] = str(_REPO)
    return env


def _pool_root(env: Mapping[str, str]) -> Path:
    return Path(env.get("TAUCOFFEA_CONDOR_ROOT", "/var/tmp/taucoffea-condor"))


def _tail(text: str, n: int = 25) -> str:
    return "\n".join(text.strip().splitlines()[-n:])


def _pool_sh(command: str, env: Mapping[str, str], timeout: float) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", str(POOL_SH), command],
        env=dict(env),
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
        check=False,
    )


def _skip_reason() -> str | None:
    """Why this machine obviously cannot build the pool, before trying (None: try it)."""
    if os.environ.get("TAUCOFFEA_SKIP_CONDOR", "") not in ("", "0"):
        return "TAUCOFFEA_SKIP_CONDOR is set"
    if not sys.platform.startswith("linux"):
        return f"the chroot pool needs Linux, this is {sys.platform}"
    if os.geteuid() != 0:
        return "building the chroot pool needs root (chroot, mounts, useradd); run as root"
    tools = ("chroot", "mount", "umount", "flock", "setsid")
    missing = [tool for tool in tools if shutil.which(tool) is None]
    if missing:
        return f"tools missing for the chroot pool: {', '.join(missing)}"
    if shutil.which("debootstrap") is None and shutil.which("apt-get") is None:
        return "neither debootstrap nor apt-get (to install it) is available"
    return None


@dataclass
class CondorPool:
    """Handle on a running pool: run commands as the submit user inside the chroot.

    ``scratch`` is writable by the submit user and has the same path inside and outside the
    chroot, so a test can write inputs there, run a stage in the pool, and read outputs back.
    """

    root: Path
    scratch: Path
    python: str
    env: dict[str, str] = field(repr=False)
    submit_uid: int = 2000
    _counter: Iterator[int] = field(default_factory=itertools.count, repr=False)

    def scratch_dir(self, name: str = "run") -> Path:
        """A fresh directory under ``scratch`` owned by the submit user."""
        path = self.scratch / f"{name}-{uuid.uuid4().hex[:8]}"
        path.mkdir(parents=True)
        os.chown(path, self.submit_uid, self.submit_uid)
        return path

    def executor_yaml(self, path: Path, chunksize: int) -> Path:
        """Write an executor config that runs on this pool: one one-core slot (one block)."""
        path.write_text(
            "executor: condor\n"
            f"chunksize: {chunksize}\n"
            "progress: false\n"
            "condor:\n"
            f'  worker_init: "{self.worker_init}"\n'
            "  address: 127.0.0.1\n"
            "  cores_per_slot: 1\n"
            "  mem_per_slot: 1\n"
            "  init_blocks: 1\n"
            "  max_blocks: 1\n"
        )
        path.chmod(0o644)
        return path

    def run(
        self,
        argv: Sequence[str],
        *,
        cwd: Path | None = None,
        env: Mapping[str, str] | None = None,
        timeout: float = 600,
    ) -> subprocess.CompletedProcess[str]:
        """Run ``argv`` as the submit user in the chroot (cwd defaults to ``scratch``).

        ``env`` adds variables on top of the pool's clean environment (PATH with this
        interpreter first, HOME, CONDOR_CONFIG, PYTHONPATH, TAUCOFFEA_CONDOR_WORKER_INIT).
        """
        call_env = dict(self.env)
        call_env["TAUCOFFEA_CONDOR_CWD"] = str(cwd or self.scratch)
        extra = dict(env or {})
        call_env.update(extra)
        call_env["TAUCOFFEA_CONDOR_PASSENV"] = " ".join(extra)
        return subprocess.run(
            ["bash", str(POOL_SH), "run-as-user", *argv],
            env=call_env,
            capture_output=True,
            text=True,
            timeout=timeout,
            stdin=subprocess.DEVNULL,
            check=False,
        )

    def run_python(
        self,
        code: str,
        *args: str,
        cwd: Path | None = None,
        env: Mapping[str, str] | None = None,
        timeout: float = 600,
    ) -> subprocess.CompletedProcess[str]:
        """Run Python source ``code`` (written to a file in ``cwd``) as the submit user."""
        workdir = cwd or self.scratch_dir("py")
        script = workdir / f"_snippet_{next(self._counter)}.py"
        script.write_text(code)
        script.chmod(0o644)
        return self.run([self.python, str(script), *args], cwd=workdir, env=env, timeout=timeout)

    @functools.cached_property
    def worker_init(self) -> str:
        """``worker_init`` for a CondorProvider in this pool (same interpreter, same PYTHONPATH).

        Drivers running inside the pool also find it in ``$TAUCOFFEA_CONDOR_WORKER_INIT``; this
        copy is for executor YAML files written on the host side.
        """
        proc = self.run(["printenv", "TAUCOFFEA_CONDOR_WORKER_INIT"], timeout=60)
        if proc.returncode != 0:
            raise RuntimeError(f"cannot read TAUCOFFEA_CONDOR_WORKER_INIT in the pool: {proc.stderr}")
        return proc.stdout.strip()

    def chroot_processes(self) -> list[tuple[int, str]]:
        """(pid, command line) of every process running inside the pool's chroot."""
        chroot = os.path.realpath(self.root / "chroot")
        found = []
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                if os.readlink(entry / "root") != chroot:
                    continue
                cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            except OSError:
                continue  # exited while we looked
            found.append((int(entry.name), cmdline.strip()))
        return found

    def wait_no_process(self, needle: str, timeout: float = 30) -> list[tuple[int, str]]:
        """Wait until no chroot process has ``needle`` in its command line; return survivors."""
        deadline = time.monotonic() + timeout
        while True:
            left = [p for p in self.chroot_processes() if needle in p[1]]
            if not left or time.monotonic() > deadline:
                return left
            time.sleep(0.5)


@pytest.fixture(scope="session")
def condor_pool() -> Iterator[CondorPool]:
    """Set up (cached) and start the pool once per session; always stop it afterwards."""
    reason = _skip_reason()
    if reason:
        pytest.skip(f"HTCondor pool unavailable: {reason}")
    env = _pool_env()
    root = _pool_root(env)
    for command, timeout in (("setup", _SETUP_TIMEOUT_S), ("start", _START_TIMEOUT_S)):
        try:
            proc = _pool_sh(command, env, timeout)
        except subprocess.TimeoutExpired:
            _pool_sh("stop", env, 120)
            pytest.fail(f"pool.sh {command} did not finish within {timeout} s (logs: {root}/log)")
        if proc.returncode == _EXIT_CANNOT_HOST:
            pytest.skip(f"HTCondor pool unavailable: pool.sh {command}: {_tail(proc.stderr, 5)}")
        if proc.returncode != 0:
            _pool_sh("stop", env, 120)
            pytest.fail(f"pool.sh {command} failed (rc={proc.returncode}):\n{_tail(proc.stderr)}")
    scratch = root / "scratch"
    # Directories of earlier (possibly killed) sessions: the pool and its scratch are ours alone.
    for stale in scratch.iterdir():
        shutil.rmtree(stale, ignore_errors=True)
    pool = CondorPool(root=root, scratch=scratch, python=sys.executable, env=env,
                      submit_uid=int(env.get("TAUCOFFEA_CONDOR_UID", "2000")))
    try:
        yield pool
    finally:
        stop = _pool_sh("stop", env, 180)
        if os.environ.get("TAUCOFFEA_CONDOR_KEEP", "") in ("", "0"):
            for path in scratch.iterdir():
                shutil.rmtree(path, ignore_errors=True)
        if stop.returncode != 0:
            pytest.fail(f"pool.sh stop failed (rc={stop.returncode}):\n{_tail(stop.stderr)}")
