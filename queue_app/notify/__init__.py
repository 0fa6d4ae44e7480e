"""Messages to customers through an outbox: e-mail (SMTP), SMS and WhatsApp (HTTP gateway).

`receivers.init_notify(app)` connects the outbox to the domain events; `services.deliver_due`
sends; `jobs.py` holds the scheduled jobs (delivery, appointment reminders)."""
