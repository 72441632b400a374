"""A single-node SLURM cluster on this machine, for the tests of the cluster path: munged, slurmctld and slurmd as
Debian's `slurm-wlm` and `munge` install them, every file (configuration, key, state, logs) in a temporary folder,
the daemons on loopback ports. Clients (sbatch, squeue, scancel, scontrol, and submitit, which calls them) find it
through SLURM_CONF alone. With accounting, also a MariaDB server of its own and slurmdbd (Debian's `mariadb-server`
and `slurmdbd`), as a cluster keeps its jobs' history for `sacct`."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mlflow.tracking import MlflowClient

from tests.helpers.marks import unavailable
from tests.helpers.measured import followed, slurm_jobs_unmeasured
from tests.helpers.projects import start as start_module
from tests.helpers.servers import free_port

DAEMONS = ("munged", "slurmctld", "slurmd")
CLIENTS = ("sbatch", "squeue", "scancel", "scontrol", "sinfo")
PACKAGES = ("slurm-wlm", "munge")
ACCOUNTING = ("mariadb-install-db", "mariadbd", "slurmdbd", "sacctmgr")  # a cluster that keeps accounting's, from:
ACCOUNTING_PACKAGES = ("slurmdbd", "mariadb-server")


def found(name: str) -> str | None:
    """A program's path; the daemons are in /usr/sbin, which a user's PATH may lack."""
    return shutil.which(name, path=f"{os.environ.get('PATH', '')}{os.pathsep}/usr/sbin{os.pathsep}/sbin")


def program(name: str) -> str:
    return found(name) or name


def needs(accounting: bool = False) -> None:
    """A test that needs a cluster (with accounting, if asked) is skipped where its programs are missing, saying why;
    in CI it fails, since .ci/run installs them."""
    if reason := missing_reason(accounting):
        unavailable(reason, "run the SLURM tests")


def missing_reason(accounting: bool = False) -> str | None:
    """Why no cluster can start here (its programs are missing), or None. CI installs them (.ci/run, as root)."""
    programs = DAEMONS + CLIENTS + (ACCOUNTING if accounting else ())
    missing = [p for p in programs if found(p) is None]
    if not missing:
        return None
    packages = PACKAGES + (ACCOUNTING_PACKAGES if accounting else ())
    return f"needs {', '.join(missing)}: `apt-get install {' '.join(packages)}` as root (Debian's SLURM 22.05)"


@dataclass(frozen=True)
class SlurmCluster:
    folder: Path
    conf: Path  # slurm.conf: what SLURM_CONF names
    node: str
    cpus: int
    memory_mb: int
    daemons: dict[str, subprocess.Popen] = field(default_factory=dict, compare=False)  # by name, as started

    @property
    def env(self) -> dict[str, str]:
        return {"SLURM_CONF": str(self.conf)}

    def call(self, *command: str) -> subprocess.CompletedProcess:
        """A client command against this cluster, as it ended."""
        return subprocess.run(
            [program(command[0]), *command[1:]],
            env={**os.environ, **self.env},
            capture_output=True,
            text=True,
            check=False,
        )

    def run(self, *command: str, check: bool = True) -> str:
        """A client command against this cluster; its output."""
        done = self.call(*command)
        if check and done.returncode != 0:
            raise AssertionError(f"{' '.join(command)} failed ({done.returncode}): {done.stderr.strip()}")
        return done.stdout

    def answers(self, *command: str) -> bool:
        return self.call(*command).returncode == 0

    def log(self, daemon: str) -> str:
        path = self.folder / f"{daemon}.log"
        return path.read_text(errors="replace") if path.is_file() else ""


def node_hardware() -> tuple[str, int, int]:
    """This machine as slurmd sees it: its short host name, CPUs and memory (MB). A node declared with more than
    slurmd finds is drained, so the cluster declares exactly that."""
    found = subprocess.run([program("slurmd"), "-C"], capture_output=True, text=True, check=True).stdout
    fields = dict(re.findall(r"(\w+)=(\S+)", found.splitlines()[0]))
    return fields["NodeName"], int(fields["CPUs"]), int(fields["RealMemory"])


def slurm_conf(folder: Path, node: str, cpus: int, memory_mb: int, dbd_port: int | None = None) -> str:
    """One partition of one node, this machine. Without cgroups in a container: processes tracked through /proc
    (proctrack/linuxproc) and not bound to CPUs (task/none); CPUs and memory are still reserved per job
    (cons_tres, CR_CPU_Memory), so two one-CPU jobs share the node and a third waits. Accounting through the
    slurmdbd on `dbd_port`, or none."""
    accounting = (
        f"accounting_storage/slurmdbd\nAccountingStorageHost=127.0.0.1\nAccountingStoragePort={dbd_port}\n"
        f"AccountingStoragePass={folder / 'munge' / 'munge.socket'}"  # the MUNGE that signs requests to slurmdbd
        if dbd_port
        else "accounting_storage/none"
    )
    return f"""\
