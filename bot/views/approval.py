"""The approval request a team lead decides on, its decided form, and the reject-reason modal."""

from __future__ import annotations

from slack_sdk.models.blocks import (
    ActionsBlock,
    Block,
    DividerBlock,
    HeaderBlock,
    InputBlock,
    MarkdownTextObject,
    PlainTextInputElement,
    SectionBlock,
)
from slack_sdk.models.views import View

from bot.bounded_text import cut
from bot.models import Approval, ApprovalKind, ApprovalStatus, Connection, EffectsState, FieldPlan
from bot.views import ids
from bot.views.custom_objects import custom_object_blocks
from bot.views.direction_text import direction_lines
from bot.views.fields import fields_change_lines, fields_to_create_lines, people_blocks, plan_summary_lines
from bot.views.kit import (
    MAX_MESSAGE_BLOCKS,
    Message,
    ViewMetadata,
    button,
    confirm,
    escape,
    fit,
    limited_lines,
    mention,
    modal,
    number,
    quote,
    section,
    sections,
    when,
)

MAX_FIELDS_LISTED = 40  # keeps the message well under Slack's total-text limit (~13k characters)
MAX_DIRECTIONS_LISTED = 15  # per entity: fields not syncing both ways by the rule; the rest are counted


def _facts(approval: Approval, connection: Connection) -> SectionBlock:
    sync_user = connection.sync_user_name or connection.username or "unknown"
    if connection.username and connection.sync_user_name:
        sync_user = f"{connection.sync_user_name} ({connection.username})"
    votes = f"{len(approval.approvers)} of {approval.required}"
    if approval.approvers:
        votes += ": " + ", ".join(mention(u) for u in approval.approvers)
    return SectionBlock(fields=[
        MarkdownTextObject(text=f"*Dynamics org*\n{escape(connection.dynamics_url or 'unknown')}"),
        MarkdownTextObject(text=f"*Sync user*\n{escape(sync_user)}"),
        MarkdownTextObject(text=f"*Requested by*\n{mention(approval.requester)}"),
        MarkdownTextObject(text=f"*Expires*\n{when(approval.expires_at)}"),
        MarkdownTextObject(text=f"*Approvals*\n{votes}"),
    ])


def _plan_blocks(approval: Approval, connection: Connection, plan: FieldPlan | None) -> list[Block]:
    blocks: list[Block] = [_facts(approval, connection)]
    if plan is None:
        blocks.append(section(":warning: The field plan is missing; ask the requester to run Step 2 again."))
        return blocks
    blocks += sections(plan_summary_lines(plan), "*Entities* (records counted with the filter applied)")
    blocks += sections(direction_lines(plan, MAX_DIRECTIONS_LISTED), "*Directions*")
    blocks += people_blocks(plan)
    blocks += custom_object_blocks(plan, MAX_FIELDS_LISTED)
    if plan.fields_to_create:
        blocks += sections(fields_to_create_lines(plan, MAX_FIELDS_LISTED),
                           f"*Marketo fields to create ({len(plan.fields_to_create)})* — cannot be deleted later")
    else:
        blocks.append(section("*Marketo fields to create:* none"))
    if connection.duplicate_count is not None:
        records = (f" shared by {number(connection.duplicate_records)} records"
                   if connection.duplicate_records else "")
        blocks.append(section(f"*Duplicate emails in Dynamics:* {number(connection.duplicate_count)} addresses{records} "
                              "(each record becomes its own Marketo person)"))
    return blocks


def _change_blocks(approval: Approval, connection: Connection) -> list[Block]:
    """A change of fields after go-live: added and removed columns, the Marketo fields to create."""
    blocks: list[Block] = [_facts(approval, connection)]
    change = approval.fields_change
    if change is None:
        return [*blocks, section(":warning: The change of fields is missing; ask the requester to run it again.")]
    blocks += sections(fields_change_lines(change), "*Change of fields* (the sync goes on meanwhile)")
    if change.fields_to_create:
        blocks += sections(limited_lines((f"• `{escape(f.name)}` ({escape(f.data_type)}) — {escape(f.display_name)}"
                                          for f in change.fields_to_create), MAX_FIELDS_LISTED, "fields"),
                           f"*Marketo fields to create ({len(change.fields_to_create)})* — irreversible: "
                           "they cannot be deleted later")
    else:
        blocks.append(section("*Marketo fields to create:* none"))
    return blocks


