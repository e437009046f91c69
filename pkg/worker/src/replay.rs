//! What a dead letter keeps of its message, so that it can be replayed as it was: the
//! message's own headers beside the worker's `mcp-jobs-*` ones. A replayed message
//! carries [`HEADER_REPLAY_OF`], and its outcome says which dead letter it replays.

/// Set on a replayed message: the dead letter it came from, `<dlq topic>/<partition>/<offset>`.
pub const HEADER_REPLAY_OF: &str = "mcp-jobs-replay-of";

/// The worker's own headers all start so; a message's own headers are the others.
const OWN_PREFIX: &str = "mcp-jobs-";

/// Whether a message's header `name` is its own (kept on its dead letter and restored
/// by a replay), not one the worker or a replay sets.
pub fn is_carried(name: &str) -> bool {
    !name.starts_with(OWN_PREFIX)
}

/// The dead letter a message replays, from its headers.
pub fn replay_of(headers: &[(String, Vec<u8>)]) -> Option<String> {
    headers
        .iter()
        .find(|(name, _)| name == HEADER_REPLAY_OF)
        .map(|(_, value)| String::from_utf8_lossy(value).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_headers_are_carried_and_replays_are_named() {
        assert!(is_carried("traceparent"));
        assert!(is_carried("tenant"));
        assert!(!is_carried("mcp-jobs-error-kind"));
        assert!(!is_carried(HEADER_REPLAY_OF));
        let headers = vec![
            ("traceparent".to_owned(), b"00-ab-cd-01".to_vec()),
            (HEADER_REPLAY_OF.to_owned(), b"jobs.dlq/0/7".to_vec()),
        ];
        assert_eq!(replay_of(&headers).as_deref(), Some("jobs.dlq/0/7"));
        assert_eq!(replay_of(&headers[..1]), None);
    }
}
