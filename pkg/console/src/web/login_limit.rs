//! How many login attempts the console takes: a few per client address (someone who
//! mistyped a key tries again; a script guessing keys is slowed to a crawl) and a
//! bound overall (guesses spread over many addresses). Past either, a login answers
//! 429 with `Retry-After`. The address is the TCP peer's: behind a proxy every client
//! shares the proxy's, so the per-address limit then acts as a second overall one.

use std::net::IpAddr;
use std::num::NonZeroU32;
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultDirectRateLimiter, DefaultKeyedRateLimiter, Quota, RateLimiter};

/// Attempts one address may make at once, then one more every [`ADDRESS_REFILL`].
const ADDRESS_BURST: u32 = 10;
const ADDRESS_REFILL: Duration = Duration::from_secs(6);
/// Attempts all addresses together may make at once, then [`OVERALL_PER_SECOND`].
const OVERALL_BURST: u32 = 100;
const OVERALL_PER_SECOND: u32 = 10;
/// Addresses remembered before those with a full allowance again are forgotten.
const ADDRESSES_KEPT: usize = 10_000;

pub struct LoginLimits {
    per_address: DefaultKeyedRateLimiter<IpAddr>,
    overall: DefaultDirectRateLimiter,
}

fn non_zero(n: u32) -> NonZeroU32 {
    NonZeroU32::new(n).unwrap_or(NonZeroU32::MIN)
}

impl Default for LoginLimits {
    fn default() -> Self {
        let per_address = Quota::with_period(ADDRESS_REFILL)
            .unwrap_or_else(|| Quota::per_second(NonZeroU32::MIN))
            .allow_burst(non_zero(ADDRESS_BURST));
        let overall =
            Quota::per_second(non_zero(OVERALL_PER_SECOND)).allow_burst(non_zero(OVERALL_BURST));
        Self {
            per_address: RateLimiter::keyed(per_address),
            overall: RateLimiter::direct(overall),
        }
    }
}

impl LoginLimits {
    /// Takes one attempt from `address`: `Err` is how long until the next is allowed.
    pub fn attempt(&self, address: IpAddr) -> Result<(), Duration> {
        if self.per_address.len() > ADDRESSES_KEPT {
            self.per_address.retain_recent();
        }
        let now = DefaultClock::default().now();
        self.per_address
            .check_key(&address)
            .and_then(|()| self.overall.check())
            .map_err(|not_until| not_until.wait_time_from(now))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_address_gets_a_few_attempts_then_waits_and_others_still_get_theirs() {
        let limits = LoginLimits::default();
        let guesser: IpAddr = [10, 0, 0, 1].into();
        for _ in 0..ADDRESS_BURST {
            assert_eq!(limits.attempt(guesser), Ok(()));
        }
        let wait = limits.attempt(guesser).err().unwrap_or_default();
        assert!(wait > Duration::ZERO && wait <= ADDRESS_REFILL, "{wait:?}");
        assert_eq!(limits.attempt([10, 0, 0, 2].into()), Ok(()));
    }

    #[test]
    fn many_addresses_together_are_bounded_too() {
        let limits = LoginLimits::default();
        let allowed = (0..=255u8)
            .flat_map(|a| (0..4u8).map(move |b| IpAddr::from([10, 1, a, b])))
            .filter(|address| limits.attempt(*address).is_ok())
            .count();
        assert!(
            allowed < (OVERALL_BURST + OVERALL_PER_SECOND) as usize,
            "{allowed}"
        );
    }
}
