//! The query string of the demo backend's listings: `page`/`per_page` paging and an optional
//! exact-match filter (`email` for members, `name` for projects).

use super::error::ApiError;

/// Default page size of listings.
const DEFAULT_PER_PAGE: u64 = 50;
/// Largest page size; larger requests are clamped.
const MAX_PER_PAGE: u64 = 200;

/// Query parameters of a listing.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct ListQuery {
    /// The value of the listing's filter parameter, if given and not empty.
    pub filter: Option<String>,
    /// 1-based.
    pub page: u64,
    /// Clamped to [`MAX_PER_PAGE`].
    pub per_page: u64,
}

impl ListQuery {
    /// Parses `query`; `filter_key` names the filter parameter, if the listing has one. Empty
    /// values count as absent and unknown parameters are ignored.
    pub fn parse(query: &str, filter_key: Option<&str>) -> Result<Self, ApiError> {
        let mut q = ListQuery {
            filter: None,
            page: 1,
            per_page: DEFAULT_PER_PAGE,
        };
        for (key, value) in form_urlencoded::parse(query.as_bytes()) {
            if value.is_empty() {
                continue;
            }
            match key.as_ref() {
                "page" => q.page = positive(&key, &value)?,
                "per_page" => q.per_page = positive(&key, &value)?.min(MAX_PER_PAGE),
                k if Some(k) == filter_key => q.filter = Some(value.into_owned()),
                _ => {}
            }
        }
        Ok(q)
    }

    /// The page size as an SQL `LIMIT`.
    pub fn limit(&self) -> u32 {
        u32::try_from(self.per_page).unwrap_or(u32::MAX)
    }

    /// How many records come before this page.
    pub fn offset(&self) -> u64 {
        (self.page - 1).saturating_mul(self.per_page)
    }
}

fn positive(key: &str, value: &str) -> Result<u64, ApiError> {
    value
        .parse::<u64>()
        .ok()
        .filter(|n| *n >= 1)
        .ok_or_else(|| ApiError::invalid(format!("{key} must be a positive integer")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parsing() {
        let q = ListQuery::parse("page=2&per_page=500&email=a%40b&x=1", Some("email"));
        assert_eq!(
            q.map_err(|e| e.message),
            Ok(ListQuery {
                filter: Some("a@b".into()),
                page: 2,
                per_page: 200
            })
        );
        assert!(ListQuery::parse("page=0", None).is_err());
        assert!(ListQuery::parse("per_page=abc", None).is_err());
        let q = ListQuery::parse("page=", None);
        assert_eq!(q.map(|q| q.page).ok(), Some(1));
    }

    #[test]
    fn filter_key_is_per_listing() {
        let q = ListQuery::parse("email=a&name=Apollo", Some("name"));
        assert_eq!(q.ok().and_then(|q| q.filter), Some("Apollo".into()));
        let q = ListQuery::parse("name=Apollo", None);
        assert_eq!(q.ok().and_then(|q| q.filter), None);
    }

    #[test]
    fn offset_and_limit() -> Result<(), ApiError> {
        let q = ListQuery::parse("page=3&per_page=20", None)?;
        assert_eq!((q.offset(), q.limit()), (40, 20));
        let q = ListQuery::parse(&format!("page={}", u64::MAX), None)?;
        assert_eq!(q.offset(), u64::MAX);
        Ok(())
    }
}
