"""Office documents (DOCX, PPTX, XLSX, ODT, ODP, ODS, RTF, DOC, PPT, XLS) -> PDF bytes, by
LibreOffice headless.

Each conversion runs in its own temporary folder with its own LibreOffice profile
(``-env:UserInstallation``), so parallel conversions (worker processes, two ingests) never
share one; the input is copied there under a plain name (names that are not UTF-8 or that
start with ``-`` never reach the command line), the process group is killed when
``ingest.convert_timeout_s`` passes, and the folder is removed afterwards whatever happened.
The PDF is returned as bytes: the document keeps its own path, name and id (the sha256 of
the original file).
"""

from __future__ import annotations

import logging
import os
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

from rag.errors import CorruptDocumentError, MissingDependencyError, ResourceLimitError

__all__ = ["office_to_pdf", "find_soffice", "SOFFICE_INSTALL"]

logger = logging.getLogger("ingest")
#: Debian's packages for the converter (no GUI, no Java)
SOFFICE_INSTALL = (
    "apt-get install -y --no-install-recommends libreoffice-writer-nogui libreoffice-calc-nogui libreoffice-impress-nogui"
)
_STDERR_TAIL = 400


def find_soffice() -> str | None:
    """The LibreOffice program on ``PATH`` (``soffice``, or ``libreoffice``), or None."""
    return shutil.which("soffice") or shutil.which("libreoffice")


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    """Stop soffice and every process it started (``oosplash`` -> ``soffice.bin``)."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    proc.communicate()


def office_to_pdf(path: Path, fmt: str, timeout_s: float) -> bytes:
    """The PDF LibreOffice makes of the Office file ``path`` (format ``fmt``, e.g. ``"docx"``).

    Raises :class:`MissingDependencyError` (with the Debian install line) without LibreOffice,
    :class:`ResourceLimitError` past ``timeout_s``, :class:`CorruptDocumentError` when it
    makes no PDF (a broken or password-protected file)."""
    exe = find_soffice()
    if exe is None:
        raise MissingDependencyError(
            "LibreOffice (soffice)", purpose=f"reading {path.name}: Office files are converted to PDF",
            install=SOFFICE_INSTALL,
        )
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="mmrag-soffice-") as tmp:
        work = Path(tmp)
        source = work / f"document.{fmt}"
        shutil.copyfile(path, source)
        out = work / "out"
        command = [
            exe, f"-env:UserInstallation={(work / 'profile').as_uri()}", "--headless", "--invisible", "--norestore",
            "--nologo", "--nodefault", "--nolockcheck", "--convert-to", "pdf", "--outdir", str(out), str(source),
        ]
        # HOME in the folder too: LibreOffice writes caches there; nothing is left behind
        env = {**os.environ, "HOME": str(work), "SAL_USE_VCLPLUGIN": "svp"}
        proc = subprocess.Popen(
            command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            cwd=work, env=env, start_new_session=True,
        )
        try:
            _, stderr = proc.communicate(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            _kill_group(proc)
            raise ResourceLimitError(
                path, f"LibreOffice did not finish converting it to PDF within ingest.convert_timeout_s={timeout_s:g} s "
                "(a very large or broken file; raise the limit to wait longer)",
            ) from None
        finally:
            if proc.poll() is None:  # interrupted (KeyboardInterrupt): never leave soffice running
                _kill_group(proc)
        pdf = out / "document.pdf"
        if not pdf.is_file() or pdf.stat().st_size == 0:
            said = stderr.decode("utf-8", "replace").strip()[-_STDERR_TAIL:] or "no message"
            raise CorruptDocumentError(
                path, f"LibreOffice could not convert it to PDF (exit status {proc.returncode}: {said}); "
                "the file may be damaged or password-protected: open it in an Office program and save it again",
            )
        data = pdf.read_bytes()
    logger.info("%s: converted to PDF by LibreOffice in %.1f s", path.name, time.perf_counter() - started)
    return data
