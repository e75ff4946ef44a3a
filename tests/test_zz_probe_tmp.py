from typing import Any
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st
from collector.model import Reading
from tests.test_lineprotocol import batches, texts, write_and_read, expected_ns, documented, fresh_db  # noqa
from tests.influxd import Influxd

@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
@given(batch=batches(), m=texts(min_size=1).filter(lambda m: m[0] not in "#\t"))
def test_meas(influxd: Influxd, fresh_db: Any, batch, m) -> None:
    batch = [Reading(m, r.value, r.time, r.source, r.site, r.device_id, r.device, r.tags, r.label) for r in batch]
    by_time = write_and_read(influxd, fresh_db(), batch)
    for r in batch:
        assert by_time[expected_ns(r.time)]["_measurement"] == documented(m)