def _body(approval: Approval, connection: Connection, plan: FieldPlan | None) -> list[Block]:
    if approval.kind == ApprovalKind.fields_change:
        return _change_blocks(approval, connection)
    return _plan_blocks(approval, connection, plan)


def _header(connection: Connection, approval: Approval | None = None) -> str:
    """The request's title, mrkdwn-safe (it is also the notification text)."""
    if approval is not None and approval.kind == ApprovalKind.fields_change:
        return f"Change of fields synced from {escape(connection.dynamics_url or 'Dynamics')}"
    return f"Connect Dynamics to Marketo: {escape(connection.dynamics_url or 'Dynamics')}"


def approval_request_message(approval: Approval, connection: Connection, plan: FieldPlan | None) -> Message:
    """The request with the whole plan and Approve / Reject buttons (value = approval id)."""
    approve = button(
        "Approve", ids.APPROVE_ACTION, approval.id, style="primary",
        confirm_with=confirm("Approve this sync?",
                             "Marketo fields are created (they cannot be deleted), the Dynamics URL is locked for "
                             "this Marketo instance and the initial sync starts.", "Approve"),
    )
    reject = button(
        "Reject", ids.REJECT_ACTION, approval.id, style="danger",
        confirm_with=confirm("Reject this sync?", "You will be asked for a reason; the requester sees it.",
                             "Reject", danger=True),
    )
    blocks: list[Block] = [
        HeaderBlock(text=":raised_hand: Approval needed"),
        section(f"*{_header(connection, approval)}*\nRequested by {mention(approval.requester)}. Only team leads "
                "can decide, and not the requester."),
        *_body(approval, connection, plan),
        DividerBlock(),
        ActionsBlock(block_id=ids.APPROVAL_ACTIONS_BLOCK, elements=[approve, reject]),
    ]
    return Message(
        text=f"Approval needed: {_header(connection, approval)} (requested by {mention(approval.requester)})",
        blocks=fit(blocks, MAX_MESSAGE_BLOCKS),
    )


def decision_text(approval: Approval) -> str:
    at = when(approval.decided_at) if approval.decided_at else "just now"
    match approval.status:
        case ApprovalStatus.approved:
            who = ", ".join(mention(u) for u in approval.approvers) or mention(approval.decided_by or "unknown")
            if approval.kind == ApprovalKind.fields_change:
                return f":white_check_mark: *Approved* by {who} {at}. {_fields_change_effects(approval)}."
            if approval.effects_state == EffectsState.failed:
                return f":white_check_mark: *Approved* by {who} {at}, but the sync has not started."
            return f":white_check_mark: *Approved* by {who} {at}. The sync is starting."
        case ApprovalStatus.rejected:
            return (f":x: *Rejected* by {mention(approval.decided_by or 'unknown')} {at}.\n"
                    f"{quote(approval.reason or 'no reason given')}")
        case ApprovalStatus.expired:
            return (f":hourglass: *Expired* {when(approval.expires_at)} without a decision. "
                    "The requester can send it again.")
        case ApprovalStatus.cancelled:
            return f":no_entry_sign: *Withdrawn* by {mention(approval.decided_by or approval.requester)} {at}."
        case _:
            return f":hourglass_flowing_sand: *Waiting* for approval ({len(approval.approvers)} of {approval.required})."


