//! API keys, as mcp-server and the console take them: `Authorization: Bearer <key>` or
//! `X-API-Key: <key>`, compared in constant time so response timing says nothing about
//! how much of a guess was right.

use axum::http::{header, HeaderMap};
use subtle::ConstantTimeEq;

/// The key a request presents in its headers, if any.
pub fn presented_key(headers: &HeaderMap) -> Option<&str> {
    if let Some(value) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
    {
        let (scheme, token) = value.split_once(' ')?;
        return scheme.eq_ignore_ascii_case("bearer").then(|| token.trim());
    }
    headers
        .get("x-api-key")
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
}

/// Which of `keys` `presented` is, checking every key without stopping at the first
/// match, so the time taken does not depend on which key (if any) matched.
pub fn matching_key(keys: &[String], presented: &str) -> Option<usize> {
    keys.iter().enumerate().fold(None, |found, (index, key)| {
        let equal = bool::from(key.as_bytes().ct_eq(presented.as_bytes()));
        if equal && found.is_none() {
            Some(index)
        } else {
            found
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_from_either_header() {
        let mut headers = HeaderMap::new();
        headers.insert(header::AUTHORIZATION, "Bearer abc".parse().expect("header"));
        assert_eq!(presented_key(&headers), Some("abc"));
        let mut headers = HeaderMap::new();
        headers.insert("x-api-key", "xyz".parse().expect("header"));
        assert_eq!(presented_key(&headers), Some("xyz"));
        let mut headers = HeaderMap::new();
        headers.insert(header::AUTHORIZATION, "Basic abc".parse().expect("header"));
        assert_eq!(presented_key(&headers), None);
    }

    #[test]
    fn matching_is_exact() {
        let keys = vec!["secret-one".to_owned(), "secret-two".to_owned()];
        assert_eq!(matching_key(&keys, "secret-two"), Some(1));
        assert_eq!(matching_key(&keys, "secret"), None);
        assert_eq!(matching_key(&keys, "secret-one "), None);
    }
}
