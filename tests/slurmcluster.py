"""A real single-node Slurm cluster on 127.0.0.1, with a scratch configuration (never /etc/slurm).

slurmctld and slurmd of Debian's Slurm 22.05, ``AuthType=auth/none`` (no munge), free ports
and a node name of its own, so two test runs on one machine do not meet. ``proctrack/cgroup``
(cgroup v1 freezer) where the machine has it, so that nothing a job started outlives the job;
see /work/shared/research/slurm/feasibility.md. Also usable by hand:

    python -m tests.slurmcluster start DIR   # prints export SLURM_CONF=...
    python -m tests.slurmcluster stop DIR
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

BINARIES = ("slurmctld", "slurmd", "sbatch", "squeue", "scontrol", "scancel")


def missing_binaries() -> list[str]:
    return [name for name in BINARIES if shutil.which(name) is None]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _cgroup_freezer() -> bool:
    return Path("/sys/fs/cgroup/freezer/cgroup.procs").exists() and os.access("/sys/fs/cgroup/freezer", os.W_OK)


class Cluster:
    def __init__(self, base: Path) -> None:
        self.base = base
        self.conf = base / "slurm.conf"
        self.node = "aw" + uuid.uuid4().hex[:8]  # a node of its own: its own cgroup and spool
        self.partition = "debug"

    @property
    def environ(self) -> dict[str, str]:
        return {"SLURM_CONF": str(self.conf)}

    def write_conf(self) -> None:
        for folder in ("state", "spool", "log"):
            (self.base / folder).mkdir(parents=True, exist_ok=True)
        proctrack = "cgroup" if _cgroup_freezer() else "linuxproc"
        if proctrack == "cgroup":
            (self.base / "cgroup.conf").write_text("CgroupPlugin=cgroup/v1\nConstrainCores=no\nConstrainRAMSpace=no\n")
        cpus = max(4, os.cpu_count() or 1)
        b = self.base
        self.conf.write_text(f"""\
ClusterName=aw{self.node[2:]}
SlurmctldHost={socket.gethostname()}(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/none
CredType=cred/none
SlurmctldPort={_free_port()}
SlurmdPort={_free_port()}
StateSaveLocation={b}/state
SlurmdSpoolDir={b}/spool
SlurmctldPidFile={b}/slurmctld.pid
SlurmdPidFile={b}/slurmd.pid
SlurmctldLogFile={b}/log/slurmctld.log
SlurmdLogFile={b}/log/slurmd.log
ProctrackType=proctrack/{proctrack}
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SchedulerType=sched/backfill
SchedulerParameters=batch_sched_delay=0
MpiDefault=none
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none
MinJobAge=300
ReturnToService=2
SlurmctldTimeout=30
SlurmdTimeout=30
InactiveLimit=0
KillWait=5
Waittime=0
MailProg=/bin/true
SlurmdParameters=config_overrides
NodeName={self.node} NodeHostname={socket.gethostname()} NodeAddr=127.0.0.1 CPUs={cpus} RealMemory=1000 State=UNKNOWN
PartitionName={self.partition} Nodes={self.node} Default=YES MaxTime=INFINITE State=UP
""")

    def _run(self, *cmd: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return subprocess.run(cmd, env={**os.environ, **self.environ}, capture_output=True, text=True, check=check,
                              timeout=60)

    def start(self, deadline_s: float = 60) -> None:
        self.write_conf()
        self._run("slurmctld", "-f", str(self.conf))
        self._wait(lambda: "UP" in self._run("scontrol", "ping", check=False).stdout, deadline_s, "slurmctld")
        self._run("slurmd", "-f", str(self.conf), "-N", self.node)
        self._wait(lambda: self._run("sinfo", "-h", "-N", "-o", "%T", check=False).stdout.strip() == "idle",
                   deadline_s, "the node to be idle")

    def _wait(self, ready: object, deadline_s: float, what: str) -> None:
        deadline = time.monotonic() + deadline_s
        while time.monotonic() < deadline:
            if ready():  # type: ignore[operator]
                return
            time.sleep(0.1)
        logs = "\n".join(p.read_text(errors="replace")[-2000:] for p in (self.base / "log").glob("*.log"))
        raise RuntimeError(f"Slurm test cluster: waited {deadline_s} s for {what}\n{logs}")

    def jobs(self) -> list[str]:
        """Jobs in the queue (pending or running), one line each."""
        return self._run("squeue", "-h", "-o", "%i %T").stdout.split("\n")[:-1]

    def stop(self) -> None:
        for name in ("slurmd", "slurmctld"):  # slurmd first: it ends its jobs' slurmstepd
            pid_file = self.base / f"{name}.pid"
            try:
                pid = int(pid_file.read_text())
            except (OSError, ValueError):
                continue
            try:
                os.kill(pid, signal.SIGTERM)
                deadline = time.monotonic() + 30
                while time.monotonic() < deadline:
                    os.kill(pid, 0)
                    time.sleep(0.1)
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        for cgroup in Path("/sys/fs/cgroup").glob(f"*/slurm_{self.node}"):
            for inner in sorted(cgroup.rglob("*"), key=lambda p: -len(p.parts)):
                if inner.is_dir():
                    inner.rmdir()
            cgroup.rmdir()


if __name__ == "__main__":
    action, folder = sys.argv[1], Path(sys.argv[2])
    cluster = Cluster(folder)
    if action == "start":
        cluster.start()
        (folder / "node").write_text(cluster.node)
        print(f"export SLURM_CONF={cluster.conf}")
    else:
        cluster.node = (folder / "node").read_text()
        cluster.stop()
