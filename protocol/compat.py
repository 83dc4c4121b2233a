"""What each store-link protocol version carries (DESIGN.md §5.3, docs/rollout.md).

Models refuse unknown fields, so a client built for protocol 1 would close the link on
a config carrying a field it does not know. The broker keeps serving every protocol in
``SUPPORTED_PROTOCOLS``: it negotiates per link (``hello.protocol``) and sends a
protocol-1 client its documents without what protocol 2 added. A protocol-1 client
then behaves as it always did (standard chits, no release shown).

Protocol 2 (this build): store configs carry ``timezone``, ``ring``,
``min_client_version``, ``chit`` (the kitchen chit layout), ``releases``, the prep times
``prep_s_by_category`` and ``prep_s_by_sku`` and each station's ``prep_s``, ``board``
(the pickup board's settings: the broker's alone, no store client reads them); a job's
document carries ``timezone``. A protocol-1 client prints times in the offset the
channel stamped, as it always did.
"""

from __future__ import annotations

from typing import Any

#: Store config fields a protocol-1 client does not know.
P2_CONFIG_FIELDS = frozenset(
    {
        "timezone",
        "ring",
        "min_client_version",
        "chit",
        "releases",
        "prep_s_by_category",
        "prep_s_by_sku",
        "board",
    }
)
#: Station fields (``stations[]``) a protocol-1 client does not know.
P2_STATION_FIELDS = frozenset({"prep_s"})
#: Fields of a job's document (``TicketDoc``) a protocol-1 client does not know.
P2_DOC_FIELDS = frozenset({"timezone"})


def config_for(protocol: int, config: dict[str, Any]) -> dict[str, Any]:
    """A store config (as JSON data) for a client speaking ``protocol``."""
    if protocol >= 2:
        return config
    out = {k: v for k, v in config.items() if k not in P2_CONFIG_FIELDS}
    if isinstance(out.get("stations"), list):
        out["stations"] = [
            {k: v for k, v in st.items() if k not in P2_STATION_FIELDS}
            if isinstance(st, dict)
            else st
            for st in out["stations"]
        ]
    return out


def job_for(protocol: int, job: dict[str, Any]) -> dict[str, Any]:
    """A job (as JSON data) for a client speaking ``protocol``."""
    doc = job.get("doc")
    if protocol >= 2 or not isinstance(doc, dict) or not P2_DOC_FIELDS & doc.keys():
        return job
    return {**job, "doc": {k: v for k, v in doc.items() if k not in P2_DOC_FIELDS}}
