"""Step 1 — Enter credentials: the form, the "checking…" modal and the pre-flight checklist."""

from __future__ import annotations

from collections.abc import Mapping

from slack_sdk.models.blocks import ActionsBlock, Block, DividerBlock, InputBlock, PlainTextInputElement
from slack_sdk.models.views import View

from bot.models import CheckResult
from bot.views import ids
from bot.views.kit import ViewMetadata, button, context, cut, escape, modal, section

# Draft keys that are never written back into a view: Slack views are not secret storage.
SECRET_KEYS = frozenset({"password", "client_secret"})

_INPUTS: list[tuple[str, str, str, str, str, bool]] = [
    # (draft key, block, action, label, hint, optional)
    ("username", ids.USERNAME_BLOCK, ids.USERNAME_ACTION, "Username",
     "The Dynamics sync user's sign-in name, e.g. sync@contoso.com — not DOMAIN\\user "
     "(Microsoft Entra ID cannot sign in with that form).", False),
    ("password", ids.PASSWORD_BLOCK, ids.PASSWORD_ACTION, "Password",
     "Slack has no masked input, so the password shows on your screen while you type. It is stored "
     "encrypted and never shown again; re-enter it each time this form opens.", False),
    ("url", ids.URL_BLOCK, ids.URL_ACTION, "Dynamics URL",
     "Your organisation's address, e.g. https://contoso.crm.dynamics.com (any https address works).", False),
    ("client_id", ids.CLIENT_ID_BLOCK, ids.CLIENT_ID_ACTION, "Client ID",
     "Optional: the Application (client) ID of an Entra app registration. With a Client Secret too, "
     "the bot signs in as a confidential client.", True),
    ("client_secret", ids.CLIENT_SECRET_BLOCK, ids.CLIENT_SECRET_ACTION, "Client Secret",
     "Optional: the app registration's client secret (value, not the secret ID). Re-enter it each time.", True),
]

_PLACEHOLDERS = {
    "username": "sync@contoso.com",
    "url": "https://contoso.crm.dynamics.com",
    "client_id": "00000000-0000-0000-0000-000000000000",
}


def _input(key: str, block_id: str, action_id: str, label: str, hint: str, optional: bool,
           draft: Mapping[str, str]) -> InputBlock:
    initial = None if key in SECRET_KEYS else (draft.get(key) or None)
    return InputBlock(
        block_id=block_id, label=label, hint=hint, optional=optional,
        element=PlainTextInputElement(
            action_id=action_id, initial_value=cut(initial, 3000) if initial else None,
            placeholder=_PLACEHOLDERS.get(key), max_length=3000,
        ),
    )


def credentials_modal(
    draft: Mapping[str, str] | None = None, errors: Mapping[str, str] | None = None, *,
    message: str | None = None, connection_id: str | None = None,
) -> View:
    """The Step 1 form, refilled from `draft` except the password and client secret.

    `errors` (draft key or block id → text) and `message` (e.g. why sign-in failed) are shown at the
    top: a freshly opened view cannot carry Slack's inline errors, which only `response_action=errors`
    on submit can set.
    """
    draft = draft or {}
    top: list[Block] = [section(
        "*Step 1 of 3 — Enter credentials*\nConnect Marketo to Microsoft Dynamics 365 with a dedicated "
        "sync user that has the *Marketo Sync User* role and no MFA."
    )]
    problems = [escape(message)] if message else []
    labels = {block: label for _, block, _, label, _, _ in _INPUTS}
    for key, text in (errors or {}).items():
        block = ids.CREDENTIAL_BLOCKS.get(key, key)
        problems.append(f"*{labels.get(block, escape(key))}:* {escape(text)}")
    if problems:
        top.append(section(":warning: " + "\n".join(problems)))
    inputs = [_input(*spec, draft=draft) for spec in _INPUTS]
    return modal(
        "Connect Dynamics", ids.CREDENTIALS_CALLBACK, [*top, *inputs], submit="Check & continue",
        metadata=ViewMetadata(connection_id=connection_id),
    )


def checking_modal(url: str) -> View:
    """Shown while the bot signs in and runs the checklist (replaced by checklist_modal)."""
    return modal(
        "Checking Dynamics", ids.CHECKING_CALLBACK,
        [section(f":hourglass_flowing_sand: Signing in to *{escape(url)}* and running the pre-flight "
                 "checks. This usually takes a few seconds; this window updates by itself.")],
        close="Close",
    )


def check_line(check: CheckResult) -> str:
    line = f"{':white_check_mark:' if check.ok else ':x:'} *{escape(check.name)}*"
    if check.detail:
        line += f" — {escape(check.detail)}"
    if not check.ok and check.fix:
        line += f"\n    _Fix:_ {escape(check.fix)}"
    return line


def checklist_modal(checks: list[CheckResult], ok: bool, connection_id: str) -> View:
    """The pre-flight result: every check with pass/fail, detail and fix.

    Success: submit "Continue" goes to Step 2. Failure: no submit, a "Back to the form" button
    (value = connection id) reopens the form with everything but the secrets refilled.
    """
    verdict = (":white_check_mark: *All checks passed.* Continue to choose the fields to sync."
               if ok else ":x: *Some checks failed.* Fix them (see below), then go back to the form and try again.")
    blocks: list[Block] = [section(verdict), DividerBlock()]
    blocks += [section(check_line(c)) for c in checks[:90]]
    if not ok:
        blocks.append(ActionsBlock(block_id=ids.CHECKLIST_ACTIONS_BLOCK, elements=[
            button("Back to the form", ids.BACK_TO_FORM_ACTION, connection_id, style="primary"),
        ]))
        blocks.append(context("The form keeps what you typed except the password and client secret."))
    return modal(
        "Pre-flight checklist", ids.CHECKLIST_CALLBACK, blocks, submit="Continue" if ok else None,
        close="Cancel" if ok else "Close", metadata=ViewMetadata(connection_id=connection_id),
    )
