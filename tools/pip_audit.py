"""`make audit`: pip-audit over the packages installed in the virtual environment.

Fails when an installed package has a known vulnerability that `.pip-audit-ignore` does not
list (each entry there gives its reason; only for a vulnerability with no fixed release yet).
pip-audit asks PyPI about each installed version; a package it cannot ask about is skipped,
not passed: the summary line says how many were audited and how many could not be. When some
could not be (PyPI's vulnerability data out of reach), the audit says so on a WARNING line and
passes, unless PIP_AUDIT_STRICT=1, which makes any package left unaudited a failure.

    python tools/pip_audit.py
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path

IGNORE_FILE = Path(__file__).resolve().parent.parent / ".pip-audit-ignore"
EDITABLE = "distribution marked as editable"  # queue_app itself: its own code, not a dependency


def ignored_ids(path: Path = IGNORE_FILE) -> list[str]:
    """The vulnerability ids of the ignore file: one per line, `#` starts a comment."""
    if not path.exists():
        return []
    ids = []
    for line in path.read_text().splitlines():
        entry = line.split("#", 1)[0].strip()
        if entry:
            ids.append(entry)
    return ids


def summarise(report: dict, *, ignored: int, strict: bool) -> tuple[list[str], int]:
    """The lines to print about pip-audit's JSON report, and the exit status."""
    dependencies = [
        d
        for d in report.get("dependencies", [])
        if not d.get("skip_reason", "").startswith(EDITABLE)
    ]
    skipped = [d for d in dependencies if "skip_reason" in d]
    found = [(d, v) for d in dependencies for v in d.get("vulns", [])]
    lines = []
    for dependency, vuln in found:
        fixes = ", ".join(vuln.get("fix_versions") or []) or "no fixed release"
        aliases = ", ".join(vuln.get("aliases") or [])
        also = f" ({aliases})" if aliases else ""
        lines.append(
            f"{dependency['name']} {dependency['version']}: {vuln['id']}{also}; fixed in: {fixes}"
        )
    summary = (
        f"pip-audit: {len(dependencies)} installed packages, "
        f"{len(dependencies) - len(skipped)} audited, {len(found)} known vulnerabilities"
        f" ({ignored} ids ignored)"
    )
    if skipped:
        reasons = Counter(d["skip_reason"].split(": ", 1)[0] for d in skipped)
        summary += f"; {len(skipped)} NOT audited: " + "; ".join(
            f"{reason} ({n})" for reason, n in reasons.items()
        )
    lines.append(summary)
    if found:
        return lines, 1
    if skipped:
        lines.append(
            f"pip-audit: WARNING: {len(skipped)} of {len(dependencies)} packages could not be"
            " audited" + ("" if strict else "; PIP_AUDIT_STRICT=1 makes this a failure")
        )
        return lines, 1 if strict else 0
    return lines, 0


def main() -> int:
    ids = ignored_ids()
    with tempfile.TemporaryDirectory() as tmp:
        report = Path(tmp) / "pip-audit.json"
        command = [sys.executable, "-m", "pip_audit", "--skip-editable"]
        command += ["--progress-spinner", "off", "--desc", "off"]
        command += ["--format", "json", "--output", str(report)]
        for vuln_id in ids:
            command += ["--ignore-vuln", vuln_id]
        # a fixed command and the ignore file's ids as arguments, no shell
        run = subprocess.run(command, check=False, capture_output=True, text=True)  # nosec B603
        if not report.exists():
            print(run.stdout + run.stderr, file=sys.stderr)
            print(f"pip-audit failed (exit {run.returncode}) without a report", file=sys.stderr)
            return run.returncode or 1
        data = json.loads(report.read_text())
    lines, status = summarise(
        data, ignored=len(ids), strict=os.environ.get("PIP_AUDIT_STRICT") == "1"
    )
    print("\n".join(lines))
    return status


if __name__ == "__main__":
    sys.exit(main())
