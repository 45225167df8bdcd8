"""Every callback_id, block_id and action_id the views use: handlers route on these names.

Input values arrive as `view.state.values[BLOCK][ACTION]`; the `*_BLOCK`/`*_ACTION` pairs below
go together. Buttons carry an id (connection, approval or run) in their `value`.
"""

from __future__ import annotations

import re

from bot.models import Entity

# -- modal callback ids (view_submission / view_closed) -------------------------------------------
CREDENTIALS_CALLBACK = "cd_credentials"
CHECKING_CALLBACK = "cd_checking"
CHECKLIST_CALLBACK = "cd_checklist"
FIELDS_CALLBACK = "cd_fields"
PLAN_CALLBACK = "cd_plan"
FIELDS_CHANGE_CALLBACK = "cd_fields_change"  # the field picker of `/connect-dynamics fields`
FIELDS_CHANGE_PLAN_CALLBACK = "cd_fields_change_plan"  # its plan: Ask for approval
ENABLE_SYNC_CALLBACK = "cd_enable_sync"
REJECT_REASON_CALLBACK = "cd_reject_reason"
ERROR_CALLBACK = "cd_error"
INFO_CALLBACK = "cd_info"

# -- Step 1: credentials form inputs ---------------------------------------------------------------
USERNAME_BLOCK, USERNAME_ACTION = "username", "username_input"
PASSWORD_BLOCK, PASSWORD_ACTION = "password", "password_input"
URL_BLOCK, URL_ACTION = "dynamics_url", "dynamics_url_input"
CLIENT_ID_BLOCK, CLIENT_ID_ACTION = "client_id", "client_id_input"
CLIENT_SECRET_BLOCK, CLIENT_SECRET_ACTION = "client_secret", "client_secret_input"
# The draft keys credentials_modal() understands, by input block.
CREDENTIAL_BLOCKS: dict[str, str] = {
    "username": USERNAME_BLOCK,
    "password": PASSWORD_BLOCK,
    "url": URL_BLOCK,
    "client_id": CLIENT_ID_BLOCK,
    "client_secret": CLIENT_SECRET_BLOCK,
}

# -- Step 1: checklist -----------------------------------------------------------------------------
CHECKLIST_ACTIONS_BLOCK = "checklist_actions"
BACK_TO_FORM_ACTION = "cd_back_to_form"  # value = connection id

# -- Step 2: fields ---------------------------------------------------------------------------------
FIELDS_BLOCK_PREFIX = "fields_"
FIELDS_ACTION_PREFIX = "cd_fields_select_"
# For `app.options(...)` / `app.action(...)`: matches every per-entity field select.
FIELDS_ACTION_PATTERN = re.compile(rf"^{FIELDS_ACTION_PREFIX}(lead|contact|account|opportunity)$")
FIELDS_ACTIONS_BLOCK = "fields_actions"
CUSTOM_TABLES_BLOCK = "custom_tables"  # Step 2: the custom tables to sync (issue #14 point 6)
CUSTOM_TABLES_ACTION = "cd_custom_tables"
CUSTOM_TABLES_ACTIONS_BLOCK = "custom_tables_actions"
COLUMNS_ACTION = "cd_columns_open"  # value = connection id; pushes the custom-table columns modal
COLUMNS_CALLBACK = "cd_columns"
# The columns modal's inputs, one per custom table: block id = prefix + the table's logical name.
COLUMNS_BLOCK_PREFIX = "columns_"
COLUMNS_ACTION_PREFIX = "cd_cols_"
REFRESH_FIELDS_ACTION = "cd_refresh_fields"  # value = connection id


DIRECTIONS_ACTION = "cd_directions_open"  # value = connection id; pushes the directions modal
DIRECTIONS_CALLBACK = "cd_directions"
# The directions modal's inputs, per two-way entity: which fields sync one way, and the collision exceptions.
DIRECTION_INPUTS = ("to_marketo", "to_dynamics", "winner")


def direction_block_id(entity: Entity, which: str) -> str:
    return f"dir_{which}_{entity.value}"


def direction_action_id(entity: Entity, which: str) -> str:
    return f"cd_dir_{which}_{entity.value}"


def columns_block_id(table: str) -> str:
    return f"{COLUMNS_BLOCK_PREFIX}{table}"


def columns_action_id(table: str) -> str:
    return f"{COLUMNS_ACTION_PREFIX}{table}"


