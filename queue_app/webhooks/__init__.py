"""Webhooks: signed HTTP POSTs to the bank's systems when something happens.

`models.py` (endpoints and deliveries), `events.py` (what each event says), `receivers.py`
(the delivery rows, written in the unit of work of the change), `services.py` (endpoint
management, delivering with a claim and a lease, replay), `signing.py` (HMAC-SHA256),
`jobs.py` (`deliver_webhooks`, every 30 s), the admin pages in `admin/webhooks.py`.
"""
