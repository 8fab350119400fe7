//! The headers of a redirect answer, set on a copy of a template instead of inserted
//! one by one.
//!
//! A redirect answers with up to six headers: `Location`, `Cache-Control` (most links),
//! the flood guard's three `RateLimit-*` and `X-Request-Id`. Inserted one by one into an
//! empty `HeaderMap`, they cost about 1,600 instructions a redirect (callgrind): each
//! insert hashes its name and probes the table, and the first one allocates the table.
//! A copy of a map that already holds those names is two allocations and a copy; the
//! values are then set in one pass over it, in the order its template found them.

use crate::http::{RATELIMIT_LIMIT, RATELIMIT_REMAINING, RATELIMIT_RESET, REQUEST_ID};
use poem::http::{HeaderMap, HeaderValue, header};
use std::sync::LazyLock;

/// `Cache-Control` of temporary redirects: each visit comes back, so each is counted.
pub(crate) const PRIVATE_NO_CACHE: HeaderValue = HeaderValue::from_static("private, max-age=0");
/// `Cache-Control` of links whose answer depends on the visit (rules, a password, a
/// forwarded query).
pub(crate) const PRIVATE_NO_STORE: HeaderValue = HeaderValue::from_static("private, no-store");

/// What a redirect answer's `Cache-Control` says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Caching {
    /// No `Cache-Control` (permanent redirects of plain links).
    Default = 0,
    /// [`PRIVATE_NO_STORE`].
    NoStore = 1,
    /// [`PRIVATE_NO_CACHE`].
    Revalidate = 2,
}

impl Caching {
    fn value(self) -> Option<HeaderValue> {
        match self {
            Caching::Default => None,
            Caching::NoStore => Some(PRIVATE_NO_STORE),
            Caching::Revalidate => Some(PRIVATE_NO_CACHE),
        }
    }
}

/// The headers of one redirect answer.
pub(crate) struct RedirectHeaders {
    pub location: HeaderValue,
    pub caching: Caching,
    /// `RateLimit-Limit`, `-Remaining` and `-Reset`, when the flood guard decided.
    pub rate_limit: Option<[HeaderValue; 3]>,
    /// `X-Request-Id`, unless the caller adds it.
    pub request_id: Option<HeaderValue>,
}

impl RedirectHeaders {
    /// The headers as a map: a copy of the template of this shape with its values set,
    /// or, for the shapes there is no template of (the flood guard off), inserted.
    pub(crate) fn into_map(self) -> HeaderMap {
        static TEMPLATES: LazyLock<[Template; 3]> = LazyLock::new(|| {
            [Caching::Default, Caching::NoStore, Caching::Revalidate].map(Template::new)
        });
        let ([limit, remaining, reset], request_id) = match (self.rate_limit, self.request_id) {
            (Some(rate_limit), Some(request_id)) => (rate_limit, request_id),
            (rate_limit, request_id) => {
                return RedirectHeaders {
                    location: self.location,
                    caching: self.caching,
                    rate_limit,
                    request_id,
                }
                .inserted();
            }
        };
        let template = &TEMPLATES[self.caching as usize];
        let mut values = [
            Some(self.location),
            Some(limit),
            Some(remaining),
            Some(reset),
            Some(request_id),
        ];
        let mut headers = template.headers.clone();
        // A copy iterates as its original does, so the template's slots line up.
        for (value, slot) in headers.values_mut().zip(&template.slots) {
            if let Some(new) = slot.and_then(|i| values[i].take()) {
                *value = new;
            }
        }
        headers
    }

    fn inserted(self) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(header::LOCATION, self.location);
        if let Some(value) = self.caching.value() {
            headers.insert(header::CACHE_CONTROL, value);
        }
        if let Some([limit, remaining, reset]) = self.rate_limit {
            headers.insert(RATELIMIT_LIMIT, limit);
            headers.insert(RATELIMIT_REMAINING, remaining);
            headers.insert(RATELIMIT_RESET, reset);
        }
        if let Some(request_id) = self.request_id {
            headers.insert(REQUEST_ID, request_id);
        }
        headers
    }
}

/// Every header of a redirect answer with one `Cache-Control`, values to be set.
struct Template {
    headers: HeaderMap,
    /// For each header, in the map's order of iteration, which of `location`, limit,
    /// remaining, reset and request id goes there (`None`: it keeps its value).
    slots: Vec<Option<usize>>,
}

impl Template {
    fn new(caching: Caching) -> Template {
        let unset = || HeaderValue::from_static("");
        let headers = RedirectHeaders {
            location: unset(),
            caching,
            rate_limit: Some([unset(), unset(), unset()]),
            request_id: Some(unset()),
        }
        .inserted();
        let order = [
            header::LOCATION,
            RATELIMIT_LIMIT,
            RATELIMIT_REMAINING,
            RATELIMIT_RESET,
            REQUEST_ID,
        ];
        let slots = headers
            .iter()
            .map(|(name, _)| order.iter().position(|n| n == name))
            .collect();
        Template { headers, slots }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(caching: Caching, rate_limit: bool, request_id: bool) -> RedirectHeaders {
        RedirectHeaders {
            location: HeaderValue::from_static("https://example.com/a?b=c"),
            caching,
            rate_limit: rate_limit.then(|| {
                [
                    HeaderValue::from_static("120"),
                    HeaderValue::from_static("119"),
                    HeaderValue::from_static("60"),
                ]
            }),
            request_id: request_id.then(|| HeaderValue::from_static("0123abcd")),
        }
    }

    fn sorted(headers: &HeaderMap) -> Vec<(String, String)> {
        let mut all: Vec<_> = headers
            .iter()
            .map(|(n, v)| (n.to_string(), v.to_str().unwrap().to_string()))
            .collect();
        all.sort();
        all
    }

    #[test]
    fn a_template_copy_holds_what_inserting_each_header_would() {
        for caching in [Caching::Default, Caching::NoStore, Caching::Revalidate] {
            for (rate_limit, request_id) in [(true, true), (false, true), (true, false)] {
                let copied = sample(caching, rate_limit, request_id).into_map();
                let inserted = sample(caching, rate_limit, request_id).inserted();
                assert_eq!(sorted(&copied), sorted(&inserted), "{caching:?}");
            }
            let all = sorted(&sample(caching, true, true).into_map());
            assert_eq!(all.len(), if caching == Caching::Default { 5 } else { 6 });
            assert!(all.iter().all(|(_, v)| !v.is_empty()), "{all:?}");
            assert!(all.contains(&("ratelimit-remaining".into(), "119".into())));
            assert!(all.contains(&("location".into(), "https://example.com/a?b=c".into())));
        }
        // Each answer is a copy: the next one has its own values, none of the last's.
        let mut next = sample(Caching::Revalidate, true, true);
        next.location = HeaderValue::from_static("https://example.org/");
        let next = sorted(&next.into_map());
        assert!(next.contains(&("location".into(), "https://example.org/".into())));
    }
}