def table_of_columns_block(block_id: str) -> str | None:
    """The custom table a columns-modal block id belongs to, or None for any other id."""
    return block_id.removeprefix(COLUMNS_BLOCK_PREFIX) if block_id.startswith(COLUMNS_BLOCK_PREFIX) else None


def fields_block_id(entity: Entity) -> str:
    return f"{FIELDS_BLOCK_PREFIX}{entity.value}"


def fields_action_id(entity: Entity) -> str:
    return f"{FIELDS_ACTION_PREFIX}{entity.value}"


def entity_of_fields_action(action_id: str) -> Entity | None:
    """The entity a field-select action id belongs to, or None for any other id."""
    match = FIELDS_ACTION_PATTERN.match(action_id)
    return Entity(match.group(1)) if match else None


# -- Step 3 ------------------------------------------------------------------------------------------
NOTIFY_EMAIL_BLOCK, NOTIFY_EMAIL_ACTION = "notify_email", "notify_email_input"

# -- approval ----------------------------------------------------------------------------------------
APPROVAL_ACTIONS_BLOCK = "approval_actions"
APPROVE_ACTION = "cd_approve"  # value = approval id
REJECT_ACTION = "cd_reject"  # value = approval id; opens reject_reason_modal
REJECT_REASON_BLOCK, REJECT_REASON_ACTION = "reject_reason", "reject_reason_input"
RETRY_APPROVAL_BLOCK = "retry_approval_actions"
RETRY_APPROVAL_ACTION = "retry_approval"  # value = approval id; re-runs the effects not yet applied

# -- new credentials for the connected org --------------------------------------------------------------
RENEW_CREDENTIALS_ACTION = "renew_credentials"  # opens renew_credentials_modal (the value is not used)
RENEW_CALLBACK = "cd_renew_credentials"

# -- the mass-change brake ----------------------------------------------------------------------------
BRAKE_ACTIONS_BLOCK = "brake_actions"
BRAKE_APPROVE_ACTION = "cd_brake_approve"  # value = "connection id:entity"
BRAKE_DISCARD_ACTION = "cd_brake_discard"  # value = "connection id:entity"

# -- sync progress -------------------------------------------------------------------------------------
RUN_ACTIONS_BLOCK = "run_actions"
CANCEL_SYNC_ACTION = "cd_cancel_sync"  # value = run id
RESUME_SYNC_ACTION = "cd_resume_sync"  # value = run id

# -- App Home ------------------------------------------------------------------------------------------
HOME_ACTIONS_BLOCK = "home_actions"
HOME_CONNECT_ACTION = "cd_home_connect"  # opens Step 1 (admins only)
HOME_HELP_ACTION = "cd_home_help"
HOME_SETTINGS_ACTION = "cd_home_settings"  # opens the workspace settings modal

# -- workspace settings (App Home) ---------------------------------------------------------------------
SETTINGS_CALLBACK = "cd_workspace_settings"
HOME_SETTINGS_BLOCK = "home_settings"
SETTINGS_ADMINS_BLOCK, SETTINGS_ADMINS_ACTION = "settings_admins", "cd_settings_admins"
SETTINGS_LEADS_BLOCK, SETTINGS_LEADS_ACTION = "settings_leads", "cd_settings_leads"
SETTINGS_APPROVAL_BLOCK, SETTINGS_APPROVAL_ACTION = "settings_approval_channel", "cd_settings_approval_channel"
SETTINGS_NOTIFY_BLOCK, SETTINGS_NOTIFY_ACTION = "settings_notify_channel", "cd_settings_notify_channel"

# -- alerts --------------------------------------------------------------------------------------------
ALERT_ACTIONS_BLOCK = "alert_actions"
RENEW_CREDENTIALS_ACTION = "renew_credentials"  # opens the new-credentials modal of the active connection

ALL_ACTION_IDS: frozenset[str] = frozenset({
    BACK_TO_FORM_ACTION, REFRESH_FIELDS_ACTION, APPROVE_ACTION, REJECT_ACTION, CANCEL_SYNC_ACTION,
    RESUME_SYNC_ACTION, HOME_CONNECT_ACTION, HOME_HELP_ACTION, HOME_SETTINGS_ACTION, BRAKE_APPROVE_ACTION,
    BRAKE_DISCARD_ACTION, RETRY_APPROVAL_ACTION, RENEW_CREDENTIALS_ACTION, DIRECTIONS_ACTION,
    COLUMNS_ACTION,
    *(fields_action_id(e) for e in Entity),
})