ClusterName=hwlab
SlurmctldHost={node}(127.0.0.1)
SlurmctldPort={free_port()}
SlurmdPort={free_port()}
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket={folder / "munge" / "munge.socket"}
StateSaveLocation={folder / "state"}
SlurmdSpoolDir={folder / "spool"}
SlurmctldPidFile={folder / "slurmctld.pid"}
SlurmdPidFile={folder / "slurmd.pid"}
SlurmctldLogFile={folder / "slurmctld.log"}
SlurmdLogFile={folder / "slurmd.log"}
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU_Memory
SchedulerType=sched/builtin
MpiDefault=none
ReturnToService=2
JobAcctGatherType=jobacct_gather/none
AccountingStorageType={accounting}
JobCompType=jobcomp/none
MinJobAge=3600
KillWait=10
NodeName={node} NodeAddr=127.0.0.1 CPUs={cpus} RealMemory={memory_mb} State=UNKNOWN
PartitionName=debug Nodes={node} Default=YES MaxTime=INFINITE State=UP
"""


def slurmdbd_conf(folder: Path, node: str, dbd_port: int, db_port: int) -> str:
    """slurmdbd on `dbd_port`, its database MariaDB's on `db_port` (root, no password: a server of the test's own
    on loopback). slurmdbd reads it beside slurm.conf, and only if no one else may (0600)."""
    return f"""\
