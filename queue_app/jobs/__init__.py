"""Scheduled jobs. Each job is one unit of work that calls domain services with an explicit `now`.

The embedded profile runs them in the web process (`run.py` starts a BackgroundScheduler); in
production exactly one `flask --app queue_app jobs run` process runs them and web workers never
schedule.
"""
