//! A cursor walk over a list read by offset (RFC 9865 over index paging): resumes after the last
//! id returned, re-finding it from an offset hint, so that an item present throughout the walk
//! is returned exactly once although items before it come and go. The list must be in
//! ascending [`id_order`]; every read must be one snapshot (one backend call).

use crate::scim::cursor::Position;
use crate::scim::error::{ScimError, ScimType};
use std::cmp::Ordering;
use std::future::Future;

/// Reads a walk may make before it gives up on a list that keeps moving.
const MAX_READS: usize = 64;

/// One page of a cursor walk.
#[derive(Debug, Clone)]
pub struct Walk<T> {
    /// The page's items, in list order.
    pub items: Vec<T>,
    /// All items of the list, when known.
    pub total: Option<usize>,
    /// Where the next page starts; `None` after the last page.
    pub next: Option<Position>,
}

/// The order a walked list must be in: ids of ASCII digits only by their numeric value, any
/// other ids (and a number against a non-number) by their bytes.
pub fn id_order(a: &str, b: &str) -> Ordering {
    let numeric = |s: &str| !s.is_empty() && s.bytes().all(|c| c.is_ascii_digit());
    if numeric(a) && numeric(b) {
        let (a, b) = (a.trim_start_matches('0'), b.trim_start_matches('0'));
        a.len().cmp(&b.len()).then_with(|| a.cmp(b))
    } else {
        a.cmp(b)
    }
}

/// The walk's start: after nothing, or after an id at an offset hint.
fn start(from: Option<&Position>) -> Result<(Option<String>, usize), ScimError> {
    match from {
        None => Ok((None, 0)),
        Some(Position::After { id, at }) => {
            let at = usize::try_from(*at).unwrap_or(usize::MAX);
            Ok((Some(id.clone()), at))
        }
        Some(Position::Token { .. }) => Err(ScimError::bad_request(
            ScimType::InvalidCursor,
            "invalid cursor: it was issued for another paging of this list; restart with an empty cursor",
        )),
    }
}

/// The offset and size of a read of at most `size` items holding the item at `index` and as
/// many after it as can be, for a list read in aligned pages (the offset a multiple of the
/// size, as page-numbered backends require). Only when `index + 1` is a multiple of every size
/// from 2 to `size` (never, for sizes of 24 and more) does it hold nothing after `index`.
fn window(index: usize, size: usize) -> (usize, usize) {
    let size = size.max(2);
    let best = (2..=size)
        .max_by_key(|s| (s - index % s, *s))
        .unwrap_or(size);
    (index - index % best, best)
}

/// What a walk has returned so far and where it stands in the list.
struct Progress<T> {
    /// The last id returned (or the cursor's), which the rest of the walk follows.
    after: Option<String>,
    /// The offset of an item at or before `after` (the last returned, when known), which a
    /// read must hold, or start the list, for nothing after `after` to be missed.
    anchor: Option<usize>,
    items: Vec<T>,
    count: usize,
}

impl<T> Progress<T> {
    /// Whether a read at `lo` starting with `first` may have missed items after `after`
    /// (items before the anchor went away, shifting what follows it before `lo`).
    fn missed_before(&self, lo: usize, first: Option<&String>) -> bool {
        let Some(after) = &self.after else {
            return false;
        };
        lo > 0 && first.is_none_or(|id| id_order(id, after) == Ordering::Greater)
    }

    /// Takes the items of a read at `lo` that follow `after`, until `count`; `true` when one
    /// more followed (so the walk goes on after this page).
    fn take(&mut self, lo: usize, read: Vec<(Option<String>, T)>) -> bool {
        for (i, (id, item)) in read.into_iter().enumerate() {
            let Some(id) = id else { continue };
            let followed = self
                .after
                .as_deref()
                .is_none_or(|a| id_order(&id, a) == Ordering::Greater);
            if followed && self.items.len() == self.count {
                return true;
            }
            self.anchor = Some(lo + i);
            if followed {
                self.after = Some(id);
                self.items.push(item);
            }
        }
        false
    }

