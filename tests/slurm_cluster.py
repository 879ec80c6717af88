"""A one-node Slurm cluster on localhost for the tests: munged, slurmctld and slurmd started as daemons
from a private folder (key, slurm.conf, state, spool, logs), on free ports, so that it never meets a
cluster of the machine. It needs Debian's `slurm-wlm` and `munge` (`.ci/install-slurm`) and no systemd
or cgroups: processes are tracked with /proc (proctrack/linuxproc) and tasks are not confined.
"""

from __future__ import annotations

import getpass
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

DAEMONS = ("munged", "slurmctld", "slurmd")
CLIENTS = ("sbatch", "squeue", "scontrol", "scancel", "srun")
PARTITION = "debug"
NODE = "frnode"


def missing_programs() -> list[str]:
    return [name for name in (*DAEMONS, *CLIENTS) if _which(name) is None]


def _which(name: str) -> str | None:
    # the daemons are in /usr/sbin, which a non-login shell of a container may leave off PATH
    return shutil.which(name) or shutil.which(name, path="/usr/sbin:/sbin")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def node_hardware() -> str:
    """The node's line as slurmd measures it (CPUs, sockets, cores, threads, RealMemory): a node declared
    with more than it has is drained."""
    line = subprocess.run([_which("slurmd"), "-C"], capture_output=True, text=True, check=True).stdout.splitlines()[0]
    return " ".join(field for field in line.split() if not field.startswith("NodeName="))


class SlurmCluster:
    """Start with `start()`, stop with `stop()`; `env` is the environment a Slurm client needs."""

    def __init__(self):
        # not pytest's tmp_path: munged refuses a socket in a folder that not everyone can enter
        self.root = Path(tempfile.mkdtemp(prefix="frcorpus-slurm-"))
        self.root.chmod(0o755)
        self.conf = self.root / "slurm.conf"
        self.munge_socket = self.root / "munge.socket"
        self.env = {**os.environ, "SLURM_CONF": str(self.conf)}

    def _pid(self, daemon: str) -> int | None:
        path = self.root / f"{daemon}.pid"
        try:
            return int(path.read_text().strip())
        except (FileNotFoundError, ValueError):
            return None

    def _write_conf(self) -> None:
        user = getpass.getuser()
        for folder in ("state", "spool", "log"):
            (self.root / folder).mkdir()
        root = self.root
        self.conf.write_text(
            f"""ClusterName=frcorpus-test
SlurmctldHost=localhost(127.0.0.1)
SlurmctldPort={_free_port()}
SlurmdPort={_free_port()}
SlurmUser={user}
SlurmdUser={user}
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket={self.munge_socket}
StateSaveLocation={root}/state
SlurmdSpoolDir={root}/spool
SlurmctldPidFile={root}/slurmctld.pid
SlurmdPidFile={root}/slurmd.pid
SlurmctldLogFile={root}/log/slurmctld.log
SlurmdLogFile={root}/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
MpiDefault=none
SwitchType=switch/none
MailProg=/bin/true
SchedulerType=sched/builtin
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU_Memory
ReturnToService=2
MinJobAge=600
NodeName={NODE} NodeHostname={socket.gethostname()} NodeAddr=127.0.0.1 {node_hardware()} State=UNKNOWN
PartitionName={PARTITION} Nodes={NODE} Default=YES MaxTime=INFINITE State=UP
""",
            encoding="utf-8",
        )

    def start(self, timeout_s: float = 30.0) -> None:
        munge_dir = self.root / "munge"
        munge_dir.mkdir(mode=0o700)
        key = munge_dir / "munge.key"
        key.write_bytes(os.urandom(1024))
        key.chmod(0o400)
        self._daemon(
            "munged",
            f"--key-file={key}",
            f"--socket={self.munge_socket}",
            f"--pid-file={self.root / 'munged.pid'}",
            f"--log-file={munge_dir / 'munged.log'}",
            f"--seed-file={munge_dir / 'munged.seed'}",
        )
        self._write_conf()
        self._daemon("slurmctld", "-f", str(self.conf))
        self._daemon("slurmd", "-f", str(self.conf), "-N", NODE)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            state = self.run("sinfo", "--noheader", "--format=%T", check=False).stdout.strip()
            if state == "idle":
                return
            time.sleep(0.3)
        raise RuntimeError(f"the Slurm node is not idle after {timeout_s:.0f} s (state {state!r})\n{self.logs()}")

    def _daemon(self, name: str, *args: str) -> None:
        done = subprocess.run([_which(name), *args], capture_output=True, text=True, env=self.env)
        if done.returncode != 0:
            raise RuntimeError(f"{name} did not start: {done.stdout}{done.stderr}\n{self.logs()}")

    def run(self, *command: str, check: bool = True) -> subprocess.CompletedProcess:
        return subprocess.run(
            [_which(command[0]), *command[1:]], capture_output=True, text=True, env=self.env, check=check
        )

    def jobs(self) -> list[dict[str, str]]:
        """The cluster's jobs that are not finished: id (an array task's as 12_3), name, state, reason."""
        out = self.run("squeue", "--noheader", "--array", "--format=%i|%j|%T|%r").stdout
        return [dict(zip(("id", "name", "state", "reason"), line.split("|"), strict=True)) for line in out.splitlines()]

    def all_jobs(self) -> dict[str, str]:
        """Every job the controller remembers (finished ones for MinJobAge), an array task's id as 12_3:
        state (COMPLETED, FAILED, CANCELLED, ...) by id and name, as 'id name'."""
        out = self.run("squeue", "--noheader", "--array", "--states=all", "--format=%i %j|%T").stdout
        return dict(line.split("|") for line in out.splitlines())

    def wait_until_idle(self, timeout_s: float, diagnose=lambda: "") -> None:
        """Until no job is pending or running; on timeout, fail with the jobs, `diagnose()` and the daemons' logs."""
        deadline = time.monotonic() + timeout_s
        while (jobs := self.jobs()) and time.monotonic() < deadline:
            time.sleep(0.5)
        if jobs:
            raise AssertionError(
                f"Slurm jobs still queued or running after {timeout_s:.0f} s: {jobs}\n{diagnose()}\n{self.logs()}"
            )

    def logs(self) -> str:
        parts = []
        for path in sorted((self.root / "log").glob("*.log")) + [self.root / "munge" / "munged.log"]:
            if path.exists():
                parts.append(f"---- {path}\n" + "\n".join(path.read_text(errors="replace").splitlines()[-40:]))
        return "\n".join(parts)

    def stop(self) -> None:
        """Cancel every job, stop the daemons (by the pids they wrote) and delete the cluster's folder."""
        if self._pid("slurmctld") is not None:
            self.run("scancel", f"--partition={PARTITION}", check=False)
            deadline = time.monotonic() + 15
            while self.jobs() and time.monotonic() < deadline:
                time.sleep(0.3)
            self.run("scontrol", "shutdown", check=False)
        for daemon in ("slurmd", "slurmctld", "munged"):
            _stop_pid(self._pid(daemon))
        shutil.rmtree(self.root, ignore_errors=True)


def _stop_pid(pid: int | None, grace_s: float = 10.0) -> None:
    """SIGTERM, then SIGKILL after `grace_s`: the daemons forked away from us, so we cannot wait() for them."""
    if pid is None or not _alive(pid):
        return
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace_s
    while _alive(pid):
        if time.monotonic() > deadline:
            os.kill(pid, signal.SIGKILL)
        time.sleep(0.2)


def _alive(pid: int) -> bool:
    """Running, and not a zombie that a container's init leaves unreaped."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return False
    return "\nState:\tZ" not in status