DbdHost={node}
DbdAddr=127.0.0.1
DbdPort={dbd_port}
SlurmUser=root
AuthType=auth/munge
AuthInfo=socket={folder / "munge" / "munge.socket"}
PidFile={folder / "slurmdbd.pid"}
LogFile={folder / "slurmdbd.log"}
StorageType=accounting_storage/mysql
StorageHost=127.0.0.1
StoragePort={db_port}
StorageUser=root
StorageLoc=slurm_acct_db
"""


def wait_until(check, what: str, cluster: SlurmCluster, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        if time.monotonic() > deadline:
            logs = "\n".join(f"--- {d}.log\n{cluster.log(d)[-2000:]}" for d in cluster.daemons)
            raise AssertionError(f"{what} not within {seconds} s\n{logs}")
        time.sleep(0.5)


def node_idle(cluster: SlurmCluster) -> bool:
    try:
        return cluster.run("sinfo", "-h", "-N", "-o", "%T", check=False).strip() == "idle"
    except OSError:
        return False


@contextmanager
def slurm_cluster(folder: Path, accounting: bool = False) -> Iterator[SlurmCluster]:
    """munged, slurmctld and slurmd started in the foreground (-F, -D) as children of this process, and the node
    idle in `sinfo`; with `accounting`, MariaDB and slurmdbd before them, and sacct answering. On the way out, every
    job cancelled and the daemons stopped."""
    node, cpus, memory_mb = node_hardware()
    for sub in ("munge", "state", "spool"):
        (folder / sub).mkdir(parents=True, exist_ok=True)
    os.chmod(folder / "munge", 0o700)
    key = folder / "munge" / "munge.key"
    key.write_bytes(os.urandom(1024))
    os.chmod(key, 0o600)
    dbd_port, db_port = (free_port(), free_port()) if accounting else (None, None)
    conf = folder / "slurm.conf"
    conf.write_text(slurm_conf(folder, node, cpus, memory_mb, dbd_port))
    cluster = SlurmCluster(folder, conf, node, cpus, memory_mb)
    try:
        munge = folder / "munge"
        start(
            cluster, "munged", "-F", "-f", f"--socket={munge / 'munge.socket'}", f"--key-file={key}",
            f"--pid-file={munge / 'munged.pid'}", f"--log-file={folder / 'munged.log'}",
            f"--seed-file={munge / 'munged.seed'}",
        )  # fmt: skip
        wait_until(lambda: (munge / "munge.socket").exists(), "munged's socket", cluster)
        if dbd_port and db_port:
            start_accounting(cluster, dbd_port, db_port)
        start(cluster, "slurmctld", "-D", "-i", "-f", conf)
        start(cluster, "slurmd", "-D", "-f", conf)
        wait_until(lambda: node_idle(cluster), f"node {node} idle in sinfo", cluster)
        if accounting:  # slurmctld registers the cluster with slurmdbd as it starts
            wait_until(lambda: cluster.answers("sacct", "-n", "-X"), "sacct answering", cluster)
        yield cluster
    finally:
        try:
            if "slurmd" in cluster.daemons:  # no job may outlive the cluster: its processes are not the daemons'
                cluster.run("scancel", "--full", "--partition=debug", check=False)
                wait_until(lambda: not cluster.run("squeue", "-h", check=False).strip(), "every job ended", cluster)
        finally:
            stop(list(cluster.daemons.values()))


def start(cluster: SlurmCluster, name: str, *arguments: str | Path) -> None:
    """A daemon of the cluster, in a session of its own, its console output in <name>-console.out."""
    out = open(cluster.folder / f"{name}-console.out", "w")  # noqa: SIM115 (open while the daemon runs)
    cluster.daemons[name] = subprocess.Popen(
        [program(name), *map(str, arguments)],
        env={**os.environ, **cluster.env},
        stdout=out,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def start_accounting(cluster: SlurmCluster, dbd_port: int, db_port: int) -> None:
    """MariaDB in the cluster's folder (its tables made by mariadb-install-db), then slurmdbd on it."""
    data = cluster.folder / "mariadb"
    install = [program("mariadb-install-db"), "--no-defaults", f"--datadir={data}", "--user=root", "--skip-test-db"]
    subprocess.run([*install, "--auth-root-authentication-method=normal"], capture_output=True, check=True)
    start(
        cluster, "mariadbd", "--no-defaults", f"--datadir={data}", f"--socket={data / 'mariadb.sock'}",
        f"--port={db_port}", "--bind-address=127.0.0.1", "--user=root", f"--pid-file={data / 'mariadbd.pid'}",
    )  # fmt: skip
    wait_until(lambda: (data / "mariadb.sock").exists(), "MariaDB's socket", cluster)  # its port open too
    dbd = cluster.folder / "slurmdbd.conf"
    dbd.write_text(slurmdbd_conf(cluster.folder, cluster.node, dbd_port, db_port))
    os.chmod(dbd, 0o600)
    start(cluster, "slurmdbd", "-D")
    wait_until(lambda: cluster.answers("sacctmgr", "-n", "list", "cluster"), "slurmdbd answering", cluster)


def forget_every_job(cluster: SlurmCluster) -> None:
    """slurmctld stopped and started again with its state cleared (-c), as a controller that lost its state comes
    back: it no longer knows any job it had."""
    stop([cluster.daemons.pop("slurmctld")])
    start(cluster, "slurmctld", "-D", "-c", "-f", cluster.conf)
    wait_until(lambda: node_idle(cluster), f"node {cluster.node} idle in sinfo", cluster)


def stop(daemons: list[subprocess.Popen]) -> None:
    for daemon in reversed(daemons):
        if daemon.poll() is None:
            os.killpg(daemon.pid, signal.SIGTERM)
    for daemon in reversed(daemons):
        try:
            daemon.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(daemon.pid, signal.SIGKILL)
            daemon.wait()


# A sweep on the cluster, as a user starts it, and what SLURM and MLflow say of its jobs.

