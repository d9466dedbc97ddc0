//! Filter planning: which users must be fetched so that evaluating a SCIM filter over them in
//! the gateway is exact. A filter anchored on a searchable attribute becomes a backend query, one
//! anchored on `externalId` an indexed store lookup, one anchored on another attribute only the
//! store holds a scan of the store, `id eq` a direct fetch; anything else a bounded scan of the
//! backend.

use super::mapping;
use super::spec::UserApi;
use crate::scim::filter::{CompareOp, Filter, Literal};
use crate::scim::schema::Resolved;

/// A source of candidate users for one branch of a filter.
#[derive(Debug, Clone)]
pub enum Anchor {
    /// A backend list call with `param=value`.
    Backend { param: String, value: String },
    /// One user fetched by id.
    Id(String),
    /// The store's `externalId` index.
    ExternalId(String),
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
    if let Filter::Compare(r, CompareOp::Eq, Literal::String(value)) = term {
        let canonical = r.canonical();
        if let Some((_, param)) = api.filters.iter().find(|(attr, _)| *attr == canonical) {
            return Some(Anchor::Backend {
                param: param.clone(),
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

fn store_only(api: &UserApi, r: &Resolved) -> bool {
    r.attr.name != "id" && r.attr.name != "meta" && mapping::store_only(api, r.home, r.attr)
}
