"""A 50 MB edXML document is built and read with memory far below its size.

Measured in fresh subprocesses as the growth of peak RSS over the RSS before
(``/proc/self/clear_refs`` resets the peak), which counts libxml2's memory too
(tracemalloc would only see Python's).
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import schemas.edxml as edxml
from schemas.edxml import EdxmlLimits
from tests.fixtures.edxml import samples
from tests.support.config import ROOT

ATTACHMENT_BYTES = 37_500_000  # base64 makes it a 50 MB document

MEASURE = textwrap.dedent(
    """
    import hashlib, json, resource, sys
    from pathlib import Path

    import schemas.edxml as edxml
    from tests.fixtures.edxml.samples import write_big_document

    def rss_kib(field):
        with open("/proc/self/status") as lines:
            return next(int(line.split()[1]) for line in lines if line.startswith(field))

    mode, path, size = sys.argv[1], Path(sys.argv[2]), int(sys.argv[3])
    try:  # Linux: reset the peak (VmHWM) to the current RSS, then read the new peak
        with open("/proc/self/clear_refs", "w") as clear:
            clear.write("5")
        start = rss_kib("VmRSS:")
        growth_kib = lambda: rss_kib("VmHWM:") - start
    except OSError:  # elsewhere: ru_maxrss, blind to anything under the import-time peak
        start = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        growth_kib = lambda: resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - start
    if mode == "build":
        attachment = write_big_document(path, size)
        result = {"sha256": attachment.sha256}
    else:
        with edxml.parse(path) as document:
            (attachment,) = document.attachments
            digest = hashlib.sha256()
            with attachment.open() as stream:
                while chunk := stream.read(1 << 16):
                    digest.update(chunk)
            result = {"sha256": attachment.sha256, "size": attachment.size,
                      "reread": digest.hexdigest(), "issues": len(edxml.validate(path))}
    print(json.dumps({**result, "growth_bytes": growth_kib() * 1024}))
    """
)


def measure(mode: str, path: Path) -> dict[str, object]:
    completed = subprocess.run(
        [sys.executable, "-c", MEASURE, mode, str(path), str(ATTACHMENT_BYTES)],
        cwd=ROOT,
        capture_output=True,
        check=True,
        timeout=60,
    )
    result: dict[str, object] = json.loads(completed.stdout)
    return result


@pytest.mark.processes
def test_50mb_document_built_and_parsed_in_bounded_memory(tmp_path: Path) -> None:
    path = tmp_path / "ho-so-du-an.edxml"
    built = measure("build", path)
    size = path.stat().st_size
    assert size > 50_000_000
    parsed = measure("parse", path)
    assert parsed["size"] == ATTACHMENT_BYTES
    assert parsed["sha256"] == parsed["reread"] == built["sha256"]
    assert parsed["issues"] == 0
    # Measured: about 3 MB to parse and 5 MB to build a 50 MB document (0.06x, 0.1x).
    for mode, result in (("build", built), ("parse", parsed)):
        growth = result["growth_bytes"]
        assert isinstance(growth, int)
        assert growth < size / 4, f"{mode}: {growth / 2**20:.1f} MiB for {size / 2**20:.1f} MiB"


def test_attachment_over_the_memory_threshold_goes_through_a_temp_file(tmp_path: Path) -> None:
    path = tmp_path / "to-trinh.edxml"
    original = samples.write_big_document(path, 3_000_000)
    limits = EdxmlLimits(spool_memory_bytes=256 * 1024)
    with edxml.parse(path, limits=limits) as document:
        (attachment,) = document.attachments
        assert (attachment.size, attachment.sha256) == (original.size, original.sha256)
        with attachment.open() as stream, original.open() as expected:
            assert (
                hashlib.sha256(stream.read()).digest() == hashlib.sha256(expected.read()).digest()
            )


def test_builder_writes_in_chunks(tmp_path: Path) -> None:
    writes: list[int] = []

    class Recorder:
        def write(self, data: bytes) -> int:
            writes.append(len(data))
            return len(data)

    edxml.build(samples.document(attachments=[samples.big_attachment(2_000_000)]), Recorder())  # type: ignore[arg-type]
    assert sum(writes) > 2_600_000  # base64 of 2 MB, and the envelope
    assert max(writes) < 1_000_000  # never the whole attachment in one piece
