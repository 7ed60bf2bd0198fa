from dataclasses import dataclass, field

import pytest

from mcp_front.auth.sign_in_policy import SignInPolicy


@dataclass(frozen=True)
class Person:
    email: str | None
    email_verified: bool = True
    groups: frozenset[str] = field(default_factory=frozenset)
    orgs: frozenset[str] = field(default_factory=frozenset)


POLICY = SignInPolicy.of(allowed_domains=["Example.com"], allowed_emails=["Guest@Partner.io"])


@pytest.mark.parametrize(
    ("person", "allowed", "reason"),
    [
        (Person("ada@example.com"), True, "allowed"),
        (Person("ADA@EXAMPLE.COM"), True, "allowed"),
        (Person("guest@partner.io"), True, "allowed"),
        (Person("other@partner.io"), False, "other@partner.io is not a member of this organisation."),
        (Person("ada@example.com.evil.io"), False,
         "ada@example.com.evil.io is not a member of this organisation."),
        (Person("ada@sub.example.com"), False, "ada@sub.example.com is not a member of this organisation."),
        (Person("ada@example.com", email_verified=False), False,
         "The email address ada@example.com is not verified at your identity provider."),
        (Person(None), False, "Your identity provider did not share an email address."),
    ],
)  # fmt: skip
def test_domains_or_listed_emails_with_a_verified_address(person: Person, allowed: bool, reason: str) -> None:
    decision = POLICY.check_sign_in(person)
    assert (decision.allowed, decision.reason) == (allowed, reason)


def test_orgs_and_teams_restrict_further() -> None:
    policy = SignInPolicy.of(allowed_domains=["example.com"], allowed_orgs=["Acme", "acme/platform"])
    assert policy.check_sign_in(Person("a@example.com", orgs=frozenset({"acme"}))).allowed
    assert policy.check_sign_in(Person("a@example.com", orgs=frozenset({"other", "acme/platform"}))).allowed
    refused = policy.check_sign_in(Person("a@example.com", orgs=frozenset({"other"})))
    assert refused.reason == "a@example.com is not in any of the allowed organisations or teams."


def test_groups_restrict_further_and_keep_their_case() -> None:
    policy = SignInPolicy.of(allowed_groups=["DBA"], require_verified_email=False)
    assert policy.check_sign_in(Person(None, groups=frozenset({"DBA"}))).allowed
    refused = policy.check_sign_in(Person("x@y.z", email_verified=False, groups=frozenset({"dba"})))
    assert refused.reason == "x@y.z is not in any of the allowed groups."


def test_unverified_email_can_be_accepted_when_switched_off() -> None:
    policy = SignInPolicy.of(allowed_domains=["example.com"], require_verified_email=False)
    assert policy.check_sign_in(Person("a@example.com", email_verified=False)).allowed
