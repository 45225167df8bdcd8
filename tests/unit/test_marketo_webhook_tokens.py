"""Lead tokens in the emulator's webhook templates: raw in URLs and headers, encoded in bodies."""

from __future__ import annotations

import json

from sandbox.marketo_webhooks import FieldInfo, render

FIELDS = [FieldInfo("id", "Id", "integer"), FieldInfo("email", "Email Address", "email"),
          FieldInfo("leadScore", "Lead Score", "score"), FieldInfo("unsubscribed", "Unsubscribed", "boolean"),
          FieldInfo("city", "City", "string")]
LEAD = {"id": 7, "email": "a+b@example.com", "leadScore": "12", "unsubscribed": True, "city": None}


def test_json_encoding_quotes_strings_itself_and_leaves_numbers_booleans_and_nulls_bare() -> None:
    body = render('{"id":{{lead.Id}},"e":{{ lead.email address }},"s":{{lead.leadScore}},'
                  '"u":{{lead.Unsubscribed}},"c":{{lead.City}},"x":{{lead.No Such Field}}}', LEAD, FIELDS, "json")
    assert json.loads(body) == {"id": 7, "e": "a+b@example.com", "s": 12, "u": True, "c": None, "x": None}


def test_form_encoding_percent_encodes_and_urls_are_sent_as_written() -> None:
    assert render("email={{lead.Email Address}}&id={{lead.Id}}", LEAD, FIELDS, "form") == "email=a%2Bb%40example.com&id=7"
    assert render("https://h/x?e={{lead.Email Address}}", LEAD, FIELDS, None) == "https://h/x?e=a+b@example.com"