    /// The page, with where the next one starts when `more`.
    fn page(self, total: Option<usize>, more: bool) -> Walk<T> {
        let at = self.anchor.map_or(0, |k| k as u64 + 1);
        let next = self
            .after
            .filter(|_| more)
            .map(|id| Position::After { id, at });
        Walk {
            items: self.items,
            total,
            next,
        }
    }
}

/// Up to `count` items after `from`, read by `read(offset, size)` (one snapshot of items
/// `[offset, offset + size)` and the list's total, if known) in reads of at most `size`;
/// `id_of` names an item.
pub async fn resume<T, F, Fut>(
    from: Option<&Position>,
    count: usize,
    size: usize,
    id_of: impl Fn(&T) -> Option<String>,
    mut read: F,
) -> Result<Walk<T>, ScimError>
where
    F: FnMut(usize, usize) -> Fut,
    Fut: Future<Output = Result<(Vec<T>, Option<usize>), ScimError>>,
{
    let (after, hint) = start(from)?;
    let mut progress = Progress {
        after,
        anchor: hint.checked_sub(1),
        items: Vec::new(),
        count,
    };
    let mut back = size.max(1);
    let mut total = None;
    for _ in 0..MAX_READS {
        let (mut lo, mut n) = match progress.anchor {
            Some(k) => window(k, size),
            None => (0, size.max(1)),
        };
        // A read that can hold nothing after the anchor (see `window`) goes past it unchecked.
        let past = progress.anchor.filter(|k| lo + n <= k + 1);
        if let Some(k) = past {
            (lo, n) = window(k + 1, size);
        }
        let (items, t) = read(lo, n).await?;
        total = t.or(total);
        let full = items.len() >= n;
        let read: Vec<(Option<String>, T)> = items.into_iter().map(|i| (id_of(&i), i)).collect();
        if past.is_none()
            && progress.missed_before(lo, read.first().and_then(|(id, _)| id.as_ref()))
        {
            progress.anchor = progress.anchor.map(|k| k.saturating_sub(back));
            back = back.saturating_mul(2);
            continue;
        }
        back = size.max(1);
        if progress.take(lo, read) {
            return Ok(progress.page(total, true));
        }
        if !full {
            return Ok(progress.page(total, false));
        }
    }
    if progress.items.is_empty() {
        return Err(ScimError::unavailable(
            "the list changed too fast to find where the cursor resumes: retry",
        )
        .with_retry_after(1));
    }
    Ok(progress.page(total, true))
}

