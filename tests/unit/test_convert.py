import pytest

from bot.models import Entity, EntityPlan, FieldMapping
from bot.sync import convert as convert_module
from bot.sync.convert import FORMATTED, ConversionError, RecordConverter, convert_record

GUID = "9a1f0000-0000-0000-0000-000000000001"


def mapping(source: str, kind: str, mtype: str, *, name: str | None = None, read: str | None = None,
            behavior: str | None = None) -> FieldMapping:
    return FieldMapping(source=source, read_name=read or source, attribute_type=kind, datetime_behavior=behavior,
                        marketo_name=name or source, marketo_type=mtype, standard=False)


def convert(m: FieldMapping, **values) -> dict:
    plan = EntityPlan(entity=Entity.lead, mappings=[m], id_field="dynamicsLeadId")
    return convert_record({"leadid": GUID, **values}, plan)


def one(m: FieldMapping, **values):
    out = convert(m, **values)
    assert out["dynamicsLeadId"] == GUID
    return out.get(m.marketo_name, "<absent>")


def test_id_and_email():
    plan = EntityPlan(entity=Entity.contact, id_field="dynamicsContactId", mappings=[
        mapping("emailaddress1", "StringType", "email", name="email")])
    out = convert_record({"contactid": GUID, "emailaddress1": " ann@x.com "}, plan)
    assert out == {"dynamicsContactId": GUID, "email": "ann@x.com"}


@pytest.mark.parametrize("kind", ["PicklistType", "StateType", "StatusType", "MultiSelectPicklistType"])
def test_labels(kind):
    m = mapping("statuscode", kind, "string")
    assert one(m, statuscode=1, **{"statuscode" + FORMATTED: "New"}) == "New"
    assert one(m, statuscode=3) == "3"  # no annotation: the raw value rather than nothing
    assert one(m, statuscode=None) == "<absent>"


@pytest.mark.parametrize("kind", ["LookupType", "OwnerType", "CustomerType"])
def test_lookups(kind):
    m = mapping("ownerid", kind, "string", read="_ownerid_value")
    assert one(m, _ownerid_value=GUID, **{"_ownerid_value" + FORMATTED: "Ann Lee"}) == "Ann Lee"
    assert one(m, _ownerid_value=GUID) == GUID
    assert one(m, _ownerid_value=None) == "<absent>"


def test_uniqueidentifier():
    assert one(mapping("new_ref", "UniqueidentifierType", "string"), new_ref=GUID) == GUID


def test_money():
    m = mapping("revenue", "MoneyType", "currency")
    assert one(m, revenue=20000.456, **{"revenue" + FORMATTED: "$20,000.46"}) == 20000.46
    assert isinstance(one(m, revenue=5), float)


def test_numbers():
    assert one(mapping("n", "IntegerType", "integer"), n=42) == 42
    assert one(mapping("n", "IntegerType", "integer"), n=42.0) == 42
    assert one(mapping("d", "DecimalType", "float"), d="1.5") == 1.5
    assert one(mapping("d", "DoubleType", "float"), d=2) == 2.0
    assert one(mapping("b", "BigIntType", "string"), b=9007199254740993) == "9007199254740993"


def test_dates():
    date_only = mapping("birthday", "DateTimeType", "date", behavior="DateOnly")
    assert one(date_only, birthday="1990-05-17T00:00:00Z") == "1990-05-17"
    assert one(date_only, birthday="1990-05-17") == "1990-05-17"
    stamp = mapping("modifiedon", "DateTimeType", "datetime", behavior="UserLocal")
    assert one(stamp, modifiedon="2025-03-01T10:00:00Z") == "2025-03-01T10:00:00+00:00"
    assert one(stamp, modifiedon="2025-03-01T10:00:00") == "2025-03-01T10:00:00+00:00"


def test_booleans():
    m = mapping("donotbulkemail", "BooleanType", "boolean", name="unsubscribed")
    assert one(m, donotbulkemail=True, **{"donotbulkemail" + FORMATTED: "Do Not Allow"}) is True
    assert one(m, donotbulkemail=False) is False
    assert one(m, donotbulkemail="false") is False
    assert one(m, donotbulkemail=None) == "<absent>"


