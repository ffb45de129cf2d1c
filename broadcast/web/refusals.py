"""The core's refusals in the reader's language.

The core says no with a `broadcast.errors.Reason`: English text plus a stable key and its
parameters. This module holds the console's sentence for each key (translated like every
other string, Vietnamese in translations/vi.py) and formats the parameters the way a person
reads them: counts as `12.345`, statuses, roles, categories and fields in words, times local.
A key missing here is said in the core's English: `tests/web/test_refusals.py` fails on it.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from flask_babel import format_decimal
from flask_babel import lazy_gettext as _l

from broadcast.errors import Reason
from broadcast.web.templating import (
    CAP_FIELD_LABELS,
    CATEGORY_LABELS,
    ENCODING_LABELS,
    FIELD_LABELS,
    ROLE_LABELS,
    STATUS_LABELS,
)

REFUSALS: dict[str, Any] = {
    # alerts: the draft and its fields
    "alert_refused": _l("The alert was refused."),
    "placeholders_unfilled": _l(
        "Some fields of the template are still empty: %(markers)s. Write the real value in "
        "place of each marked field."
    ),
    "placeholder_unfilled": _l("the field %(marker)s of the template is still empty"),
    "category_unknown": _l("“%(value)s” is not a category; one of %(known)s"),
    "too_many_parts": _l(
        "the text needs %(parts)s SMS parts (%(encoding)s); at most %(most)s: shorten it or "
        "send it without diacritics (không dấu)"
    ),
    "areas_none": _l("choose at least one area"),
    "areas_unknown": _l("unknown area code(s): %(codes)s"),
    "areas_retired": _l("area(s) no longer in use, which cannot be targeted: %(codes)s"),
    "carriers_none": _l("choose at least one carrier"),
    "carriers_unknown": _l("unknown carrier(s): %(codes)s"),
    "carriers_inactive": _l("carrier(s) not active: %(codes)s"),
    "brandname_required": _l("a sender brandname is required"),
    "brandname_too_long": _l("“%(name)s” has %(length)s characters; at most 11"),
    "brandname_characters": _l("“%(name)s” has characters that are not allowed: %(chars)s"),
    "brandname_digits": _l("“%(name)s” is only digits"),
    "brandname_unregistered": _l("“%(name)s” is not a registered brandname; registered: %(known)s"),
    "brandname_refused": _l("The brandname was refused."),
    "brandname_registered": _l("“%(name)s” is already registered"),
    "brandname_not_found": _l("Brandname %(id)s does not exist."),
    "time_past": _l("%(time)s is in the past"),
    "time_zone_missing": _l("the time needs a time zone"),
    "expires_before_sent": _l("the alert would expire before it is sent"),
    "cap_value_unknown": _l("“%(value)s” is not a value of %(field)s; one of %(known)s"),
    "web_address": _l("“%(value)s” is not a web address (http or https)"),
    "text_too_long": _l("%(length)s characters; at most %(most)s"),
    "text_controls": _l("control characters are not allowed: %(chars)s"),
    "text_bidi": _l(
        "characters that change the reading direction are not allowed; remove %(chars)s"
    ),
    "text_required": _l("is required"),
    "text_invisible": _l("has only invisible characters; type visible text"),
    "keywords_too_many": _l("%(count)s keywords; at most %(most)s"),
    "keyword_word": _l("keyword %(n)s, word: %(problem)s"),
    "keyword_label": _l("keyword %(n)s, meaning: %(problem)s"),
    "keyword_no_letter": _l("keyword %(n)s “%(word)s” has no letter or digit"),
    "keyword_other": _l("keyword %(n)s “%(word)s”: “%(other)s” is kept for all other replies"),
    "keyword_twin": _l("keyword %(n)s “%(word)s” is the same as “%(twin)s” without diacritics"),
    # alerts: who may do what, and when
    "alert_not_found": _l("Alert %(alert)s does not exist."),
    "transition_refused": _l(
        "An alert that is “%(status)s” cannot be %(action)s now; possible: %(allowed)s."
    ),
    "edit_not_draft": _l("Alert %(alert)s is “%(status)s”: only a draft can be edited."),
    "user_deactivated": _l("The account “%(user)s” is disabled."),
    "role_needed": _l("This needs the role %(roles)s; “%(user)s” is %(role)s."),
    "author_edits": _l(
        "Only the author of a draft can edit it; issue an update of the alert instead."
    ),
    "author_submits": _l("Only the author of a draft can send it for approval."),
    "author_withdraws": _l("Only the author can take an alert back from approval."),
    "own_alert_approve": _l("A drafter cannot approve their own alert."),
    "own_alert_reject": _l("A drafter cannot reject their own alert; take it back instead."),
    "alert_expired": _l(
        "The alert has already expired; change its expiry time or make a new alert from it."
    ),
    "expired": _l("already expired"),
    "quiet_hours": _l(
        "Quiet hours %(window)s: a %(category)s alert cannot start sending at %(start)s. "
        "Schedule it for %(resume)s or later, or tick “Waive quiet hours” if it cannot "
        "wait. Nothing was approved."
    ),
    "reject_reason_refused": _l("The reason for the rejection was refused."),
    "version_changed": _l(
        "The alert was changed after you opened it: you read version %(read)s, it is now "
        "version %(current)s. Nothing was approved; read it again before deciding."
    ),
    "version_read": _l("you read version %(read)s, it is now version %(current)s"),
    "derive_kind_unknown": _l("“%(kind)s” is not a kind of follow-up; one of %(known)s"),
    "kind_unknown": _l("“%(kind)s” is not a kind of follow-up"),
    "derive_not_narrowed": _l(
        "%(kind)s goes to the areas and carriers of the original alert; only a resend "
        "can narrow them"
    ),
    "kind_not_allowed": _l("not possible for %(kind)s"),
    "derive_never_approved": _l(
        "Alert %(alert)s was never approved: edit it instead of issuing %(kind)s."
    ),
    "resend_refused": _l("The resend was refused."),
    "resend_foreign_carrier": _l("“%(carrier)s” was not a carrier of alert %(alert)s (%(own)s)"),
    "resend_foreign_area": _l("area %(code)s is not within the areas of alert %(alert)s"),
    "area_unknown": _l("unknown area code %(code)s"),
    "resend_never_sent": _l("Alert %(alert)s was never sent: there is nobody to resend to."),
    "resend_not_final": _l(
        "Alert %(alert)s is “%(status)s”: resend once it has completed or been cancelled."
    ),
    "resend_nobody": _l(
        "Alert %(alert)s has nobody left to reach: no number was undeliverable, expired or "
        "refused, or another resend reached them."
    ),
    "cap_not_found": _l("No published alert has this identifier."),
    "template_unknown": _l("“%(template)s” is not a template; one of %(known)s"),
    "language_unknown": _l("“%(language)s” is not a language of the templates; one of %(known)s"),
    # accounts, registry, groups
    "user_refused": _l("The user was refused."),
    "username_length": _l("1 to 80 characters"),
    "username_taken": _l("“%(name)s” is already taken"),
    "password_refused": _l("The password was refused."),
    "password_short": _l("at least %(least)s characters"),
    "carrier_needed": _l("a carrier user needs a carrier"),
    "carrier_unknown": _l("unknown carrier “%(carrier)s”"),
    "carrier_unknown_of": _l("unknown carrier “%(carrier)s”; known: %(known)s"),
    "carrier_for_staff": _l("only carrier users belong to a carrier"),
    "role_refused": _l("The role was refused."),
    "carrier_staff_separate": _l("carrier accounts and staff accounts are separate users"),
    "own_tokens_only": _l(
        "An API token is created by its owner only, for themselves (administrators included)."
    ),
    "token_not_found": _l("API token %(id)s does not exist."),
    "self_deactivate": _l("You cannot disable your own account."),
    "ask_other_admin": _l("ask another administrator"),
    "msisdn_invalid": _l("“%(value)s” is not a Vietnamese mobile number"),
    "group_twin": _l("%(msisdn)s is already in the %(group)s"),
    "group_recipient_refused": _l("The number was refused for the %(group)s."),
    "group_recipient_not_found": _l("This number is not in the %(group)s."),
    # drills
    "drills_admin_only": _l("Only an administrator schedules drills; “%(user)s” is not one."),
    "drill_day": _l("%(day)s is not a day from 1 to %(most)s"),
    "drill_time": _l("“%(time)s” is not a time HH:MM (00:00 to 23:59)"),
    "drill_lead": _l("%(days)s is not from 1 to %(most)s days"),
    "drill_refused": _l("The recurring drill was refused."),
    "drill_not_found": _l("Recurring drill %(id)s does not exist."),
    # network status
    "network_refused": _l("The network status was refused."),
    "network_not_yours": _l(
        "“%(user)s” may not report on this network: a carrier's users report on their own "
        "carrier's network only."
    ),
    "network_state_unknown": _l("“%(state)s” is not a network state; one of %(known)s"),
    "network_note": _l("note: %(problem)s"),
    "area_twice": _l("area %(code)s is given twice"),
    "area_retired": _l("area %(code)s is no longer in use"),
    "areas_too_many": _l("%(count)s areas; at most %(most)s at once"),
    # uploads and requests
    "no_rejects_file": _l(
        "Import %(id)s has no file of refused rows (a refused file keeps none, and files are "
        "deleted after some days)."
    ),
    "file_required": _l("Choose a file to upload."),
    "file_missing": _l("a file is required"),
    "token_used": _l("already used by another upload"),
    "upload_kind": _l("“%(kind)s” is not a kind of upload (list or counts)."),
    "not_yes_no": _l("%(name)s must be true or false, not “%(value)s”."),
    "progress_token_bad": _l("The upload's progress token was refused."),
    "progress_token_taken": _l("This progress token is already in use; send a new one or none."),
    "field_refused": _l("%(field)s was refused."),
}


ACTION_WORDS: dict[str, Any] = {
    "submit": _l("sent for approval"),
    "withdraw": _l("taken back to draft"),
    "approve": _l("approved"),
    "schedule": _l("scheduled"),
    "reject": _l("rejected"),
    "start": _l("started"),
    "pause": _l("paused"),
    "resume": _l("resumed"),
    "cancel": _l("cancelled"),
    "complete": _l("completed"),
    "nothing (final)": _l("nothing (it has ended)"),
}

KIND_WORDS: dict[str, Any] = {
    "update": _l("an update"),
    "correction": _l("a correction"),
    "all_clear": _l("an all-clear"),
    "resend": _l("a resend"),
}

GROUP_WORDS: dict[str, Any] = {"test group": _l("test group"), "drill group": _l("drill group")}

# A detail that only repeats what the message already says, by the message's key.
SAID_BY = {
    "placeholders_unfilled": {"placeholder_unfilled"},
    "version_changed": {"version_read"},
    "file_required": {"file_missing"},
    "progress_token_taken": {"token_used"},
    "self_deactivate": set(),
}

# Parameters that are identifiers, not counts: shown as they are (no thousands separator).
IDENTIFIERS = frozenset({"alert", "id", "n", "read", "current", "msisdn", "code", "codes"})


def field_label(name: str) -> str:
    """A field as the reader knows it; a list entry (`areas[2]`) by its field and position."""
    base, _sep, rest = name.partition("[")
    label = FIELD_LABELS.get(base) or CAP_FIELD_LABELS.get(base)
    if label is None:
        return name
    return f"{label} {int(rest.rstrip(']')) + 1}" if rest.rstrip("]").isdigit() else str(label)


def _local(text: str, timezone: str) -> str:
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return text
    if moment.tzinfo is not None:
        moment = moment.astimezone(ZoneInfo(timezone))
    return f"{moment:%H:%M %d/%m/%Y}"


def _param(name: str, value: Any, timezone: str) -> str:
    if isinstance(value, list | tuple):
        return ", ".join(_param(name, v, timezone) for v in value)
    if isinstance(value, Reason):
        return say(value, timezone)
    words: dict[str, Any] | None = {
        "status": {s.value: label for s, label in STATUS_LABELS.items()},
        "role": {r.value: label for r, label in ROLE_LABELS.items()},
        "roles": {r.value: label for r, label in ROLE_LABELS.items()},
        "category": {c.value: label for c, label in CATEGORY_LABELS.items()},
        "action": ACTION_WORDS,
        "allowed": ACTION_WORDS,
        "kind": KIND_WORDS,
        "group": GROUP_WORDS,
        "encoding": ENCODING_LABELS,
    }.get(name)
    if words is not None and str(value) in words:
        said = str(words[str(value)])
        return said.lower() if name == "category" else said
    if name in ("fields", "field"):
        return field_label(str(value))
    if name in ("time", "resume"):
        return _local(str(value), timezone)
    if isinstance(value, int) and not isinstance(value, bool) and name not in IDENTIFIERS:
        return str(format_decimal(value))
    return str(value)


def say(text: Any, timezone: str | None = None) -> str:
    """A Reason in the reader's language (the request's locale); anything else as it is."""
    if isinstance(text, Reason):
        if timezone is None:
            from broadcast.web.context import services

            timezone = services().settings.timezone
        template = REFUSALS.get(text.key)
        if template is not None:
            values = {k: _param(k, v, timezone) for k, v in text.params.items()}
            try:
                return str(template) % values
            except (KeyError, TypeError, ValueError):  # a template out of step with its key
                return str(text)
    return str(text)


def repeats(message: Any, detail: Any) -> bool:
    """Whether a detail only repeats what its message says (left out: each thing said once)."""
    if str(detail) == str(message):
        return True
    keys = SAID_BY.get(getattr(message, "key", ""), set())
    return getattr(detail, "key", None) in keys
