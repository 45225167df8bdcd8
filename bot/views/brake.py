"""The mass-change brake's request to the team leads (numbers, examples, Approve / Discard) and its
decided form, and the status line of a held entity."""

from __future__ import annotations

from slack_sdk.models.blocks import ActionsBlock, Block, HeaderBlock

from bot.models import BrakeStatus, HeldChange, MassChangeHold
from bot.views import ids
from bot.views.kit import (
    ENTITY_PLURAL,
    MAX_MESSAGE_BLOCKS,
    Message,
    button,
    confirm,
    context,
    escape,
    fit,
    mention,
    number,
    section,
    sections,
    when,
)

HELD_STATUS = "held: waiting for a team lead"


def hold_value(hold: MassChangeHold) -> str:
    """What the Approve / Discard buttons carry: the connection and the entity (ids only)."""
    return f"{hold.connection_id}:{hold.entity.value}"


def _example_line(change: HeldChange) -> str:
    who = f"`{escape(change.id)}`" + (f" ({escape(change.email)})" if change.email else "")
    if change.deleted:
        return f"• {who}: would be marked deleted"
    return f"• {who}: would change {escape(', '.join(change.fields))}"


def _facts(hold: MassChangeHold) -> list[Block]:
    name = ENTITY_PLURAL[hold.entity]
    blocks: list[Block] = [section(
        f"*{name}*: this cycle would mark *{number(hold.deletes)}* persons deleted and overwrite "
        f"*{number(hold.overwrites)}* existing records (limit {number(hold.limit)}). Nothing was written; "
        f"the changes wait in Dynamics. Held {when(hold.held_at)}.")]
    if hold.examples:
        blocks += sections([_example_line(change) for change in hold.examples], "*Examples*")
    return blocks


def brake_request_message(hold: MassChangeHold) -> Message:
    """Asks any team lead to approve or discard the held changes."""
    value = hold_value(hold)
    approve = button("Approve", ids.BRAKE_APPROVE_ACTION, value, style="primary",
                     confirm_with=confirm("Write these changes?", "The next cycle writes every held change to "
                                          "Marketo.", "Approve"))
    discard = button("Discard", ids.BRAKE_DISCARD_ACTION, value, style="danger",
                     confirm_with=confirm("Discard these changes?", "The next cycle skips them; they are listed "
                                          "in the errors and never written.", "Discard", danger=True))
    blocks: list[Block] = [
        HeaderBlock(text=":octagonal_sign: Mass change held"),
        *_facts(hold),
        context("Any team lead may decide. Approve writes them with the next cycle; Discard skips them."),
        ActionsBlock(block_id=ids.BRAKE_ACTIONS_BLOCK, elements=[approve, discard]),
    ]
    name = ENTITY_PLURAL[hold.entity]
    return Message(text=f"Mass change held for {name}: {number(hold.deletes)} deletes, "
                        f"{number(hold.overwrites)} overwrites; a team lead must decide",
                   blocks=fit(blocks, MAX_MESSAGE_BLOCKS))


def brake_decided_message(hold: MassChangeHold) -> Message:
    """The request after the decision: who decided, no buttons."""
    verb = "Approved" if hold.status == BrakeStatus.approved else "Discarded"
    at = when(hold.decided_at) if hold.decided_at else "just now"
    outcome = ("the next cycle writes them" if hold.status == BrakeStatus.approved
               else "the next cycle skips them")
    line = f"*{verb}* by {mention(hold.decided_by or 'a team lead')} {at}: {outcome}."
    blocks: list[Block] = [section(line), *_facts(hold)]
    return Message(text=f"Mass change of {ENTITY_PLURAL[hold.entity]} {verb.lower()}",
                   blocks=fit(blocks, MAX_MESSAGE_BLOCKS))


def held_lines(holds: list[MassChangeHold]) -> list[str]:
    """Status lines of the entities the brake holds."""
    lines = []
    for hold in holds:
        state = HELD_STATUS if hold.status == BrakeStatus.held else f"{hold.status.value}, applied by the next cycle"
        lines.append(f":octagonal_sign: *{ENTITY_PLURAL[hold.entity]}* {state} ({number(hold.deletes)} deletes, "
                     f"{number(hold.overwrites)} overwrites)")
    return lines
