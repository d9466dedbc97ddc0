//! The guard's decision, a pure function: given the matched rule, its path parameters, what the
//! body and query carry, who is calling and whether they are SCIM-managed — pass or block.

use super::rules::{Member, Rule};
use crate::scim::fold::key_form;

/// Who is calling.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// The caller's backend user id.
    pub id: String,
    /// The backend name of the caller's tenant, when known.
    pub tenant: Option<String>,
    /// The caller's role in their tenant (`admin`), when the identity source says it.
    pub role: Option<String>,
}

/// The outcome for one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Forward it.
    Pass,
    /// Refuse it: the caller is changing their own SCIM-managed account.
    Block,
}

/// Whether a rule applies at all: a rule with fields only guards requests that carry one of them
/// (names compared the way a lenient backend binds them: `Email`, `e_mail`).
pub fn rule_applies(rule: &Rule, carried: &[String]) -> bool {
    rule.fields.is_empty()
        || rule
            .fields
            .iter()
            .any(|f| carried.iter().any(|c| key_form(c) == key_form(f)))
}

/// The id of the member the request affects (`None` when the parameter is missing).
pub fn affected<'a>(
    rule: &Rule,
    params: &'a [(String, String)],
    caller: &'a Caller,
) -> Option<&'a str> {
    match &rule.member {
        Member::Caller => Some(&caller.id),
        Member::Param(name) => {
            let value = params
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.as_str())?;
            Some(if value.eq_ignore_ascii_case("me") {
                &caller.id
            } else {
                value
            })
        }
    }
}

/// An id as a lenient backend reads it: numeric ids without leading zeros (`007` is 7), others
/// in lower case.
pub fn lenient_id(s: &str) -> String {
    if !s.is_empty() && s.bytes().all(|c| c.is_ascii_digit()) {
        let t = s.trim_start_matches('0');
        if t.is_empty() {
            "0".into()
        } else {
            t.into()
        }
    } else {
        s.to_ascii_lowercase()
    }
}

/// Ids compared the way a lenient backend reads them (see [`lenient_id`]).
pub fn same_member(a: &str, b: &str) -> bool {
    lenient_id(a) == lenient_id(b)
}

/// Blocks when the request changes the caller's own account and that account is managed.
pub fn decide(
    rule: &Rule,
    params: &[(String, String)],
    carried: &[String],
    caller: &Caller,
    managed: bool,
) -> Verdict {
    if !rule_applies(rule, carried) {
        return Verdict::Pass;
    }
    match affected(rule, params, caller) {
        Some(member) if same_member(member, &caller.id) && managed => Verdict::Block,
        Some(_) => Verdict::Pass,
        None => Verdict::Block,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::guard::route::RouteTemplate;
    use http::Method;

    fn rule(path: &str, member: Member, fields: &[&str]) -> Rule {
        Rule {
            name: "r".into(),
            methods: vec![Method::DELETE],
            path: RouteTemplate::parse(path).unwrap(),
            fields: fields.iter().map(|s| s.to_string()).collect(),
            member,
            tenant: None,
            group: None,
        }
    }

    fn caller(id: &str) -> Caller {
        Caller {
            id: id.into(),
            tenant: Some("acme".into()),
            role: None,
        }
    }

    fn p(k: &str, v: &str) -> Vec<(String, String)> {
        vec![(k.into(), v.into())]
    }

    #[test]
    fn leave_blocks_only_the_managed_caller_themself() {
        let r = rule(
            "/api/teams/{team}/members/{member}",
            Member::Param("member".into()),
            &[],
        );
        assert_eq!(
            decide(&r, &p("member", "me"), &[], &caller("7"), true),
            Verdict::Block
        );
        assert_eq!(
            decide(&r, &p("member", "7"), &[], &caller("7"), true),
            Verdict::Block
        );
        assert_eq!(
            decide(&r, &p("member", "007"), &[], &caller("7"), true),
            Verdict::Block
        );
        assert_eq!(
            decide(&r, &p("member", "8"), &[], &caller("7"), true),
            Verdict::Pass
        );
        assert_eq!(
            decide(&r, &p("member", "me"), &[], &caller("7"), false),
            Verdict::Pass
        );
    }

    #[test]
    fn field_rules_apply_only_when_the_field_is_carried() {
        let r = rule("/api/users/{id}", Member::Param("id".into()), &["email"]);
        let with = vec!["first_name".to_string(), "Email".to_string()];
        let without = vec!["first_name".to_string()];
        assert_eq!(
            decide(&r, &p("id", "7"), &with, &caller("7"), true),
            Verdict::Block
        );
        assert_eq!(
            decide(&r, &p("id", "7"), &without, &caller("7"), true),
            Verdict::Pass
        );
    }

    #[test]
    fn caller_rules_block_managed_callers() {
        let r = rule("/api/me/password", Member::Caller, &[]);
        assert_eq!(decide(&r, &[], &[], &caller("7"), true), Verdict::Block);
        assert_eq!(decide(&r, &[], &[], &caller("7"), false), Verdict::Pass);
    }

    #[test]
    fn ids_compare_like_a_lenient_backend() {
        assert!(same_member("007", "7"));
        assert!(same_member("ACC_x", "acc_X"));
        assert!(!same_member("70", "7"));
        assert!(same_member("000", "0"));
    }
}
