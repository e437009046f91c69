//! Which dead letter a replayed message replays: the console and `kafka-worker dlq`
//! send it back marked with [`REPLAY_OF`], beside the message's own headers that its
//! dead letter kept, and its outcome says so.

use mcp_jobs_contract::headers::REPLAY_OF;

/// The dead letter a message replays, from its headers.
pub fn replay_of(headers: &[(String, Vec<u8>)]) -> Option<String> {
    headers
        .iter()
        .find(|(name, _)| name == REPLAY_OF)
        .map(|(_, value)| String::from_utf8_lossy(value).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_replay_is_named_by_its_header() {
        let headers = vec![
            ("traceparent".to_owned(), b"00-ab-cd-01".to_vec()),
            (REPLAY_OF.to_owned(), b"jobs.dlq/0/7".to_vec()),
        ];
        assert_eq!(replay_of(&headers).as_deref(), Some("jobs.dlq/0/7"));
        assert_eq!(replay_of(&headers[..1]), None);
    }
}
