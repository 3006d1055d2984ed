"""What every unit of work writes just before COMMIT, in this order (``create_app`` hands the
list to the unit of work; scripts run it themselves)."""

from __future__ import annotations

from app.accesslog.service import write_access_log
from app.changes.service import write_changes
from app.core.unit_of_work import BeforeCommit
from app.idempotency.service import store_idempotent_response
from app.webhooks.outbox import write_outbox

BEFORE_COMMIT: tuple[BeforeCommit, ...] = (
    write_changes,  # the sync feed's rows, in commit order
    write_access_log,  # who else read or changed a client's data
    write_outbox,  # the webhook deliveries of the events services recorded
    store_idempotent_response,  # last: the response an Idempotency-Key replays
)
