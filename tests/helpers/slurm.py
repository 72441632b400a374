"""A single-node SLURM cluster on this machine, for the tests of the cluster path: munged, slurmctld and slurmd as
Debian's `slurm-wlm` and `munge` install them, every file (configuration, key, state, logs) in a temporary folder,
the daemons on loopback ports. Clients (sbatch, squeue, scancel, scontrol, and submitit, which calls them) find it
through SLURM_CONF alone."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from tests.helpers.servers import free_port

DAEMONS = ("munged", "slurmctld", "slurmd")
CLIENTS = ("sbatch", "squeue", "scancel", "scontrol", "sinfo")
PACKAGES = ("slurm-wlm", "munge")


def found(name: str) -> str | None:
    """A program's path; the daemons are in /usr/sbin, which a user's PATH may lack."""
    return shutil.which(name, path=f"{os.environ.get('PATH', '')}{os.pathsep}/usr/sbin{os.pathsep}/sbin")


def program(name: str) -> str:
    return found(name) or name


def missing_reason() -> str | None:
    """Why no cluster can start here (its programs are missing), or None. CI installs them (.ci/run, as root)."""
    missing = [p for p in DAEMONS + CLIENTS if found(p) is None]
    if not missing:
        return None
    return f"needs {', '.join(missing)}: `apt-get install {' '.join(PACKAGES)}` as root (Debian's SLURM 22.05)"


@dataclass(frozen=True)
class SlurmCluster:
    folder: Path
    conf: Path  # slurm.conf: what SLURM_CONF names
    node: str
    cpus: int
    memory_mb: int

    @property
    def env(self) -> dict[str, str]:
        return {"SLURM_CONF": str(self.conf)}

    def run(self, *command: str, check: bool = True) -> str:
        """A client command against this cluster; its output."""
        done = subprocess.run(
            [program(command[0]), *command[1:]],
            env={**os.environ, **self.env},
            capture_output=True,
            text=True,
            check=False,
        )
        if check and done.returncode != 0:
            raise AssertionError(f"{' '.join(command)} failed ({done.returncode}): {done.stderr.strip()}")
        return done.stdout

    def log(self, daemon: str) -> str:
        path = self.folder / f"{daemon}.log"
        return path.read_text(errors="replace") if path.is_file() else ""


def node_hardware() -> tuple[str, int, int]:
    """This machine as slurmd sees it: its short host name, CPUs and memory (MB). A node declared with more than
    slurmd finds is drained, so the cluster declares exactly that."""
    found = subprocess.run([program("slurmd"), "-C"], capture_output=True, text=True, check=True).stdout
    fields = dict(re.findall(r"(\w+)=(\S+)", found.splitlines()[0]))
    return fields["NodeName"], int(fields["CPUs"]), int(fields["RealMemory"])


def slurm_conf(folder: Path, node: str, cpus: int, memory_mb: int) -> str:
    """One partition of one node, this machine. Without cgroups in a container: processes tracked through /proc
    (proctrack/linuxproc) and not bound to CPUs (task/none); CPUs and memory are still reserved per job
    (cons_tres, CR_CPU_Memory), so two one-CPU jobs share the node and a third waits. No accounting database."""
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
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
MinJobAge=3600
KillWait=10
NodeName={node} NodeAddr=127.0.0.1 CPUs={cpus} RealMemory={memory_mb} State=UNKNOWN
PartitionName=debug Nodes={node} Default=YES MaxTime=INFINITE State=UP
"""


def wait_until(check, what: str, cluster: SlurmCluster, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        if time.monotonic() > deadline:
            logs = "\n".join(f"--- {d}.log\n{cluster.log(d)[-2000:]}" for d in DAEMONS)
            raise AssertionError(f"{what} not within {seconds} s\n{logs}")
        time.sleep(0.5)


def node_idle(cluster: SlurmCluster) -> bool:
    try:
        return cluster.run("sinfo", "-h", "-N", "-o", "%T", check=False).strip() == "idle"
    except OSError:
        return False


@contextmanager
def slurm_cluster(folder: Path) -> Iterator[SlurmCluster]:
    """munged, slurmctld and slurmd started in the foreground (-F, -D) as children of this process, and the node
    idle in `sinfo`; on the way out, every job cancelled and the daemons stopped."""
    node, cpus, memory_mb = node_hardware()
    for sub in ("munge", "state", "spool"):
        (folder / sub).mkdir(parents=True, exist_ok=True)
    os.chmod(folder / "munge", 0o700)
    key = folder / "munge" / "munge.key"
    key.write_bytes(os.urandom(1024))
    os.chmod(key, 0o600)
    conf = folder / "slurm.conf"
    conf.write_text(slurm_conf(folder, node, cpus, memory_mb))
    cluster = SlurmCluster(folder, conf, node, cpus, memory_mb)
    env = {**os.environ, **cluster.env}
    started: list[subprocess.Popen] = []

    def start(*command: str | Path, log: str) -> None:
        out = open(folder / f"{log}.out", "w")  # noqa: SIM115 (open while the daemon runs)
        started.append(
            subprocess.Popen(
                [program(str(command[0])), *map(str, command[1:])],
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        )

    try:
        munge = folder / "munge"
        start(
            "munged", "-F", "-f", f"--socket={munge / 'munge.socket'}", f"--key-file={key}",
            f"--pid-file={munge / 'munged.pid'}", f"--log-file={folder / 'munged.log'}",
            f"--seed-file={munge / 'munged.seed'}", log="munged-console",
        )  # fmt: skip
        wait_until(lambda: (munge / "munge.socket").exists(), "munged's socket", cluster)
        start("slurmctld", "-D", "-i", "-f", conf, log="slurmctld-console")
        start("slurmd", "-D", "-f", conf, log="slurmd-console")
        wait_until(lambda: node_idle(cluster), f"node {node} idle in sinfo", cluster)
        yield cluster
    finally:
        if len(started) == len(DAEMONS):  # no job may outlive the cluster: its processes are not the daemons'
            cluster.run("scancel", "--full", "--partition=debug", check=False)
            try:
                wait_until(lambda: not cluster.run("squeue", "-h", check=False).strip(), "every job ended", cluster)
            finally:
                stop(started)
        else:
            stop(started)


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
