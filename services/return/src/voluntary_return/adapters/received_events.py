"""The return service's inbox: each event it received (identification's, the exchange's), applied once and kept
with the country owning its aggregate, so that each country lists only its own. Ids and codes only: the event
schemas allow nothing else."""

from typing import Any

from plumbing.events import owner_country
from plumbing.inbox import Inbox

SERVICE = "return"


def inbox(database: Any) -> Inbox:
    # Event ids are unique platform-wide, so one inbox per consuming service is enough.
    return Inbox(database["received_events"], SERVICE, keep={"country": owner_country})