def _effects_failed_blocks(approval: Approval) -> list[Block]:
    """Why starting the sync failed (outside text: escaped and bounded) and the Retry button (leads)."""
    retry = button(
        "Retry", ids.RETRY_APPROVAL_ACTION, approval.id, style="primary",
        confirm_with=confirm("Retry starting the sync?",
                             "Only what has not been done yet runs again: Marketo fields already created are "
                             "not created twice.", "Retry"),
    )
    return [
        section(f":warning: *Starting the sync failed:* {escape(cut(approval.effects_error or 'unknown cause'))}\n"
                "Fix the cause, then a team lead presses *Retry*. To give up, the requester or an admin runs "
                "`/connect-dynamics cancel`."),
        ActionsBlock(block_id=ids.RETRY_APPROVAL_BLOCK, elements=[retry]),
    ]


def approval_decided_message(approval: Approval, connection: Connection, plan: FieldPlan | None) -> Message:
    """The request after a decision (approved / rejected with reason / expired / withdrawn): no buttons,
    except Retry when the approval's effects failed."""
    status = decision_text(approval)
    failed = approval.status == ApprovalStatus.approved and approval.effects_state == EffectsState.failed
    blocks: list[Block] = [
        section(status),
        *(_effects_failed_blocks(approval) if failed else []),
        section(f"*{_header(connection, approval)}*"),
        *_body(approval, connection, plan),
    ]
    first_line = status.split("\n", 1)[0].replace("*", "")
    return Message(text=f"{_header(connection, approval)}: {first_line}", blocks=fit(blocks, MAX_MESSAGE_BLOCKS))


def approved_notice(approval: Approval) -> Message:
    """The DM telling the requester their sync was approved and has started."""
    return Message(text=f":white_check_mark: Your Dynamics → Marketo sync was approved by "
                        f"{mention(approval.decided_by or 'a team lead')}. The initial sync has started; "
                        "progress is posted in the notifications channel.")


def fields_change_approved_notice(approval: Approval) -> Message:
    """The DM telling the requester their change of fields was approved."""
    return Message(text=f":white_check_mark: Your change of fields was approved by "
                        f"{mention(approval.decided_by or 'a team lead')}. {_fields_change_effects(approval)}; "
                        "the sync goes on meanwhile.")


def _fields_change_effects(approval: Approval) -> str:
    """What an approved change of fields does; custom objects only when it makes or extends some."""
    change = approval.fields_change
    if change is not None and change.objects_to_make():
        return ("The new Marketo fields and custom objects are created, the added columns are written into existing "
                "records and the added custom tables synced in full")
    return "The new Marketo fields are created and the added columns written into existing records"


def _request_words(approval: Approval) -> tuple[str, str]:
    """What the request was, and the command that makes a new one."""
    if approval.kind == ApprovalKind.fields_change:
        return "change of fields", "/connect-dynamics fields"
    return "Dynamics → Marketo sync request", "/connect-dynamics"


def rejected_notice(approval: Approval) -> Message:
    """The DM telling the requester who rejected their request, and why (the lead's own words)."""
    what, again = _request_words(approval)
    return Message(text=f":x: Your {what} was rejected by "
                        f"{mention(approval.decided_by or 'a team lead')}.\n"
                        f"{quote(approval.reason or 'no reason given')}\n"
                        f"Run {again} to change it and ask again.")


def expired_notice(approval: Approval) -> Message:
    """The DM telling the requester their request expired undecided."""
    what, again = _request_words(approval)
    return Message(text=f":hourglass: Your {what} expired without a decision. Run {again} to send it again.")


def reject_reason_modal(approval_id: str) -> View:
    """Asks the lead why; the requester is told. Metadata carries the approval id."""
    return modal(
        "Reject the sync", ids.REJECT_REASON_CALLBACK,
        [
            section("The requester will see this reason. Nothing is changed in Marketo."),
            InputBlock(
                block_id=ids.REJECT_REASON_BLOCK, label="Reason",
                element=PlainTextInputElement(action_id=ids.REJECT_REASON_ACTION, multiline=True,
                                              min_length=3, max_length=1000,
                                              placeholder="e.g. Wrong org: use the production URL"),
            ),
        ],
        submit="Reject", metadata=ViewMetadata(approval_id=approval_id),
    )
