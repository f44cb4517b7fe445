"""Real Parsl work through ``CondorProvider`` on the chroot pool (no faked condor_submit).

The driver below runs as the submit user inside the chroot; it prints one ``RESULT:`` JSON line
that the host-side test checks.  Evidence that apps ran *in a Condor job*: the worker sees the
job's ``_CONDOR_JOB_AD``/``_CONDOR_SCRATCH_DIR``, the job ad names a cluster the provider
submitted and the submit user as owner, the worker descends from ``condor_starter``, and the
schedd still knows the job afterwards.
"""

from __future__ import annotations

import json
import os
import subprocess

import pytest

pytestmark = [pytest.mark.condor, pytest.mark.slow]

_DRIVER = r'''
import json, os, sys, time

import parsl
from parsl.config import Config
from parsl.executors import HighThroughputExecutor
from parsl.providers import CondorProvider


@parsl.python_app
def where():
    """Identity of the process that ran the app, and of the Condor job around it."""
    import os, socket

    def ancestors(pid):
        names = []
        while pid > 1:
            try:
                with open(f"/proc/{pid}/stat") as fh:
                    stat = fh.read()
            except OSError:
                break
            names.append(stat[stat.index("(") + 1 : stat.rindex(")")])
            pid = int(stat[stat.rindex(")") + 2 :].split()[1])
        return names

    ad_path = os.environ.get("_CONDOR_JOB_AD")
    ad = {}
    if ad_path:
        with open(ad_path) as fh:
            for line in fh:
                key, sep, value = line.partition(" = ")
                if sep:
                    ad[key.strip()] = value.strip().strip('"')
    return {
        "host": socket.gethostname(), "pid": os.getpid(), "uid": os.getuid(), "cwd": os.getcwd(),
        "job_ad": ad_path, "scratch": os.environ.get("_CONDOR_SCRATCH_DIR"),
        "cluster": ad.get("ClusterId"), "owner": ad.get("Owner"), "ancestors": ancestors(os.getpid()),
    }


@parsl.python_app
def sum_of_squares(n):
    return sum(i * i for i in range(n))


def interchanges():
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as fh:
                cmd = fh.read().replace(b"\0", b" ").decode()
            # Parsl renames the process "parsl: HTEX interchange" (setproctitle) once it runs.
            if "interchange" in cmd and os.stat(f"/proc/{entry}").st_uid == os.getuid():
                found.append(cmd)
        except OSError:
            pass
    return found


ns = [int(a) for a in sys.argv[1:]]
provider = CondorProvider(
    init_blocks=1, min_blocks=0, max_blocks=1, cores_per_slot=1, mem_per_slot=1,
    worker_init=os.environ["TAUCOFFEA_CONDOR_WORKER_INIT"],
)
config = Config(
    executors=[HighThroughputExecutor(label="condor", address="127.0.0.1", max_workers_per_node=1,
                                      provider=provider)],
    # strategy_period: the init block is submitted on the first poller tick (default 5 s).
    run_dir=os.path.join(os.getcwd(), "runinfo"), strategy="none", strategy_period=1,
)
t0 = time.monotonic()
try:
    with parsl.load(config):
        first = where().result(timeout=180)
        t_first = time.monotonic() - t0
        futures = [sum_of_squares(n) for n in ns]
        more = [where() for _ in range(3)]
        sums = [f.result(timeout=120) for f in futures]
        places = [first] + [f.result(timeout=120) for f in more]
        jobs = list(provider.resources)
        interchanges_during = interchanges()
finally:
    parsl.clear()
print("RESULT:" + json.dumps({
    "driver_pid": os.getpid(), "driver_uid": os.getuid(), "t_first": t_first, "sums": sums,
    "places": places, "jobs": jobs, "interchanges_during": interchanges_during,
    "interchanges_after": interchanges(),
}))
'''


def _result(proc: subprocess.CompletedProcess[str]) -> dict:
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT:")]
    assert proc.returncode == 0 and lines, (
        f"driver failed (rc={proc.returncode})\n"
        f"stdout:\n{proc.stdout[-3000:]}\nstderr:\n{proc.stderr[-5000:]}"
    )
    return json.loads(lines[-1].removeprefix("RESULT:"))


