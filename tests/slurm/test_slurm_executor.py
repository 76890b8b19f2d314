"""``check --executor slurm`` against a real single-node Slurm cluster (see conftest.py).

Real sbatch job arrays running real ``awrepro _slurm-task`` processes on the node, the code
served by a real git daemon, real uv environments. Fast cases use awrepro's own timeout;
one test waits for Slurm's time limit (whole minutes, enforced up to 30 s late).
"""

from __future__ import annotations

import json
import re
import signal
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.commands.checkkit import (
    Project,
    Workspace,
    load_json,
    paper,
    pid_sleeper,
    project,  # noqa: F401 (fixture)
    registry,
    statuses,
    uv_cache,  # noqa: F401 (fixture)
    ws,  # noqa: F401 (fixture)
)
from tests.processes import wait_for
from tests.slurmcluster import Cluster

SUBMITTED = re.compile(r"submitted job array (\d+) ")


def job_fields(job: str) -> dict[str, str]:
    shown = subprocess.run(["scontrol", "-o", "show", "job", job], capture_output=True, text=True, check=True).stdout
    return dict(word.split("=", 1) for word in shown.split() if "=" in word)


class Submitter:
    """``awrepro check --executor slurm`` as a process of its own, its output in files."""

    def __init__(self, ws: Workspace, *args: str) -> None:
        self.out, self.err = ws.root / "stdout.txt", ws.root / "stderr.txt"
        with self.out.open("w") as out, self.err.open("w") as err:
            self.proc = subprocess.Popen(ws.argv("check", "--executor", "slurm", *args), stdout=out, stderr=err,
                                         stdin=subprocess.DEVNULL)

    def job_id(self) -> str:
        wait_for(lambda: SUBMITTED.search(self.err.read_text()) or self.proc.poll() is not None, "the array")
        found = SUBMITTED.search(self.err.read_text())
        assert found, self.err.read_text()
        return found.group(1)

    def finish(self, timeout: float = 120) -> tuple[int, str, str]:
        code = self.proc.wait(timeout=timeout)
        return code, self.out.read_text(), self.err.read_text()

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


def test_pass_fail_timeout_and_skip_through_one_job_array(ws: Workspace, project: Project, slurm: Cluster,
                                                           pid_reports) -> None:  # noqa: ANN001
    code: dict[str, Any] = {"url": project.url, "commit": project.sha}
    orphan = pid_reports()  # the sandbox lets a smoke test write nowhere outside: it reports over a socket
    detach = ("python -c 'import os, socket, time\nr, w = os.pipe()\nif os.fork() == 0:\n    os.setsid()\n"
              f"    s = socket.socket(socket.AF_UNIX)\n    s.connect(\"\\0{orphan.name}\")\n    os.write(w, b\"x\")\n"
              "    time.sleep(300)\nos.read(r, 1)'; echo detached")
    ws.write(registry(
        paper("good", **code, command="sh smoke.sh", expect="smoke OK"),
        paper("bad", **code, command="echo it broke; exit 3"),
        paper("hang", **code, command="sleep 300", timeout=2),  # awrepro's own timeout, inside the task
        # A process the smoke test detaches (setsid): it must not outlive the job.
        paper("detach", **code, command=detach),
        paper("gpu", **code, command="nvidia-smi", gpu=True),
        paper("nocode", no_code="theory only"),
    ))
    report = ws.root / "report.json"
    done = ws.run("check", "--all", "--executor", "slurm", "--json", str(report))
    assert done.code == 1, done.out + done.err
    assert statuses(load_json(report)) == {"good": "passed", "bad": "failed", "hang": "timeout", "detach": "passed",
                                           "gpu": "skipped", "nocode": "skipped"}
    results = {r["id"]: r for r in load_json(report)["results"]}
    assert results["bad"]["note"] == "it broke" and results["hang"]["note"] == "timed out after 2 s"
    assert [s["name"] for s in results["good"]["stages"]] == ["fetch", "setup", "smoke"]
    assert "it broke" in Path(results["bad"]["log_path"]).read_text()  # written by the task, on the node

    # One array of four tasks, one job per entry that got to its smoke stage; each line names its job.
    (job,) = SUBMITTED.findall(done.err)
    fields = job_fields(f"{job}_0")
    assert fields["JobName"] == f"awrepro-{Path(results['good']['log_path'] or results['bad']['log_path']).parts[-3]}"
    assert fields["TimeLimit"] == "00:11:00"  # the longest timeout (600 s) and a margin, in whole minutes
    assert sorted(re.findall(rf"\[job {job}_(\d)\]", done.out)) == ["0", "1", "2", "3"]
    assert slurm.jobs() == []
    orphan.wait(1)
    assert orphan.gone(30), "the detached process outlived its job"

    # Recorded in the history like a local run.
    assert "failed" in ws.run("history", "bad").out


