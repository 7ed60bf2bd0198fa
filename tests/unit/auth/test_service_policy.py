from __future__ import annotations

import pytest

from mcp_front.auth.principal import Principal
from mcp_front.auth.service_policy import ServiceAccess
from mcp_front.config import ServicePolicy, ToolPolicy

ALICE = Principal(subject="u-1", email="Alice@Example.com")
BOB = Principal(subject="u-2", email="bob@other.org", groups=frozenset({"eng"}))
DBA = Principal(subject="u-3", email="carol@other.org", groups=frozenset({"eng", "dba"}))
CI_BOT = Principal(subject="ci-bot", kind="service")
STRANGER = Principal(subject="u-4", email="eve@evil.test")


def access(**rules: object) -> ServiceAccess:
    return ServiceAccess.of("db", ServicePolicy.model_validate(rules))


@pytest.mark.parametrize(
    ("principal", "allowed"),
    [(ALICE, True), (BOB, True), (DBA, True), (CI_BOT, True), (STRANGER, False)],
)
def test_the_service_rule_lets_in_anyone_matching_one_list(principal: Principal, allowed: bool) -> None:
    rules = access(allowedUsers=["ci-bot"], allowedGroups=["eng"], allowedDomains=["example.com"])

    assert rules.check_service(principal).allowed is allowed


def test_users_match_email_case_insensitively_and_subjects_exactly() -> None:
    rules = access(allowedUsers=["alice@example.COM", "CI-BOT"])

    assert rules.check_service(ALICE).allowed
    assert not rules.check_service(CI_BOT).allowed


def test_a_signed_in_user_never_matches_by_subject() -> None:
    lookalike = Principal(subject="ci-bot", email="eve@evil.test")

    assert not access(allowedUsers=["ci-bot"]).check_service(lookalike).allowed


def test_a_refusal_names_the_rule_by_key_path_and_in_words() -> None:
    decision = access(allowedGroups=["eng"], allowedUsers=["bob@x.org", "al@x.org"]).check_service(STRANGER)

    assert not decision.allowed
    assert decision.rule == "mcpServers.db.policy"
    assert decision.reason == "only users al@x.org, bob@x.org or groups eng may use db"


def test_a_tool_rule_adds_to_the_service_rule() -> None:
    rules = access(allowedGroups=["eng"], tools={"execute_sql": {"allowedGroups": ["dba"]}})

    assert rules.check_tool(DBA, "execute_sql").allowed
    assert rules.check_tool(BOB, "query").allowed
    refused = rules.check_tool(BOB, "execute_sql")
    assert not refused.allowed
    assert refused.rule == "mcpServers.db.policy.tools.execute_sql"
    assert refused.reason == "only groups dba may call execute_sql"
    # Outside the service, no tool is callable, whichever rule the tool has.
    assert rules.check_tool(STRANGER, "query").rule == "mcpServers.db.policy"


def test_tool_rules_alone_leave_the_service_open() -> None:
    rules = access(tools={"drop table": {"allowedDomains": ["example.com"]}})

    assert rules.check_service(STRANGER).allowed
    assert rules.check_tool(ALICE, "drop table").allowed
    assert rules.check_tool(STRANGER, "drop table").rule == 'mcpServers.db.policy.tools["drop table"]'
    assert rules.callable_tools(STRANGER, ["drop table", "select"]) == {"select"}


def test_a_principal_without_email_matches_no_domain() -> None:
    rules = ServiceAccess.of("db", ServicePolicy(allowed_domains=["example.com"], tools={}))

    assert not rules.check_service(Principal(subject="example.com")).allowed


def test_without_a_policy_everyone_passes() -> None:
    rules = ServiceAccess.of("db", None)

    assert not rules.restricts
    assert rules.check_tool(STRANGER, "anything").allowed


def test_the_evaluator_is_frozen() -> None:
    rules = ServiceAccess.of("db", ServicePolicy(tools={"x": ToolPolicy(allowed_users=["a"])}))

    with pytest.raises(AttributeError):
        rules.service = "other"  # type: ignore[misc]
