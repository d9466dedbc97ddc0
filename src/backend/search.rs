//! Filter planning: which users must be fetched so that evaluating a SCIM filter over them in
//! the gateway is exact. A filter anchored on a searchable attribute becomes a backend query, one
//! anchored on `externalId` an indexed store lookup, one anchored on another attribute only the
//! store holds a scan of the store, `id eq` a direct fetch; anything else a bounded scan of the
//! backend.

use super::mapping;
use super::spec::UserApi;
use crate::scim::filter::{self, CompareOp, Filter, Literal};
use crate::scim::schema::Resolved;

/// A source of candidate users for one branch of a filter.
#[derive(Debug, Clone)]
pub enum Anchor {
    /// A backend list call with `param=value`.
    Backend {
        /// The list call's query parameter.
        param: String,
        /// Its value.
        value: String,
    },
    /// One user fetched by id.
    Id(String),
    /// The store's `externalId` index.
    ExternalId(String),
    /// The store's index of work email addresses (for an `emails` attribute only the store
    /// holds); the address has ASCII characters only, as the index folds ASCII case only.
    WorkEmail(String),
    /// Store records whose saved resource matches this term.
    Store(Filter),
}

/// Candidate sources whose union covers every user `filter` can match; `None` means only a full
/// scan of the backend is exact.
pub fn anchors(api: &UserApi, filter: &Filter) -> Option<Vec<Anchor>> {
    match filter {
        Filter::And(a, b) => best(anchors(api, a), anchors(api, b)),
        Filter::Or(a, b) => {
            let mut left = anchors(api, a)?;
            left.extend(anchors(api, b)?);
            Some(left)
        }
        Filter::Not(_) => None,
        term => anchor(api, term).map(|a| vec![a]),
    }
}

fn best(a: Option<Vec<Anchor>>, b: Option<Vec<Anchor>>) -> Option<Vec<Anchor>> {
    let cost = |v: &Vec<Anchor>| {
        v.iter()
            .map(|x| matches!(x, Anchor::Store(_)) as usize)
            .sum::<usize>()
    };
    match (a, b) {
        (Some(x), Some(y)) => Some(if cost(&y) < cost(&x) { y } else { x }),
        (x, y) => x.or(y),
    }
}

fn anchor(api: &UserApi, term: &Filter) -> Option<Anchor> {
    if let Some(found) = pinned_search(api, term).or_else(|| work_email(api, term)) {
        return Some(found);
    }
    if let Filter::Compare(r, CompareOp::Eq, Literal::String(value)) = term {
        let canonical = r.canonical();
        let listed = api
            .filters
            .iter()
            .find(|f| f.target.element.is_none() && f.target.attr.canonical() == canonical);
        if let Some(f) = listed {
            return Some(Anchor::Backend {
                param: f.param.clone(),
                value: value.clone(),
            });
        }
        if r.attr.name == "id" {
            return Some(Anchor::Id(value.clone()));
        }
        if r.attr.name == "externalId" && store_only(api, r) {
            return Some(Anchor::ExternalId(value.clone()));
        }
    }
    let attr = match term {
        Filter::Compare(r, op, lit) if *op != CompareOp::Ne && *lit != Literal::Null => r,
        Filter::Present(r) | Filter::Element(r, _) => r,
        _ => return None,
    };
    store_only(api, attr).then(|| Anchor::Store(term.clone()))
}

/// `emails[type eq "work"].value eq "x"` (parsed as an element filter whose conjunction pins
/// `type` and `value`) when `[users.filters]` lists the element `emails[type eq "work"].value`:
/// a backend search for `x`. Extra `eq` terms in the brackets only narrow the match.
fn pinned_search(api: &UserApi, term: &Filter) -> Option<Anchor> {
    let Filter::Element(r, inner) = term else {
        return None;
    };
    let terms = filter::eq_constraints(inner)?;
    api.filters.iter().find_map(|f| {
        let pins = f.target.element.as_ref()?;
        let sub = f.target.attr.sub?;
        let same_attr = f.target.attr.attr.name == r.attr.name && f.target.attr.home == r.home;
        if !same_attr || !pins.iter().all(|pin| terms.contains(pin)) {
            return None;
        }
        let value = terms
            .iter()
            .find(|(name, _)| *name == sub.name)
            .and_then(|(_, v)| v.as_str())?;
        Some(Anchor::Backend {
            param: f.param.clone(),
            value: value.to_string(),
        })
    })
}

