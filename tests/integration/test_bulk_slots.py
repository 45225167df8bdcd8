"""The Bulk Import queue slots shared in Redis: a limit across workers, released, and recovered after a death."""

from __future__ import annotations

import time

from bot.models import Entity
from bot.store import Keys
from bot.store.bulk_slots import BulkSlots
from bot.sync.bulk import cell
from bot.sync.write_path import takes_bulk


def test_slots_stop_at_the_limit_are_released_and_lapse_when_not_renewed(redis_client, key_prefix) -> None:
    one, other = BulkSlots(redis_client, Keys(key_prefix)), BulkSlots(redis_client, Keys(key_prefix))
    assert one.take("w1:a", 2, 60) and other.take("w2:b", 2, 0.3)
    assert not one.take("w1:c", 2, 60)  # the queue is full for every worker
    assert one.take("w1:a", 2, 60)  # a holder renews its own slot
    assert one.take("w1:resumed", 2, 60, force=True) and one.held() == 3  # an import already in the queue
    one.release("w1:resumed")
    deadline = time.monotonic() + 5
    while other.held() > 1:  # w2 died: its slot lapses without renewal
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert one.take("w1:c", 2, 60)
    one.renew(["w1:a", "w2:b"], 60)  # renewing does not bring a lapsed slot back
    assert one.held() == 2


def test_which_path_an_entity_takes_and_how_cells_are_written() -> None:
    assert takes_bulk(Entity.lead, 20_001, 20_000) and not takes_bulk(Entity.lead, 20_000, 20_000)
    assert takes_bulk(Entity.contact, 1, 0) and not takes_bulk(Entity.contact, 10**7, -1)
    assert not takes_bulk(Entity.account, 10**7, 0)  # companies have no bulk import
    assert [cell(v) for v in (None, True, False, 5, 2.5, "+1 555")] == ["", "true", "false", "5", "2.5", "+1 555"]
