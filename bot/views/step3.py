"""Step 3 — Enable sync: the dedupe caution, the duplicate-email report and the notice email."""

from __future__ import annotations

from pydantic import BaseModel, Field
from slack_sdk.models.blocks import Block, DividerBlock, EmailInputElement, InputBlock
from slack_sdk.models.views import View

from bot.models import Connection
from bot.views import ids
from bot.views.kit import ViewMetadata, context, escape, modal, number, section

CAUTION = (
    ":warning: *Marketo does not dedupe against this sync.* Every Dynamics lead and contact becomes its own "
    "Marketo person, keyed on its Dynamics id: two records with the same email stay two people, and a lead "
    "and a contact are separate people. Merge duplicates in Dynamics first if you do not want that."
)


class DuplicateSummary(BaseModel):
    """The duplicate-email report as the modal shows it (same fields as dynamics' DuplicateReport)."""

    total_duplicate_emails: int
    records_involved: int = 0
    examples: list[tuple[str, int]] = Field(default_factory=list)  # (email, how many records)

    @classmethod
    def from_connection(cls, connection: Connection) -> DuplicateSummary | None:
        """The summary saved on the connection, or None while it is still being computed."""
        if connection.duplicate_count is None:
            return None
        return cls(total_duplicate_emails=connection.duplicate_count,
                   records_involved=connection.duplicate_records or 0,
                   examples=connection.duplicate_examples)


def duplicates_text(duplicates: DuplicateSummary | None) -> str:
    if duplicates is None:
        return ":hourglass_flowing_sand: *Duplicate emails:* computing… (this window updates when done)"
    if duplicates.total_duplicate_emails == 0:
        return ":white_check_mark: *Duplicate emails:* none — every lead and contact has its own email address."
    text = (f":busts_in_silhouette: *Duplicate emails:* {number(duplicates.total_duplicate_emails)} addresses "
            "are shared by more than one Dynamics record")
    if duplicates.records_involved:
        text += f" ({number(duplicates.records_involved)} records)"
    text += ". Each record becomes a separate Marketo person."
    if duplicates.examples:
        text += "\nMost shared:\n" + "\n".join(
            f"• {escape(email)} — {number(count)} records" for email, count in duplicates.examples[:10]
        )
    return text


def enable_sync_modal(connection_id: str, duplicates: DuplicateSummary | None, email: str | None,
                      webhooks: str | None = None) -> View:
    """Step 3. Submit "Begin sync" asks a team lead for approval; it does not start the sync. `webhooks`:
    what going live registers in Dynamics (with PUBLIC_URL)."""
    blocks: list[Block] = [
        section("*Step 3 of 3 — Enable sync*"),
        section(CAUTION),
        section(duplicates_text(duplicates)),
        *([section(f":zap: {escape(webhooks)}")] if webhooks else []),
        DividerBlock(),
        InputBlock(
            block_id=ids.NOTIFY_EMAIL_BLOCK, label="Email me when the first sync is done",
            hint="The first sync can take hours. A summary is also posted in Slack.",
            element=EmailInputElement(action_id=ids.NOTIFY_EMAIL_ACTION, initial_value=email or None,
                                      placeholder="you@example.com"),
        ),
        context(":lock: *Begin sync* does not start anything yet: it sends this plan to a team lead for "
                "approval. Marketo fields are created and the sync starts only once it is approved."),
    ]
    return modal("Enable sync", ids.ENABLE_SYNC_CALLBACK, blocks, submit="Begin sync", close="Back",
                 metadata=ViewMetadata(connection_id=connection_id))