/// `emails[type eq "work"].value eq "x"` (or with more `eq` terms in the brackets) when only
/// the store holds `emails`: a lookup in the store's work email index, whose users are then
/// fetched and the whole filter evaluated on them. Exact, because every value the filter can
/// match was written through the gateway into a record, and the engine indexes each record in
/// the transaction that writes it; a backend changed behind the gateway's back cannot change
/// what only the store holds. An address with other than ASCII characters stays a scan.
fn work_email(api: &UserApi, term: &Filter) -> Option<Anchor> {
    let Filter::Element(r, inner) = term else {
        return None;
    };
    if r.attr.name != "emails" || !store_only(api, r) {
        return None;
    }
    let terms = filter::eq_constraints(inner)?;
    let pinned = |name: &str| {
        terms
            .iter()
            .find(|(n, _)| *n == name)
            .and_then(|(_, v)| v.as_str())
    };
    let is_work = pinned("type").is_some_and(|t| t.eq_ignore_ascii_case("work"));
    let value = pinned("value").filter(|v| v.is_ascii())?;
    is_work.then(|| Anchor::WorkEmail(value.to_string()))
}

fn store_only(api: &UserApi, r: &Resolved) -> bool {
    r.attr.name != "id" && r.attr.name != "meta" && mapping::store_only(api, r.home, r.attr)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::from_str;
    use std::path::Path;

    /// The demo's API with `emails[type eq "work"].value` mapped to and searchable as `mail`.
    fn api() -> UserApi {
        let text = include_str!("../../conf/demo.toml").replacen(
            "userName = \"email\"",
            "userName = \"email\"\n'emails[type eq \"work\"].value' = \"mail\"",
            1,
        )
            + "\n[[users.fields]]\nscim = 'emails[type eq \"work\"].value'\nnative = \"mail\"\n";
        from_str(&text, Path::new("t.toml")).unwrap().users
    }

    fn plan(text: &str) -> Option<Vec<Anchor>> {
        anchors(&api(), &filter::parse(text).unwrap())
    }

    fn backend_params(text: &str) -> Option<Vec<(String, String)>> {
        plan(text)?
            .into_iter()
            .map(|a| match a {
                Anchor::Backend { param, value } => Some((param, value)),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn the_pinned_element_is_searched_in_the_backend() {
        let mail = Some(vec![("mail".to_string(), "a@b.c".to_string())]);
        assert_eq!(
            backend_params(r#"emails[type eq "work"].value eq "a@b.c""#),
            mail
        );
        assert_eq!(
            backend_params(r#"emails[type eq "work" and primary eq true and value eq "a@b.c"]"#),
            mail
        );
        assert_eq!(
            backend_params(r#"userName eq "u" or emails[type eq "work"].value eq "a@b.c""#),
            Some(vec![
                ("email".to_string(), "u".to_string()),
                ("mail".to_string(), "a@b.c".to_string())
            ])
        );
    }

    #[test]
    fn a_work_email_only_the_store_holds_is_looked_up_in_its_index() {
        let demo = || {
            from_str(include_str!("../../conf/demo.toml"), Path::new("d.toml"))
                .unwrap()
                .users
        };
        let plan = |text: &str| anchors(&demo(), &filter::parse(text).unwrap());
        for text in [
            r#"emails[type eq "work"].value eq "A@b.c""#,
            r#"emails[type eq "Work" and value eq "A@b.c"]"#,
        ] {
            assert!(
                matches!(plan(text).as_deref(), Some([Anchor::WorkEmail(v)]) if v == "A@b.c"),
                "{text}: {:?}",
                plan(text)
            );
        }
        for text in [
            r#"emails[type eq "home"].value eq "a@b.c""#,
            r#"emails[type eq "work"].value eq "ä@b.c""#,
            r#"emails[value eq "a@b.c"]"#,
        ] {
            assert!(
                !matches!(plan(text).as_deref(), Some([Anchor::WorkEmail(_)])),
                "{text}"
            );
        }
        assert!(
            !matches!(
                anchors(
                    &api(),
                    &filter::parse(r#"emails[type eq "work"].value eq "a@b.c""#).unwrap()
                )
                .as_deref(),
                Some([Anchor::WorkEmail(_)])
            ),
            "a backend that holds and searches the address is asked"
        );
    }

    #[test]
    fn other_elements_are_a_scan() {
        for text in [
            r#"emails[type eq "home"].value eq "a@b.c""#,
            r#"emails[value eq "a@b.c"]"#,
            r#"emails[type eq "work"].value sw "a""#,
            r#"emails[type eq "work" or value eq "a@b.c"]"#,
            r#"emails.value eq "a@b.c""#,
        ] {
            assert!(plan(text).is_none(), "{text}");
        }
    }
}
