"""Outbound e-mail: the outbox (``outbox.queue_mail``), its templates, the sender (SMTP or a
Maildir) and the background worker that sends what was queued."""
