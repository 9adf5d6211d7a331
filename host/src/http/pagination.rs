//! Pagination of API.md: `?page=` (1-based, default 1) and `&per_page=` (default 20, 1..=100;
//! out of range is 400), answered as `{"items", "page", "per_page", "total", "total_pages"}`.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::extract::Query;
use crate::error::Error;
use crate::http::error::AppError;

pub const DEFAULT_PER_PAGE: i64 = 20;
pub const MAX_PER_PAGE: i64 = 100;
/// The last page anyone may ask for: a round bound, exact in the spec's JSON numbers, whose
/// offset (`page * per_page`) cannot overflow.
pub const MAX_PAGE: i64 = 1_000_000_000_000_000;

/// Validated page parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pagination {
    pub page: i64,
    pub per_page: i64,
}

/// The raw query: strings, so that `per_page=abc` gets our message rather than serde's.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PageQuery {
    /// 1-based page number (default 1).
    #[param(value_type = Option<i64>, minimum = 1, maximum = 1_000_000_000_000_000_i64)]
    pub page: Option<String>,
    /// Items per page, 1..=100 (default 20).
    #[param(value_type = Option<i64>, minimum = 1, maximum = 100)]
    pub per_page: Option<String>,
}

impl Pagination {
    pub fn parse(page: Option<&str>, per_page: Option<&str>) -> Result<Self, AppError> {
        let number = |field: &'static str, raw: Option<&str>, default: i64, max: i64| match raw {
            None => Ok(default),
            Some(raw) => match raw.trim().parse::<i64>() {
                Ok(n) if (1..=max).contains(&n) => Ok(n),
                _ => Err(Error::validation(field, format!("must be a whole number from 1 to {max}, got {raw:?}"))),
            },
        };
        Ok(Pagination {
            page: number("page", page, 1, MAX_PAGE)?,
            per_page: number("per_page", per_page, DEFAULT_PER_PAGE, MAX_PER_PAGE)?,
        })
    }

    pub fn limit(&self) -> i64 {
        self.per_page
    }

    pub fn offset(&self) -> i64 {
        (self.page - 1) * self.per_page
    }

    pub fn wrap<T>(&self, items: Vec<T>, total: i64) -> Paginated<T> {
        Paginated {
            items,
            page: self.page,
            per_page: self.per_page,
            total,
            total_pages: (total + self.per_page - 1) / self.per_page,
        }
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Pagination {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, AppError> {
        let Query(q) = Query::<PageQuery>::from_request_parts(parts, state).await?;
        Pagination::parse(q.page.as_deref(), q.per_page.as_deref())
    }
}

/// One page of a list.
#[derive(Debug, Serialize, ToSchema)]
pub struct Paginated<T> {
    pub items: Vec<T>,
    #[schema(example = 1)]
    pub page: i64,
    #[schema(example = 20)]
    pub per_page: i64,
    #[schema(example = 57)]
    pub total: i64,
    #[schema(example = 3)]
    pub total_pages: i64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_bounds() {
        assert_eq!(Pagination::parse(None, None).expect("ok"), Pagination { page: 1, per_page: 20 });
        assert_eq!(Pagination::parse(Some("3"), Some("100")).expect("ok"), Pagination { page: 3, per_page: 100 });
        for (page, per_page, field) in [
            (Some("0"), None, "page"),
            (Some("-1"), None, "page"),
            (Some("x"), None, "page"),
            (None, Some("0"), "per_page"),
            (None, Some("101"), "per_page"),
            (None, Some("1.5"), "per_page"),
        ] {
            let err = Pagination::parse(page, per_page).expect_err("out of range");
            assert_eq!(err.code(), "validation_failed");
            assert!(err.to_string().starts_with(field), "{err}");
        }
    }

    #[test]
    fn pages_count_up() {
        let p = Pagination { page: 3, per_page: 20 };
        assert_eq!(p.offset(), 40);
        let page = p.wrap(vec![1, 2], 57);
        assert_eq!((page.total, page.total_pages), (57, 3));
        assert_eq!(Pagination { page: 1, per_page: 20 }.wrap(Vec::<i32>::new(), 0).total_pages, 0);
    }
}