def test_strings_trimmed_and_cut():
    m = mapping("new_notes", "MemoType", "string")
    assert one(m, new_notes="  hello  ") == "hello"
    assert one(m, new_notes="x" * 1000) == "x" * 255
    assert one(m, new_notes="   ") == "<absent>"
    assert one(mapping("websiteurl", "StringType", "url"), websiteurl="https://x.com") == "https://x.com"


def test_null_and_missing_keys_are_omitted():
    m = mapping("firstname", "StringType", "string", name="firstName")
    assert convert(m, firstname=None) == {"dynamicsLeadId": GUID}
    assert convert(m) == {"dynamicsLeadId": GUID}


@pytest.mark.parametrize(("m", "value"), [
    (mapping("n", "IntegerType", "integer"), "abc"),
    (mapping("n", "IntegerType", "integer"), 1.5),
    (mapping("d", "DateTimeType", "datetime"), "yesterday"),
    (mapping("b", "BooleanType", "boolean"), "maybe"),
])
def test_bad_values_raise_naming_the_column(m, value):
    with pytest.raises(ConversionError) as info:
        convert(m, **{m.source: value})
    assert f"lead.{m.source}" in info.value.user_message


def test_record_converter_builds_field_converters_once(monkeypatch):
    built = []
    original = convert_module.field_converter
    monkeypatch.setattr(convert_module, "field_converter", lambda m: built.append(m) or original(m))
    plan = EntityPlan(entity=Entity.lead, id_field="dynamicsLeadId", mappings=[
        mapping("firstname", "StringType", "string", name="firstName"),
        mapping("revenue", "MoneyType", "currency", name="annualRevenue"),
        mapping("leadsourcecode", "PicklistType", "string", name="leadSource")])
    to_marketo = RecordConverter(plan)
    records = [{"leadid": f"id-{i}", "firstname": f" Ann {i} ", "revenue": i, "leadsourcecode": 1,
                "leadsourcecode" + FORMATTED: "Web"} for i in range(50)]
    converted = [to_marketo(record) for record in records]
    assert len(built) == 3
    assert converted == [convert_record(record, plan) for record in records]
    assert converted[7] == {"dynamicsLeadId": "id-7", "firstName": "Ann 7", "annualRevenue": 7.0, "leadSource": "Web"}


def test_a_mapping_without_converter_fails_each_record_not_the_plan():
    plan = EntityPlan(entity=Entity.lead, id_field="dynamicsLeadId",
                      mappings=[mapping("new_score", "IntegerType", "score")])
    to_marketo = RecordConverter(plan)
    with pytest.raises(ConversionError) as info:
        to_marketo({"leadid": GUID, "new_score": 3})
    assert "score" in info.value.user_message


def test_send_nulls_clears_empty_fields_but_never_booleans_nor_an_accounts_name():
    lead = EntityPlan(entity=Entity.lead, id_field="dynamicsLeadId", mappings=[
        mapping("telephone1", "StringType", "phone", name="phone"),
        mapping("jobtitle", "StringType", "string", name="title"),
        mapping("revenue", "MoneyType", "currency", name="annualRevenue"),
        mapping("donotbulkemail", "BooleanType", "boolean", name="unsubscribed")])
    record = {"leadid": GUID, "telephone1": None, "jobtitle": "  ", "revenue": None, "donotbulkemail": None}
    assert RecordConverter(lead)(record) == {"dynamicsLeadId": GUID}  # the initial load omits them
    assert RecordConverter(lead, send_nulls=True)(record) == {
        "dynamicsLeadId": GUID, "phone": None, "title": None, "annualRevenue": None}

    account = EntityPlan(entity=Entity.account, id_field="externalCompanyId", mappings=[
        mapping("name", "StringType", "string", name="company"),
        mapping("websiteurl", "StringType", "url", name="website")])
    assert RecordConverter(account, send_nulls=True)({"accountid": GUID, "name": None, "websiteurl": None}) == {
        "externalCompanyId": GUID, "website": None}
