//! Who may know a task and where its records live.

use sha2::{Digest, Sha256};

/// A new task id: 128 random bits as 32 hex digits, so nobody can guess another's.
pub fn new_task_id() -> String {
    hex(&rand::random::<[u8; 16]>())
}

/// The owner of the tasks an API key creates: a fingerprint of the key, so a task
/// record never carries the key itself.
pub fn owner_of(api_key: &str) -> String {
    let digest = Sha256::new()
        .chain_update(b"mcp-jobs task owner\0")
        .chain_update(api_key.as_bytes())
        .finalize();
    hex(&digest[..16])
}

/// The partition of the tasks topic that holds every record of task `id`: one, so that
/// a task's facts are read in the order they were written, and a replica asked about a
/// task it has not seen knows which partition to catch up on. From the id's leading
/// hex digits (random, so tasks spread evenly); an id that is not hex goes to 0.
pub fn partition_of(id: &str, partitions: i32) -> i32 {
    let lead = id
        .get(..8)
        .and_then(|hex| u32::from_str_radix(hex, 16).ok());
    let partitions = u32::try_from(partitions.max(1)).unwrap_or(1);
    lead.map_or(0, |n| i32::try_from(n % partitions).unwrap_or(0))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_128_bits_and_differ() {
        let (a, b) = (new_task_id(), new_task_id());
        assert_eq!(a.len(), 32);
        assert!(a.chars().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(a, b);
    }

    #[test]
    fn an_owner_is_stable_and_not_the_key() {
        assert_eq!(owner_of("key-1"), owner_of("key-1"));
        assert_ne!(owner_of("key-1"), owner_of("key-2"));
        assert!(!owner_of("key-1").contains("key-1"));
    }

    #[test]
    fn a_task_has_one_partition_within_the_topic() {
        assert_eq!(partition_of("0000000a-rest", 4), 2);
        assert_eq!(partition_of("not hex at all", 4), 0);
        for _ in 0..100 {
            let p = partition_of(&new_task_id(), 3);
            assert!((0..3).contains(&p));
        }
    }
}
