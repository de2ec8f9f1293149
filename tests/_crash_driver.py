"""Runs ``mmrag`` commands in child processes and SIGKILLs them on request (for test_crash.py).

Started once per test as ``python tests/_crash_driver.py``; it imports the heavy libraries
once, then reads one JSON request per line on stdin and answers one JSON line on stdout::

    {"argv": ["ingest", "docs", "--kb", "kb"], "kill_after": 3.2}       # SIGKILL after 3.2 s
    {"argv": ["delete", "a.pdf", "--kb", "kb"], "kill_at_step": 4}     # SIGKILL at the 4th write step
    -> {"code": 0 | 1 | 2 | null, "killed": true/false, "seconds": 5.1, "steps": 7}

Each command runs in a forked child: a real, separate process running ``rag.cli.main``,
killed with a real SIGKILL. Forking after the imports (and before any model has run) saves
the 5-10 s of importing torch per run. ``kill_at_step`` counts the write steps of the
knowledge base (registry saves, store deletes/upserts, image folder removals) and kills the
child just before step N runs; ``steps`` reports how many steps a run that was not killed took.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from pathlib import Path

sys.path[:0] = [str(Path(__file__).resolve().parents[1])]

import sentence_transformers  # noqa: E402,F401 - warm imports shared by every child
import torch  # noqa: E402,F401

import rag.cli  # noqa: E402
import retrievers.corpora  # noqa: E402,F401
import retrievers.store.edge  # noqa: E402,F401
import ingest  # noqa: E402,F401


def _install_step_hooks(kill_at: int | None, counter_path: Path) -> None:
    """Count (and optionally die at) every write step of the knowledge base."""
    import shutil

    from rag import _manifest
    from retrievers.store.edge import EdgeStore

    steps = {"n": 0}

    def step() -> None:
        steps["n"] += 1
        counter_path.write_text(str(steps["n"]))
        if kill_at is not None and steps["n"] == kill_at:
            os.kill(os.getpid(), signal.SIGKILL)

    def hooked(fn):
        def wrapper(*args, **kwargs):
            step()
            return fn(*args, **kwargs)

        return wrapper

    _manifest.DocumentRegistry._save = hooked(_manifest.DocumentRegistry._save)
    EdgeStore.delete = hooked(EdgeStore.delete)
    EdgeStore.upsert = hooked(EdgeStore.upsert)
    shutil.rmtree = hooked(shutil.rmtree)


def run(request: dict) -> dict:
    log = Path(request["log"])
    counter = log.with_suffix(".steps")
    counter.unlink(missing_ok=True)
    started = time.perf_counter()
    pid = os.fork()
    if pid == 0:
        code = 99
        try:
            fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
            os.dup2(fd, 1)
            os.dup2(fd, 2)
            if request.get("kill_at_step") is not None or request.get("count_steps"):
                _install_step_hooks(request.get("kill_at_step"), counter)
            code = rag.cli.main(request["argv"])
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 1
        except BaseException as exc:  # noqa: BLE001 - reported through the exit code and the log
            sys.stderr.write(f"driver child: {type(exc).__name__}: {exc}\n")
            code = 98
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(code)
    killed = False
    kill_after = request.get("kill_after")
    if kill_after is not None:
        deadline = started + kill_after
        while time.perf_counter() < deadline:
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                break
            time.sleep(0.01)
        else:
            os.kill(pid, signal.SIGKILL)
            killed = True
            _, status = os.waitpid(pid, 0)
    else:
        _, status = os.waitpid(pid, 0)
    if os.WIFSIGNALED(status):
        code, killed = None, True
    else:
        code = os.WEXITSTATUS(status)
    steps = int(counter.read_text()) if counter.exists() else 0
    return {"code": code, "killed": killed, "seconds": time.perf_counter() - started, "steps": steps}


def main() -> None:
    print(json.dumps({"ready": True}), flush=True)
    for line in sys.stdin:
        if line.strip():
            print(json.dumps(run(json.loads(line))), flush=True)


if __name__ == "__main__":
    main()
