"""Start queue_app with the embedded defaults: SQLite, in-process Socket.IO and scheduler.

`make run` prepares everything first (environment, migrations, demo data) and then runs this.
"""

import os

from queue_app import create_app
from queue_app.demo.data import DEMO_DEVICES
from queue_app.extensions import socketio

HOST = os.environ.get("HOST", "127.0.0.1")
PORT = int(os.environ.get("PORT", "5000"))


def banner(app) -> str:
    base = f"http://{HOST}:{PORT}"
    database = app.config["SQLALCHEMY_DATABASE_URI"].split(":")[0]
    lines = [
        "",
        f"queue_app is running ({app.config['PROFILE']} profile, {database})",
        f"  start page        {base}/",
        f"  API branches      {base}/api/v1/branches",
        f"  API services      {base}/api/v1/branches/JKT01/services",
        f"  OpenAPI document  {base}/api/v1/openapi.json",
        f"  health            {base}/healthz   (ready: {base}/readyz)",
        f"  counter screen    {base}/counter/   (sign in as budi.santoso)",
        f"  devices (admin)   {base}/admin/devices   (sign in as admin or dewi.lestari)",
        f"  branch settings   {base}/admin/branches/JKT01/settings   (admin or dewi.lestari)",
        f"  branch on a phone {base}/b/JKT01   (wait now, busy hours, join the queue, book)",
        f"  book on a phone   {base}/b/JKT01/book",
        f"  feedback tablet   {base}/feedback/tablet/   (pair it with a counter on /admin/devices)",
        f"  CX metrics        {base}/cx/metrics   (sign in as lina.marlina)",
        f"  CX cases          {base}/cx/cases",
        f"  weekly review     {base}/cx/review",
        f"  live dashboard    {base}/dashboard/   (dewi.lestari, lina.marlina, rudi.hartono)",
        f"  alert thresholds  {base}/admin/branches/JKT01/alerts   (admin or dewi.lestari)",
        f"  reports           {base}/reports/   (staffing advice: {base}/reports/staffing)",
    ]
    if app.config["PROFILE"] != "production":
        # the demo devices' tokens are public: demo only (see queue_app/demo/data.py)
        for kind, name, branch, token in DEMO_DEVICES:
            label = f"{kind} {branch}"
            lines.append(f"  {label:<18}{base}/{kind}/?device_token={token}  ({name}, demo)")
    lines += [
        "  demo accounts     admin, dewi.lestari (manager JKT01), budi.santoso (staff JKT01),",
        "                    lina.marlina (CX agent), rudi.hartono (executive) ...",
        "                    password: demo-pass",
        "  API token         .venv/bin/flask --app queue_app tokens create budi.santoso",
        "Press Ctrl+C to stop.",
        "",
    ]
    return "\n".join(lines)


def main():
    app = create_app(os.environ.get("QUEUE_APP_PROFILE", "embedded"))
    if app.config["SCHEDULER_ENABLED"]:
        from queue_app.jobs.scheduler import start_background

        start_background(app)
    print(banner(app), flush=True)
    socketio.run(app, host=HOST, port=PORT, allow_unsafe_werkzeug=True, use_reloader=False)


if __name__ == "__main__":
    main()