def test_parsl_apps_run_in_condor_jobs(condor_pool) -> None:
    ns = [0, 1, 7, 100, 12345]
    workdir = condor_pool.scratch_dir("parsl")
    proc = condor_pool.run_python(_DRIVER, *map(str, ns), cwd=workdir, timeout=420)
    out = _result(proc)

    # The computation: closed form n(n-1)(2n-1)/6, not the app's own loop.
    assert out["sums"] == [n * (n - 1) * (2 * n - 1) // 6 for n in ns]

    submitted_clusters = {job.split(".")[0] for job in out["jobs"]}
    assert submitted_clusters, "CondorProvider recorded no submitted job"
    assert out["driver_uid"] == condor_pool.submit_uid
    for place in out["places"]:
        assert place["uid"] == condor_pool.submit_uid
        assert place["pid"] != out["driver_pid"]
        assert place["job_ad"] and place["scratch"], f"no Condor job environment in worker: {place}"
        assert place["cwd"].startswith(place["scratch"])
        assert place["cluster"] in submitted_clusters
        assert place["owner"] == "taucondor"
        assert "condor_starter" in place["ancestors"], place["ancestors"]

    # Clean shutdown: no interchange left, the pilot job removed by dfk.cleanup().
    assert len(out["interchanges_during"]) == 1, "the orphan check must see the live interchange"
    assert out["interchanges_after"] == []
    assert [p for p in condor_pool.chroot_processes() if "interchange" in p[1]] == []
    assert condor_pool.wait_no_process("process_worker_pool", timeout=60) == []

    # The schedd knows the job: still in the queue (leave_in_queue) or already in the history.
    cluster = sorted(submitted_clusters)[0]
    seen = ""
    for query in (["condor_q", "-allusers", cluster], ["condor_history", cluster]):
        seen += condor_pool.run([*query, "-af", "Owner", "JobStatus"], timeout=60).stdout
    assert "taucondor" in seen, f"cluster {cluster} unknown to condor_q/condor_history: {seen!r}"
    print(f"first result after {out['t_first']:.1f} s")


def test_scratch_is_shared_and_interpreter_is_the_same(condor_pool) -> None:
    """What a later stage test relies on: same interpreter, same package, same paths, rw scratch."""
    import taucoffea

    workdir = condor_pool.scratch_dir("share")
    (workdir / "input.txt").write_text("17\n")
    code = (
        "import json, os, sys, pathlib, taucoffea\n"
        "n = int(pathlib.Path('input.txt').read_text())\n"
        "pathlib.Path('output.txt').write_text(str(n * 3))\n"
        "print(json.dumps({'exe': sys.executable, 'pkg': taucoffea.__file__, 'uid': os.getuid(),"
        " 'cwd': os.getcwd(), 'extra': os.environ.get('EXTRA_VAR')}))\n"
    )
    proc = condor_pool.run_python(code, cwd=workdir, env={"EXTRA_VAR": "a b'c"}, timeout=120)
    assert proc.returncode == 0, proc.stderr
    seen = json.loads(proc.stdout.strip().splitlines()[-1])
    assert seen["exe"] == condor_pool.python
    assert seen["pkg"] == taucoffea.__file__
    assert seen["uid"] == condor_pool.submit_uid
    assert seen["cwd"] == str(workdir)
    assert seen["extra"] == "a b'c"
    out = workdir / "output.txt"
    assert out.read_text() == "51"
    assert out.stat().st_uid == condor_pool.submit_uid
    # The worker_init handed to host-side executor configs puts the same interpreter first.
    assert condor_pool.worker_init.startswith(f"export PATH={os.path.dirname(condor_pool.python)}:")
    # Loopback only: the pool must never listen on a routable interface.
    conf = condor_pool.run(["condor_config_val", "NETWORK_INTERFACE"], timeout=60)
    assert conf.stdout.strip() == "127.0.0.1"