def test_gpu_entries_ask_for_a_gpu(ws: Workspace, project: Project, slurm: Cluster) -> None:
    code: dict[str, Any] = {"url": project.url, "commit": project.sha}
    ws.write(registry(paper("cpu", **code, command="sh smoke.sh"), paper("gpu", **code, command="nvidia-smi", gpu=True)))
    report = ws.root / "report.json"
    done = ws.run("check", "--all", "--executor", "slurm", "--gpu", "--json", str(report))
    # The test cluster has no GPUs: sbatch refuses --gres=gpu:1, and only for the GPU entry's array.
    results = {r["id"]: r for r in load_json(report)["results"]}
    assert (results["cpu"]["status"], results["gpu"]["status"]) == ("passed", "infra"), done.out + done.err
    assert "sbatch failed" in results["gpu"]["note"] and "gres" in results["gpu"]["note"]
    assert done.code == 1


def test_ctrl_c_cancels_the_array_and_reports_what_finished(ws: Workspace, project: Project, slurm: Cluster,
                                                            pid_reports) -> None:  # noqa: ANN001
    code: dict[str, Any] = {"url": project.url, "commit": project.sha}
    started = pid_reports()
    ws.write(registry(paper("quick", **code, command="sh smoke.sh"),
                      paper("slow", **code, command=pid_sleeper(started), timeout=600)))
    report = ws.root / "report.json"
    submitter = Submitter(ws, "--all", "--json", str(report))
    try:
        job = submitter.job_id()
        started.wait(1)  # the slow smoke test started on the node
        wait_for(lambda: "quick  passed" in submitter.out.read_text(), "the quick entry to finish")
        submitter.proc.send_signal(signal.SIGINT)
        code_, out, err = submitter.finish()
    finally:
        submitter.kill()
    assert code_ == 130, out + err
    assert f"cancelled job array {job}" in err
    assert slurm.jobs() == []  # nothing left in squeue
    assert statuses(load_json(report)) == {"quick": "passed", "slow": "interrupted"}  # every entry accounted for
    assert load_json(report)["interrupted"] is True
    assert [line.split()[2] for line in ws.run("history", "slow").out.splitlines()[1:]] == []  # no verdict recorded


def test_a_job_cancelled_behind_awrepros_back_is_infra(ws: Workspace, project: Project, slurm: Cluster,
                                                        pid_reports) -> None:  # noqa: ANN001
    code: dict[str, Any] = {"url": project.url, "commit": project.sha}
    started = pid_reports()
    ws.write(registry(paper("victim", **code, command=pid_sleeper(started), timeout=600)))
    report = ws.root / "report.json"
    submitter = Submitter(ws, "--all", "--json", str(report))
    try:
        job = submitter.job_id()
        started.wait(1)  # the smoke test started on the node
        subprocess.run(["scancel", job], check=True)
        code_, out, err = submitter.finish()
    finally:
        submitter.kill()
    assert code_ == 1, out + err
    (result,) = load_json(report)["results"]
    assert result["status"] == "infra" and result["failed_stage"] == "smoke", result
    assert f"job {job}_0 ended CANCELLED" in result["note"]
    assert "infra" in ws.run("history", "victim").out