/// Up to `count` of `items` (the whole list, in any order) after `from`, in ascending
/// [`id_order`] of the ids `id_of` gives: a walk over a list held whole (a filter's matches).
pub fn sorted_after<T>(
    mut items: Vec<T>,
    id_of: impl Fn(&T) -> String,
    from: Option<&Position>,
    count: usize,
) -> Result<Walk<T>, ScimError> {
    let (after, _) = start(from)?;
    let total = items.len();
    items.sort_by(|a, b| id_order(&id_of(a), &id_of(b)));
    let first = match &after {
        Some(a) => items.partition_point(|i| id_order(&id_of(i), a) != Ordering::Greater),
        None => 0,
    };
    let mut page: Vec<T> = items.into_iter().skip(first).collect();
    let more = page.len() > count;
    page.truncate(count);
    let next = page.last().filter(|_| more).map(|last| Position::After {
        id: id_of(last),
        at: 0,
    });
    Ok(Walk {
        items: page,
        total: Some(total),
        next,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    /// Walks `list` by `count`, calling `between` with the list before each page's read.
    fn walk_all(
        list: Vec<u32>,
        count: usize,
        size: usize,
        mut between: impl FnMut(usize, &mut Vec<u32>),
    ) -> Vec<u32> {
        let list = Mutex::new(list);
        let mut seen = Vec::new();
        let mut from = None;
        for page in 0.. {
            between(page, &mut list.lock().unwrap());
            let walk = futures::executor::block_on(resume(
                from.as_ref(),
                count,
                size,
                |n: &u32| Some(n.to_string()),
                |lo, n| {
                    let l = list.lock().unwrap();
                    let items = l.iter().skip(lo).take(n).copied().collect();
                    let total = l.len();
                    async move { Ok((items, Some(total))) }
                },
            ))
            .unwrap();
            assert!(walk.items.len() <= count);
            seen.extend(walk.items);
            match walk.next {
                Some(p) => from = Some(p),
                None => break,
            }
        }
        seen
    }

    #[test]
    fn a_still_list_is_walked_in_order_once() {
        let list: Vec<u32> = (1..=1000).collect();
        for (count, size) in [(7, 7), (10, 200), (200, 200), (1000, 200), (3, 4), (1, 30)] {
            assert_eq!(
                walk_all(list.clone(), count, size, |_, _| {}),
                list,
                "{count}/{size}"
            );
        }
        assert!(walk_all(vec![], 5, 5, |_, _| {}).is_empty());
    }

    #[test]
    fn items_present_throughout_are_seen_once_while_others_come_and_go() {
        let stable: Vec<u32> = (0..600).map(|i| i * 10).collect();
        let mut added = 6000;
        let seen = walk_all(stable.clone(), 25, 40, |page, list| {
            // Before each page: delete some items the walk passed and some ahead, add some
            // behind and ahead.
            for _ in 0..(page % 4 + 1) {
                let gone = list
                    .iter()
                    .position(|n| !n.is_multiple_of(10) && (n + page as u32).is_multiple_of(3));
                if let Some(i) = gone {
                    list.remove(i);
                }
            }
            for k in 0..5u32 {
                let n = (page as u32 * 97 + k * 1231) % 6000 + 1;
                if !list.contains(&n) && !n.is_multiple_of(10) {
                    list.push(n);
                }
            }
            added += 1;
            list.push(added);
            list.sort();
        });
        let mut sorted = seen.clone();
        sorted.dedup();
        assert_eq!(sorted.len(), seen.len(), "no item twice");
        assert!(seen.windows(2).all(|w| w[0] < w[1]), "in id order");
        for n in stable {
            assert!(seen.contains(&n), "{n} missed");
        }
    }

    #[test]
    fn mass_deletions_before_the_cursor_are_found_by_backing_off() {
        let list: Vec<u32> = (1..=2000).collect();
        let seen = walk_all(list, 50, 50, |page, list| {
            if page == 20 {
                list.retain(|n| *n > 900 || n % 2 == 0);
            }
        });
        assert_eq!(seen.iter().filter(|n| **n > 1000).count(), 1000);
    }

    #[test]
    fn a_list_held_whole_is_walked_in_id_order() {
        let id = |n: &u32| n.to_string();
        let w = sorted_after(vec![30, 4, 100, 7], id, None, 2).unwrap();
        assert_eq!((w.items, w.total), (vec![4, 7], Some(4)));
        let next = w.next.unwrap();
        // 5 appeared before the cursor and 7 went away: the walk goes on after 7.
        let w = sorted_after(vec![100, 30, 5, 4], id, Some(&next), 2).unwrap();
        assert_eq!((w.items, w.next), (vec![30, 100], None));
    }

    #[test]
    fn ids_order_numerically_when_both_are_numbers() {
        assert_eq!(id_order("9", "10"), Ordering::Less);
        assert_eq!(id_order("010", "10"), Ordering::Equal);
        assert_eq!(id_order("usr_9", "usr_10"), Ordering::Greater);
        assert_eq!(id_order("9", "a"), Ordering::Less);
    }

    #[test]
    fn a_token_position_is_an_invalid_cursor_here() {
        let from = Position::Token {
            token: "x".into(),
            skip: 0,
        };
        let r = futures::executor::block_on(resume(
            Some(&from),
            5,
            5,
            |n: &u32| Some(n.to_string()),
            |_, _| async { Ok((Vec::new(), None)) },
        ));
        assert_eq!(
            r.unwrap_err().scim_type,
            Some(crate::scim::error::ScimType::InvalidCursor)
        );
    }
}
