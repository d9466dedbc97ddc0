//! Cursor walks (RFC 9865) over a backend that pages by its own continuation (a `next` token,
//! or keyset paging's last id): the SCIM cursor carries the backend's continuation, and how
//! much of the page it opens was already returned.

use super::calls::ContinuedPage;
use crate::scim::cursor::Position;
use crate::scim::error::{ScimError, ScimType};
use crate::service::Walk;
use serde_json::Value;
use std::future::Future;

/// Backend pages a walk reads for one SCIM page before it answers what it has.
const MAX_READS: usize = 64;

/// Up to `count` items from `from` (the first page when `None`), read by `read(token, size)`
/// (the first page for token `None`).
pub async fn by_continuation<F, Fut>(
    from: Option<&Position>,
    count: usize,
    mut read: F,
) -> Result<Walk<Value>, ScimError>
where
    F: FnMut(Option<String>, usize) -> Fut,
    Fut: Future<Output = Result<ContinuedPage, ScimError>>,
{
    // The first page's continuation is spelled "" (a backend's token is never empty).
    let (mut token, mut skip) = match from {
        None => (String::new(), 0),
        Some(Position::Token { token, skip }) => {
            (token.clone(), usize::try_from(*skip).unwrap_or(usize::MAX))
        }
        Some(Position::After { .. }) => {
            return Err(ScimError::bad_request(
                ScimType::InvalidCursor,
                "invalid cursor: it was issued for another paging of this list; restart with an empty cursor",
            ))
        }
    };
    let mut items = Vec::new();
    let mut total = None;
    for _ in 0..MAX_READS {
        let want = (count - items.len()).saturating_add(skip);
        let at = (!token.is_empty()).then(|| token.clone());
        let got = read(at, want).await?;
        total = got.page.total.or(total);
        let fresh: Vec<Value> = got.page.items.into_iter().skip(skip).collect();
        let room = count - items.len();
        if fresh.len() > room {
            // The backend answered more than asked: the cursor reopens this page past them.
            items.extend(fresh.into_iter().take(room));
            let skip = (skip + room) as u64;
            let next = Some(Position::Token { token, skip });
            return Ok(Walk { items, total, next });
        }
        items.extend(fresh);
        skip = 0;
        match got.next {
            None => {
                return Ok(Walk {
                    items,
                    total,
                    next: None,
                })
            }
            Some(next) => token = next,
        }
        if items.len() == count {
            break;
        }
    }
    let next = Some(Position::Token { token, skip: 0 });
    Ok(Walk { items, total, next })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::calls::NativePage;
    use serde_json::json;

    /// A backend of `n` items answering `per_page` of them (whatever the size asked) from the
    /// offset its token names.
    fn read(
        n: u64,
        per_page: Option<usize>,
    ) -> impl FnMut(Option<String>, usize) -> std::future::Ready<Result<ContinuedPage, ScimError>>
    {
        move |token, size| {
            let at: u64 = token.map_or(0, |t| t.trim_start_matches('p').parse().unwrap());
            let size = per_page.unwrap_or(size) as u64;
            let items = (at..n.min(at + size)).map(|i| json!(i)).collect();
            let next = (at + size < n).then(|| format!("p{}", at + size));
            std::future::ready(Ok(ContinuedPage {
                page: NativePage { items, total: None },
                next,
            }))
        }
    }

    fn walk_all(n: u64, count: usize, per_page: Option<usize>) -> Vec<Value> {
        let mut seen = Vec::new();
        let mut from = None;
        loop {
            let w = futures::executor::block_on(by_continuation(
                from.as_ref(),
                count,
                read(n, per_page),
            ))
            .unwrap();
            assert!(w.items.len() <= count);
            seen.extend(w.items);
            match w.next {
                Some(p) => from = Some(p),
                None => return seen,
            }
        }
    }

    #[test]
    fn every_item_once_whatever_the_backend_page_size() {
        let all: Vec<Value> = (0..103).map(|i| json!(i)).collect();
        for (count, per_page) in [
            (10, None),
            (7, Some(5)),
            (10, Some(25)),
            (200, Some(50)),
            (1, Some(3)),
        ] {
            assert_eq!(walk_all(103, count, per_page), all, "{count}/{per_page:?}");
        }
    }

    #[test]
    fn a_keyset_cursor_is_invalid_here() {
        let from = Position::After {
            id: "1".into(),
            at: 0,
        };
        let r = futures::executor::block_on(by_continuation(Some(&from), 5, read(3, None)));
        assert_eq!(r.unwrap_err().scim_type, Some(ScimType::InvalidCursor));
    }
}
