"""The webhooks' rules without a server: settings, the Marketo body, the token check, what a person's
values become in Dynamics, and the lines status and Step 3 show."""

from __future__ import annotations

from typing import Any, cast

import pytest
from pydantic import ValidationError

from bot.config import Settings
from bot.models import Direction, Entity, EntityPlan, FieldMapping
from bot.sync.convert import ConversionError
from bot.sync.live import changes_line, dynamics_webhook_url, webhooks_line
from bot.sync.reverse import person_values, written_back_fields
from bot.views.step3 import enable_sync_modal
from bot.webhooks_in import MarketoWebhook, WebhookIntake
from tests.unit.test_views_common import blocks_text


def _mapping(source: str, marketo: str, attribute_type: str = "StringType", marketo_type: str = "string",
             direction: Direction = Direction.both, **extra: Any) -> FieldMapping:
    return FieldMapping(source=source, read_name=source, attribute_type=attribute_type, marketo_name=marketo,
                        marketo_type=marketo_type, standard=True, direction=direction, **extra)


PLAN = EntityPlan(entity=Entity.lead, id_field="dynamicsLeadId", mappings=[
    _mapping("lastname", "lastName"),
    _mapping("numberofemployees", "numberOfEmployees", "IntegerType", "integer"),
    _mapping("revenue", "annualRevenue", "MoneyType", "currency"),
    _mapping("donotbulkemail", "unsubscribed", "BooleanType", "boolean"),
    _mapping("estimatedclosedate", "dynLeadEstimatedclosedate", "DateTimeType", "date", datetime_behavior="DateOnly"),
    _mapping("leadsourcecode", "leadSource", "PicklistType"),  # Marketo holds the label: written as its value
    _mapping("jobtitle", "title", direction=Direction.to_marketo),
])


def test_a_persons_values_become_dynamics_columns_of_the_fields_that_sync_that_way() -> None:
    person = {"lastName": "Lee", "numberOfEmployees": "12", "annualRevenue": 10.456, "unsubscribed": False,
              "dynLeadEstimatedclosedate": "2026-03-01", "leadSource": "Web", "title": "CFO", "email": "x@y.z"}
    reads: list[int] = []

    def options() -> dict[str, dict[str, int]]:
        reads.append(1)
        return {"leadsourcecode": {"Web": 8}}

    assert person_values(PLAN, person, options) == {
        "lastname": "Lee", "numberofemployees": 12, "revenue": 10.46, "donotbulkemail": False,
        "estimatedclosedate": "2026-03-01", "leadsourcecode": 8}
    assert reads == [1]
    assert person_values(PLAN, {"lastName": "", "numberOfEmployees": None}, options) == {}  # empty clears nothing
    assert reads == [1]  # no choice value: the options are not read
    assert written_back_fields(PLAN) == ["lastName", "numberOfEmployees", "annualRevenue", "unsubscribed",
                                         "dynLeadEstimatedclosedate", "leadSource"]
    with pytest.raises(ConversionError, match="numberOfEmployees"):
        person_values(PLAN, {"numberOfEmployees": "twelve"}, options)


def test_the_marketo_body_takes_a_numeric_lead_id_and_an_optional_event() -> None:
    assert MarketoWebhook.model_validate_json(b'{"leadId": 7}').event == "sync"
    assert MarketoWebhook.model_validate_json(b'{"leadId": 7, "event": "changed"}').lead_id == 7
    for bad in (b'{"leadId": "7"}', b'{"leadId": null}', b'{"leadId": 0}', b'{"leadId": 7, "event": "x"}', b"[]"):
        with pytest.raises(ValidationError):
            MarketoWebhook.model_validate_json(bad)


def test_the_token_is_required_and_the_endpoint_is_off_without_a_secret() -> None:
    def intake(**settings: Any) -> WebhookIntake:
        return WebhookIntake(cast(Any, None), cast(Any, None), Settings(**settings))

    assert intake().marketo_refusal({"x-webhook-token": ""}).status == 404
    on = intake(MARKETO_WEBHOOK_SECRET="s3cret")
    assert on.marketo_refusal({}).status == 401
    assert on.marketo_refusal({"x-webhook-token": "s3cre"}).status == 401
    assert on.marketo_refusal({"x-webhook-token": "s3cret"}) is None


def test_public_url_is_an_absolute_url_kept_without_its_trailing_slash() -> None:
    assert Settings(PUBLIC_URL="https://bot.example.com/").PUBLIC_URL == "https://bot.example.com"
    assert Settings(PUBLIC_URL="").PUBLIC_URL is None
    for bad in ("bot.example.com", "ftp://bot.example.com", "https://bot.example.com/?a=1"):
        with pytest.raises(ValidationError):
            Settings(PUBLIC_URL=bad)
    assert dynamics_webhook_url("https://b.example", "T1", "c 1") == \
        "https://b.example/dynamics/webhook?team=T1&connection=c+1"


def test_status_and_step3_say_whether_changes_come_by_webhook() -> None:
    assert changes_line(Settings(INCREMENTAL_SYNC_MINUTES=5)) == \
        "Changes: polled every 5 min (no webhooks: PUBLIC_URL not set)"
    live = Settings(INCREMENTAL_SYNC_MINUTES=0.5, PUBLIC_URL="https://bot.example.com")
    assert changes_line(live) == "Changes: webhooks + poll every 0.5 min"
    assert webhooks_line(Settings(), ["lead"]) is None
    line = webhooks_line(live, ["lead", "contact"])
    assert line is not None and "https://bot.example.com/dynamics/webhook" in line and "lead, contact" in line
    text = blocks_text(enable_sync_modal("c1", None, None, line).blocks)
    assert "Create/Update/Delete step for each of lead, contact" in text
    assert "Dataverse webhooks" not in blocks_text(enable_sync_modal("c1", None, None).blocks)
