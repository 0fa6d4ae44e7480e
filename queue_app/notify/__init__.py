"""Messages to customers through an outbox: e-mail (SMTP), SMS and WhatsApp (HTTP gateway)."""
