"""The audit log: who did what, when, through which door, and whether it was allowed.

`models.AuditEntry` is one row per staff or admin action; `services.record` writes one;
`hooks.py` makes the log complete by construction (every mutating request of a signed-in
member of staff or of an API token, every refusal, see there); `views.py` is `/admin/audit`;
`cli.py` is `flask audit show`.
"""
