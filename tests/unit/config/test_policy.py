from __future__ import annotations

from pathlib import Path

from mcp_front.config import AuditConfig, ServicePolicy, ToolPolicy, load_config

from .support import problems, stdio_server, with_servers


def test_a_policy_reads_from_camel_case_json() -> None:
    config = load_config(
        with_servers(
            db=stdio_server(
                policy={
                    "allowedUsers": ["alice@example.com"],
                    "allowedGroups": ["eng"],
                    "allowedDomains": ["Example.COM"],
                    "tools": {"execute_sql": {"allowedGroups": ["dba"], "allowedUsers": []}},
                }
            )
        ),
        environ={},
    )

    policy = config.mcp_servers["db"].policy
    assert policy == ServicePolicy(
        allowed_users=["alice@example.com"],
        allowed_groups=["eng"],
        allowed_domains=["example.com"],
        tools={"execute_sql": ToolPolicy(allowed_groups=["dba"])},
    )


def test_a_service_has_no_policy_by_default() -> None:
    config = load_config(with_servers(db=stdio_server()), environ={})

    assert config.mcp_servers["db"].policy is None
    assert config.proxy.audit is None


def test_a_policy_with_only_tool_rules_is_valid() -> None:
    config = load_config(
        with_servers(db=stdio_server(policy={"tools": {"drop": {"allowedUsers": ["root"]}}})), environ={}
    )

    policy = config.mcp_servers["db"].policy
    assert policy is not None
    assert not policy.restricts


def test_an_empty_policy_is_an_error_at_its_key() -> None:
    [issue] = problems(with_servers(db=stdio_server(policy={})))

    assert issue.startswith("mcpServers.db.policy: names nobody and no tools")
    assert 'remove "policy"' in issue


def test_a_tool_rule_naming_nobody_is_an_error_at_the_tool_key() -> None:
    document = with_servers(
        db=stdio_server(
            policy={
                "tools": {
                    "execute_sql": {"allowedUsers": [], "allowedGroups": []},
                    "ok": {"allowedGroups": ["x"]},
                }
            }
        )
    )

    [issue] = problems(document)

    assert issue.startswith("mcpServers.db.policy.tools.execute_sql: names nobody")
    assert "toolFilter" in issue


def test_bad_entries_are_reported_at_their_index() -> None:
    document = with_servers(
        db=stdio_server(policy={"allowedDomains": ["@example.com"], "allowedUsers": ["ok", " "]})
    )

    assert problems(document) == [
        "mcpServers.db.policy.allowedUsers[1]: must not be empty — an email address or a user name",
        "mcpServers.db.policy.allowedDomains[0]: is a domain, written without '@'"
        ' — for example "example.com"',
    ]


def test_unknown_policy_keys_are_refused() -> None:
    [issue] = problems(with_servers(db=stdio_server(policy={"allowedUser": ["alice"]})))

    assert issue.startswith("mcpServers.db.policy.allowedUser")


def test_the_audit_file_reads_from_the_proxy_block(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"

    config = load_config({"proxy": {"audit": {"file": str(path)}}, "mcpServers": {}}, environ={})

    assert config.proxy.audit == AuditConfig(file=str(path))


def test_an_audit_file_in_a_missing_directory_is_an_error_naming_the_key(tmp_path: Path) -> None:
    path = tmp_path / "missing" / "audit.jsonl"

    [issue] = problems({"proxy": {"audit": {"file": str(path)}}, "mcpServers": {}})

    assert issue.startswith(f"proxy.audit.file: its directory {tmp_path / 'missing'} does not exist")
    assert "create the directory" in issue
