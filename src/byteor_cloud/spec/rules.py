"""DataGuard rule grammar: `F:drop`, `F:replace_with=V`, `F:hash`, `F:mask=P:S:C`, `F:truncate=N`.

Readings of §6 taken here: `F` is a field path and ends at the first `:`; `V` is the rest
of the rule taken literally as a string (it may be empty and may contain `:` or `=`);
`P`, `S` and `N` are canonical decimal integers (`0` or no leading zero, at most 18
digits) so a rule's text and its meaning map one to one; `C` is exactly one character
(one Unicode code point). A rule with a control character is `invalid_value` (it is a
bare value); any other malformed rule is `invalid_rule`.
"""

from __future__ import annotations

import re

from byteor_cloud.spec.model import DataguardRule, RuleAction
from byteor_cloud.spec.syntax import is_field

_NUMBER = re.compile(r"0|[1-9][0-9]{0,17}")


class InvalidRuleError(ValueError):
    """A DataGuard rule that does not parse; the message says why."""


def parse_rule(text: str) -> DataguardRule:
    """Parse one rule's text (raises InvalidRuleError)."""
    field, sep, rest = text.partition(":")
    if not sep:
        raise InvalidRuleError("a rule is FIELD:ACTION, e.g. `email:hash`")
    if not is_field(field):
        raise InvalidRuleError(f"{field!r} is not a field path")
    action, has_arg, arg = rest.partition("=")
    if action in (RuleAction.drop, RuleAction.hash):
        if has_arg:
            raise InvalidRuleError(f"`{action}` takes no argument")
        return DataguardRule(field, RuleAction(action))
    if action == RuleAction.replace_with and has_arg:
        return DataguardRule(field, RuleAction.replace_with, replacement=arg)
    if action == RuleAction.truncate and has_arg:
        return DataguardRule(field, RuleAction.truncate, length=_number(arg, "N"))
    if action == RuleAction.mask and has_arg:
        return _mask(field, arg)
    raise InvalidRuleError(
        "the action must be drop, replace_with=V, hash, mask=P:S:C or truncate=N"
    )


def _mask(field: str, arg: str) -> DataguardRule:
    parts = arg.split(":", 2)
    if len(parts) != 3:
        raise InvalidRuleError("mask takes P:S:C (keep P leading and S trailing characters)")
    keep_start, keep_end, char = parts
    if len(char) != 1:
        raise InvalidRuleError("the mask character C must be exactly one character")
    return DataguardRule(
        field,
        RuleAction.mask,
        keep_start=_number(keep_start, "P"),
        keep_end=_number(keep_end, "S"),
        mask_char=char,
    )


def _number(text: str, name: str) -> int:
    if _NUMBER.fullmatch(text) is None:
        raise InvalidRuleError(f"{name} must be a decimal integer (no sign, no leading zero)")
    return int(text)
