"""Discovery of custom tables reachable from people, and the Marketo custom-object plan for one."""

from __future__ import annotations

from bot.custom_object_models import TableLookup
from bot.dynamics.custom_tables import CustomTableMeta
from bot.models import AttributeMeta, FieldPlan
from bot.sync.custom_objects import (
    MAX_OBJECT_FIELDS,
    plan_custom_objects,
    reachable_tables,
    record_values,
)
from bot.views.custom_objects import custom_object_blocks


def _attr(name: str, kind: str = "StringType", display: str | None = None) -> AttributeMeta:
    return AttributeMeta(logical_name=name, display_name=display or name.title(), attribute_type=kind,
                         format="Text" if kind == "StringType" else None, is_custom=True)


def _table(name: str, lookups: dict[str, str], attrs: list[AttributeMeta] | None = None) -> CustomTableMeta:
    return CustomTableMeta(
        logical_name=name, entity_set=f"{name}s", primary_id=f"{name}id", display_name=name.title(),
        attributes=[_attr(f"{name}id", "UniqueidentifierType"), *(attrs or []),
                    *(_attr(col, "LookupType") for col in lookups)],
        lookups=[TableLookup(table=name, attribute=col, target=target) for col, target in lookups.items()])


PROJECT = _table("new_project", {"new_contactid": "contact", "new_accountid": "account"},
                 [_attr("new_name", display="Project Name"), _attr("new_budget", "MoneyType"),
                  _attr("new_photo", "ImageType"), _attr("new_startdate", "DateTimeType")])
NOTE = _table("new_projectnote", {"new_projectid": "new_project"}, [_attr("new_subject")])
COMMENT = _table("new_notecomment", {"new_noteid": "new_projectnote"})
BRANCH = _table("new_branch", {"new_accountid": "account"})
LONELY = _table("new_setting", {})


def test_tables_within_two_lookups_of_a_person_are_reachable_preferring_people_over_accounts() -> None:
    found = {r.table.logical_name: r for r in reachable_tables([PROJECT, NOTE, COMMENT, BRANCH, LONELY])}
    assert set(found) == {"new_project", "new_projectnote", "new_branch"}  # a comment is 3 hops away
    assert [h.attribute for h in found["new_project"].hops] == ["new_contactid"]
    assert [(h.attribute, h.target) for h in found["new_projectnote"].hops] == [
        ("new_projectid", "new_project"), ("new_contactid", "contact")]
    assert found["new_project"].refusal is None
    assert "links to a person" in (found["new_branch"].refusal or "")


def test_plan_names_the_type_its_dedupe_and_link_fields_and_refuses_what_cannot_fit() -> None:
    reachable = reachable_tables([PROJECT, NOTE, BRANCH])
    plans, refused = plan_custom_objects(reachable, {
        "new_project": ["new_projectid", "new_name", "new_budget", "new_photo", "new_contactid", "new_gone"],
        "new_projectnote": ["new_subject", "new_projectid"], "new_branch": [], "new_setting": []}, set())
    project, note = plans
    assert (project.api_name, project.display_name, project.dedupe_field) == (
        "dynNewProject", "Dyn New Project", "dynNewProjectId")
    assert (project.link.person, project.link.field_name) == ("contact", "dynamicsContactId")
    assert [(f.name, f.data_type) for f in project.fields] == [("newName", "string"), ("newBudget", "currency")]
    assert {r.source: r.reason for r in project.refused} == {
        "new_photo": "Image columns cannot be synced to Marketo", "new_gone": "no longer on new_project in Dynamics"}
    assert [f.name for f in note.fields] == ["newSubject", "newProjectid"]  # the project id is data, not the link
    assert note.select == ["new_projectnoteid", "new_subject", "_new_projectid_value"]
    assert [r.source for r in refused] == ["new_branch", "new_setting"]
    loaded = FieldPlan.model_validate({"entities": []})
    assert loaded.custom_objects == []  # stored plans without custom objects still load
    assert FieldPlan(entities=[], custom_objects=plans).model_dump()["custom_objects"][0]["api_name"] == "dynNewProject"


def test_plan_enforces_marketo_field_and_type_counts() -> None:
    wide = _table("new_wide", {"new_leadid": "lead"}, [_attr(f"new_col{i:02d}") for i in range(60)])
    reach = reachable_tables([wide])
    (plan,), _ = plan_custom_objects(reach, {"new_wide": [f"new_col{i:02d}" for i in range(60)]}, set())
    assert len(plan.fields) + 2 == MAX_OBJECT_FIELDS
    assert len(plan.refused) == 12 and "50 fields" in plan.refused[0].reason
    assert plan.link.lead_field == "dynamicsLeadId"
    full = {f"t{i}" for i in range(10)}
    plans, refused = plan_custom_objects(reach, {"new_wide": ["new_col00"]}, full)
    assert plans == [] and "10 custom object types" in refused[0].reason
    plans, _ = plan_custom_objects(reach, {"new_wide": ["new_col00"]}, {*list(full)[:9], "dynNewWide"})
    assert [p.api_name for p in plans] == ["dynNewWide"]  # its own type, made earlier, does not count twice


def test_fields_the_marketo_type_already_has_count_toward_its_limit() -> None:
    """Marketo cannot delete a field: those of columns dropped earlier still take room on the type."""
    wide = _table("new_wide", {"new_leadid": "lead"}, [_attr(f"new_col{i:02d}") for i in range(60)])
    dropped = frozenset(f"oldCol{i:02d}" for i in range(40))
    existing = {"dynNewWide": dropped | {"dynNewWideId", "dynamicsLeadId", "newCol00"}}
    columns = [f"new_col{i:02d}" for i in range(10)]
    (plan,), _ = plan_custom_objects(reachable_tables([wide]), {"new_wide": columns}, {"dynNewWide"}, existing)
    assert [f.source for f in plan.fields] == columns[:8]  # 43 there, new_col00 among them, and 7 new ones
    assert [r.source for r in plan.refused] == columns[8:]
    assert "dynNewWide already has 43" in plan.refused[0].reason and "cannot delete a field" in plan.refused[0].reason
    (other,), _ = plan_custom_objects(reachable_tables([wide]), {"new_wide": columns}, {"dynOther"},
                                      {"dynOther": existing["dynNewWide"]})
    assert other.refused == [], "only the table's own type counts"


def test_long_names_are_fitted_to_marketo_limits() -> None:
    name = "new_" + "x" * 70
    table = _table(name, {"new_contactid": "contact"}, [_attr(name + "col")])
    (plan,), _ = plan_custom_objects(reachable_tables([table]), {name: [name + "col"]}, set())
    assert len(plan.api_name) <= 50 and len(plan.dedupe_field) <= 50 and len(plan.fields[0].name) <= 50
    assert plan.api_name.isidentifier()
    values = record_values(plan, {f"{name}id": "g-1", f"{name}col": "v"}, "c-9")
    assert values == {plan.dedupe_field: "g-1", "dynamicsContactId": "c-9", plan.fields[0].name: "v"}


def test_a_table_refused_whole_is_shown_in_the_plan_with_its_reason() -> None:
    plans, refused = plan_custom_objects(reachable_tables([PROJECT]), {"new_project": ["new_name"]},
                                         {f"type{i}" for i in range(10)})
    assert plans == [] and "10 custom object types" in refused[0].reason
    text = str([b.to_dict() for b in custom_object_blocks(FieldPlan(entities=[], custom_refused=refused))])
    assert "`new_project` not synced" in text and "10 custom object types" in text
    assert custom_object_blocks(FieldPlan(entities=[])) == []
