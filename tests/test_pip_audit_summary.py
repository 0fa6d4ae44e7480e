"""`make audit`'s pip-audit step (tools/pip_audit.py): a known vulnerability fails it, and a
package that could not be audited is never counted as passed."""

import importlib.util
from pathlib import Path

import pytest

_spec = importlib.util.spec_from_file_location(
    "pip_audit_tool", Path(__file__).resolve().parent.parent / "tools" / "pip_audit.py"
)
tool = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(tool)

CLEAN = {"name": "flask", "version": "3.1.3", "vulns": []}
EDITABLE = {"name": "queue-app", "skip_reason": "distribution marked as editable"}
UNREACHABLE = {
    "name": "werkzeug",
    "skip_reason": "Dependency not found on PyPI and could not be audited: werkzeug (3.1.9)",
}
VULNERABLE = {
    "name": "jinja2",
    "version": "3.1.2",
    "vulns": [
        {"id": "GHSA-h5c8-rqwp-cp95", "fix_versions": ["3.1.3"], "aliases": ["CVE-2024-22195"]}
    ],
}


def test_all_audited_and_clean_passes():
    lines, status = tool.summarise({"dependencies": [CLEAN, EDITABLE]}, ignored=0, strict=True)
    assert status == 0
    assert lines == [
        "pip-audit: 1 installed packages, 1 audited, 0 known vulnerabilities (0 ids ignored)"
    ]


@pytest.mark.parametrize("strict", [False, True])
def test_a_known_vulnerability_fails_and_names_its_fix(strict):
    lines, status = tool.summarise({"dependencies": [CLEAN, VULNERABLE]}, ignored=0, strict=strict)
    assert status == 1
    assert lines[0] == "jinja2 3.1.2: GHSA-h5c8-rqwp-cp95 (CVE-2024-22195); fixed in: 3.1.3"
    assert "2 audited, 1 known vulnerabilities" in lines[1]


def test_packages_left_unaudited_are_reported_and_fail_when_strict():
    report = {"dependencies": [CLEAN, UNREACHABLE, EDITABLE]}
    lines, status = tool.summarise(report, ignored=1, strict=False)
    assert status == 0
    assert "2 installed packages, 1 audited" in lines[0]
    assert "1 NOT audited: Dependency not found on PyPI and could not be audited (1)" in lines[0]
    assert lines[1].startswith("pip-audit: WARNING: 1 of 2 packages could not be audited")
    assert tool.summarise(report, ignored=1, strict=True)[1] == 1


def test_the_ignore_file_gives_ids_and_keeps_reasons_out(tmp_path):
    path = tmp_path / "ignore"
    path.write_text(
        "# header\n\nGHSA-aaaa-bbbb-cccc  # no fix yet; the parser is not used\nPYSEC-2099-1\n"
    )
    assert tool.ignored_ids(path) == ["GHSA-aaaa-bbbb-cccc", "PYSEC-2099-1"]
    assert tool.ignored_ids(tmp_path / "missing") == []
