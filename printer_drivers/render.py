"""``render(doc, profile) -> bytes``: a ticket document as ESC/POS bytes. Pure."""

from __future__ import annotations

from printer_drivers.layout import Chit
from printer_drivers.profile import RenderProfile
from printer_drivers.templates import TEMPLATES
from protocol.jobs import TicketDoc


def render(doc: TicketDoc, profile: RenderProfile) -> bytes:
    """The chit for ``doc.template``, from ESC @ to the cut; one copy (callers repeat it).

    Same input, same bytes: nothing here reads the clock or the network.
    """
    chit = Chit(profile)
    TEMPLATES[doc.template](chit, doc)
    return chit.bytes()
