"""The bookkeeping of an approval's effects: which steps are done, which Marketo fields it created."""

from __future__ import annotations

from bot.models import Approval, EffectStep


def approval(**changes: object) -> Approval:
    return Approval(team_id="T1", connection_id="c1", requester="U1", expires_at=1_800_000_000).model_copy(
        update=changes)


def test_a_step_is_recorded_once_and_in_order() -> None:
    fresh = approval()
    assert not any(fresh.done(step) for step in EffectStep)
    locked = fresh.with_step(EffectStep.org_locked)
    assert locked.done(EffectStep.org_locked) and not locked.done(EffectStep.fields_created)
    again = locked.with_step(EffectStep.org_locked).with_step(EffectStep.fields_created)
    assert again.effects_done == [EffectStep.org_locked, EffectStep.fields_created]
    assert fresh.effects_done == [], "the original is left as it was"


def test_fields_sent_may_exist_until_marketo_answers() -> None:
    fresh = approval()
    assert not fresh.may_have_created_fields
    sent = fresh.sending_fields(["a", "b", "c"])
    assert sent.may_have_created_fields and sent.fields_created == []
    answered = sent.fields_answered(created=["a"])
    assert (answered.fields_created, answered.fields_sent) == (["a"], [])
    assert answered.may_have_created_fields
    assert answered.sending_fields(["b"]).fields_answered(["b"]).fields_created == ["a", "b"]


def test_a_refusal_of_every_field_leaves_nothing_created() -> None:
    answered = approval().sending_fields(["a", "b"]).fields_answered(created=[])
    assert answered.fields_created == [] and not answered.may_have_created_fields


def test_an_attempt_whose_answer_was_lost_may_have_created_fields() -> None:
    """An attempt died after sending `b`: whatever the retry finds, `b` may exist because of it."""
    lost = approval().sending_fields(["b"])
    retried = lost.sending_fields(["b"]).fields_answered(created=[])
    assert retried.fields_created == [] and retried.fields_unknown and retried.may_have_created_fields