def test_report_collect_finishes_a_run_whose_submitter_was_killed(ws: Workspace, project: Project, slurm: Cluster,
                                                                   pid_reports) -> None:  # noqa: ANN001
    code: dict[str, Any] = {"url": project.url, "commit": project.sha}
    started, go = pid_reports(), ws.cache / "go"  # smoke tests read the cache, write nowhere outside
    report_in = f"python -c 'import socket; socket.socket(socket.AF_UNIX).connect(\"\\0{started.name}\")'"
    wait_go = f"{report_in}; while [ ! -e {go} ]; do sleep 0.1; done; echo released"
    ws.write(registry(paper("waits", **code, command=wait_go, expect="released", timeout=600),
                      paper("fails", **code, command="exit 4")))
    report = ws.root / "report.json"
    submitter = Submitter(ws, "--all", "--json", str(report))
    try:
        submitter.job_id()
        started.wait(1)  # the smoke test started on the node
        submitter.proc.send_signal(signal.SIGKILL)
        submitter.proc.wait(timeout=30)
    finally:
        submitter.kill()
    assert not report.exists()
    go.touch()  # the job goes on without its submitter
    (run_dir,) = re.findall(r"awrepro report collect (\S+)", submitter.err.read_text())
    done = ws.run("report", "collect", str(run_dir))
    assert done.code == 1, done.out + done.err  # as check would have: one entry failed
    assert statuses(load_json(report)) == {"waits": "passed", "fails": "failed"}
    assert load_json(report)["interrupted"] is False
    assert slurm.jobs() == []
    history = ws.run("history", "waits").out
    assert "passed" in history and "(interrupted)" not in history


def test_a_node_that_cannot_see_the_cache_is_infra(ws: Workspace, project: Project, slurm: Cluster) -> None:
    """The submitter works in a mount namespace of its own with the cache on a private tmpfs: the
    node (slurmd, outside it) sees an empty folder, as a node without the shared filesystem would."""
    code: dict[str, Any] = {"url": project.url, "commit": project.sha}
    ws.write(registry(paper("good", **code, command="sh smoke.sh")))
    ws.cache.mkdir()
    report = ws.root / "report.json"
    argv = ws.argv("check", "--all", "--executor", "slurm", "--json", str(report))
    inner = f"mount -t tmpfs tmpfs {ws.cache} && exec {' '.join(argv)}"
    done = subprocess.run(["unshare", "-m", "--propagation", "private", "sh", "-c", inner], capture_output=True,
                          text=True, timeout=300)
    if "mount" in done.stderr and "permission denied" in done.stderr.lower():
        pytest.skip(f"this machine does not allow a private mount: {done.stderr.strip()}")
    assert done.returncode == 1, done.stdout + done.stderr
    (result,) = load_json(report)["results"]
    assert result["status"] == "infra", result
    assert "the cache must be on a filesystem the nodes share" in result["note"]


@pytest.mark.slow
def test_slurms_time_limit_is_a_timeout_and_leaves_no_job(ws: Workspace, project: Project, slurm: Cluster) -> None:
    """The one test that waits for Slurm itself: its limits are whole minutes, enforced up to 30 s late."""
    code: dict[str, Any] = {"url": project.url, "commit": project.sha}
    ws.write(registry(paper("endless", **code, command="sleep 3600", timeout=3000)))
    report = ws.root / "report.json"
    done = ws.run("check", "--all", "--executor", "slurm", "--sbatch-arg=--time=1", "--json", str(report))
    assert done.code == 1, done.out + done.err
    (result,) = load_json(report)["results"]
    assert result["status"] == "timeout" and "Slurm's time limit" in result["note"], result
    assert slurm.jobs() == []
    assert json.dumps(result)  # the report stays valid JSON


def test_the_task_command_outside_a_job_array_is_a_usage_error(cli, tmp_path: Path, monkeypatch) -> None:  # noqa: ANN001
    monkeypatch.delenv("SLURM_ARRAY_TASK_ID", raising=False)
    done = cli("_slurm-task", str(tmp_path))
    assert (done.code, done.err.strip()) == (2, "error: _slurm-task runs as a task of a Slurm job array "
                                                "(SLURM_ARRAY_TASK_ID is not set)")
