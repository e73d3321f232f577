"""ops.harness.tree_cpu_seconds: the CPU of a process and its descendants (the serving bench's
per-request CPU of `aimass serve --workers N`, whose replicas are children of its parent), and
machine_cpu_seconds: every core's busy time (the bench's whole-machine CPU per answer)."""

from __future__ import annotations

import subprocess
import sys
import time

from ops.harness import machine_cpu_seconds, tree_cpu_seconds

BURN = ("import subprocess, sys, time\n"
        "child = subprocess.Popen([sys.executable, '-c', "
        "'import time\\nt = time.process_time()\\nwhile time.process_time() - t < 0.6: pass\\n"
        "time.sleep(30)'])\n"
        "time.sleep(30)\n")


def test_a_grandchilds_cpu_counts_for_the_parent():
    parent = subprocess.Popen([sys.executable, "-c", BURN])
    try:
        deadline = time.monotonic() + 20
        while tree_cpu_seconds(parent.pid) < 0.6 and time.monotonic() < deadline:
            time.sleep(0.1)
        total = tree_cpu_seconds(parent.pid)
        assert total >= 0.6  # the burning grandchild's, though the parent only sleeps
        assert tree_cpu_seconds(parent.pid) - total < 0.3  # it stopped burning
    finally:
        subprocess.run(["pkill", "-P", str(parent.pid)])
        parent.kill()
        parent.wait()
    assert tree_cpu_seconds(parent.pid) == 0.0  # gone: nothing to count


def test_the_machine_counts_a_process_it_did_not_start():
    before = machine_cpu_seconds()
    subprocess.run([sys.executable, "-c", "import time\nt = time.process_time()\n"
                    "while time.process_time() - t < 0.5: pass"], check=True)
    assert machine_cpu_seconds() - before >= 0.45  # (other processes only add to it)
