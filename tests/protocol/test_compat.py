"""What a protocol-1 store client is sent (protocol/compat.py, docs/protocol.md)."""

from __future__ import annotations

from protocol.compat import P2_CONFIG_FIELDS, P2_STATION_FIELDS, config_for, job_for
from protocol.config import StationConfig, StoreConfig, VersionedStoreConfig
from protocol.jobs import Job
from tests.store_client.factories import make_job


def test_a_protocol_1_client_can_read_what_it_is_sent() -> None:
    config = VersionedStoreConfig(
        name="S", store_id="s-1", version=3, timezone="Asia/Shanghai", ring="canary",
        min_client_version="0.2", chit={"header": "NEW"}, releases=("r1",),
        prep_s_by_sku={"B01": 300}, prep_s_by_category={"burgers": 480},
        stations=[{"station_id": "grill", "name": "Grill", "prep_s": 600}],
        board={"names": True, "ready_s": 300},
    )  # fmt: skip
    data = config.model_dump(mode="json")
    old = config_for(1, data)
    assert not P2_CONFIG_FIELDS & old.keys() and old["version"] == 3
    # a protocol-1 client's model is this one without the protocol-2 fields
    assert set(old) == set(VersionedStoreConfig.model_fields) - P2_CONFIG_FIELDS
    assert set(StoreConfig.model_fields) - P2_CONFIG_FIELDS <= set(old)
    assert config_for(2, data) == data and data["board"]["ready_s"] == 300
    assert "prep_s" not in old["stations"][0] and data["stations"][0]["prep_s"] == 600
    assert set(old["stations"][0]) == set(StationConfig.model_fields) - P2_STATION_FIELDS

    job = make_job(1).model_dump(mode="json")
    job["doc"]["timezone"] = "Asia/Shanghai"
    assert "timezone" not in job_for(1, job)["doc"] and job_for(2, job) == job
    assert Job.model_validate(job_for(1, job)).doc.timezone is None
