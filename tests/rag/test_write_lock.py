"""A second writer is refused with the holder named: pid and command (issue 21)."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time

import pytest

from rag import KnowledgeBase
from rag.errors import KnowledgeBaseLockedError


def test_a_lock_error_names_the_holders_pid_and_command(tmp_path):
    kb_dir = tmp_path / "kb"
    kb_dir.mkdir()
    lock = kb_dir / ".write.lock"
    # a writer as KnowledgeBase._lock leaves it: the flock held, its pid in the file
    script = tmp_path / "holder.py"
    script.write_text(textwrap.dedent(f"""
            import fcntl, os, sys, time
            fh = open({str(lock)!r}, "a+")
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
            fh.seek(0); fh.truncate(); fh.write(str(os.getpid())); fh.flush()
            print("held", flush=True)
            time.sleep(60)
        """))
    holder = subprocess.Popen([sys.executable, str(script), "ingest-marker-argument"], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        with KnowledgeBase.open(kb_dir, create=True) as kb:
            started = time.monotonic()
            with pytest.raises(KnowledgeBaseLockedError) as refused:
                kb.ingest([], progress=False)
        message = str(refused.value)
        assert f"pid {holder.pid}: holder.py ingest-marker-argument" in message, message
        assert "another process is writing to this knowledge base" in message
        assert time.monotonic() - started < 5  # refused at once, not waited for
    finally:
        holder.kill()
        holder.wait(10)