SETTINGS = [
    "hydra/launcher=slurm",
    "hydra.launcher.partition=debug",  # the one partition of the test cluster, named as a user names theirs
    "hydra.sweep.dir=sweep",
    "experiment=fast",
    "data.train_limit=2000",
    "data.test_sets=[mnist]",
    "report.max_misclassified=12",
    "report.grid_size=8",
    "report.confused_pairs=1",
    "label_issues.max_shown=12",
]


def sweep_runs(server: Any, experiment: str) -> tuple[MlflowClient, list[Any], list[Any]]:
    """A sweep's runs on a tracking server (`server.url`): its parents and its children."""
    client = MlflowClient(server.url)  # with the login in the environment, if any
    exp = client.get_experiment_by_name(experiment)
    runs = client.search_runs([exp.experiment_id])
    parents = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    children = [r for r in runs if "mlflow.parentRunId" in r.data.tags]
    return client, parents, children


def job_ids(sweep: Path) -> list[str]:
    """The SLURM job ids submitit gave the sweep's jobs, each the name of its folder under .submitit/: `12_0` (array
    12, task 0) for a sweep of several jobs, `12` for one."""
    return sorted(p.parent.name for p in (sweep / ".submitit").glob("*/*_submitted.pkl"))


def wait_for_jobs(sweep: Path, count: int, process: subprocess.Popen, seconds: float = 120) -> list[str]:
    """The sweep's job ids, once it has submitted `count` jobs."""
    deadline = time.monotonic() + seconds
    while len(jobs := job_ids(sweep)) < count:
        assert process.poll() is None, process.communicate()[1][-3000:]
        assert time.monotonic() < deadline, f"{len(jobs)} of {count} jobs submitted after {seconds} s"
        time.sleep(0.2)
    return jobs


def job_log(sweep: Path, job: str) -> str:
    """Where docs/scaling.md says a job's log is."""
    return (sweep / ".submitit" / job / f"{job}_0_log.out").read_text()


def job_err(sweep: Path, job: str) -> str:
    """The job's stderr, beside its log."""
    return (sweep / ".submitit" / job / f"{job}_0_log.err").read_text()


@contextmanager
def sweeping(folder: Path, *overrides: str, **env: str) -> Iterator[subprocess.Popen]:
    """The sweep's process, killed if the test fails before it ends (it would wait for its jobs). An override given
    replaces SETTINGS' one of the same key: the parent run's name, `sweep <overrides>`, stays within the 250
    characters PostgreSQL keeps of a run's name."""
    given = {o.split("=", 1)[0] for o in overrides}
    settings = [s for s in SETTINGS if s.split("=", 1)[0] not in given]
    measured = slurm_jobs_unmeasured()
    sweep = start_module(folder, "pipeline.experiment", "-m", *settings, *measured, *overrides, **followed(), **env)
    try:
        yield sweep
    finally:
        if sweep.poll() is None:
            sweep.kill()
            sweep.communicate()


def job_field(slurm: SlurmCluster, job: str, name: str) -> str:
    shown = slurm.run("scontrol", "show", "job", job)
    return re.search(rf"\b{name}=(\S+)", shown).group(1)


def wait_for_state(slurm: SlurmCluster, job: str, states: set[str], seconds: float = 120) -> str:
    deadline = time.monotonic() + seconds
    while (state := job_field(slurm, job, "JobState")) not in states:
        assert time.monotonic() < deadline, f"job {job} still {state} after {seconds} s"
        time.sleep(0.5)
    return state


def job_python(slurm: SlurmCluster, job: str) -> int:
    """The process id of the job's Python (submitit's `python -m submitit.core._submit`, which runs the training),
    found in /proc by the job's id in its environment: what the kernel's OOM killer would end."""
    job_id = job_field(slurm, job, "JobId").encode()
    for proc in Path("/proc").iterdir():
        try:
            command, environ = (proc / "cmdline").read_bytes(), (proc / "environ").read_bytes().split(b"\0")
        except OSError:  # not a process, or gone
            continue
        if b"submitit.core._submit" in command and b"SLURM_JOB_ID=" + job_id in environ:
            return int(proc.name)
    raise AssertionError(f"no Python process of job {job}")
