//! Click event ids, made by the forwarder for every click it publishes.

use chrono::{DateTime, Utc};
use uuid::Uuid;

/// UUIDv7 event ids stamped with the click's own millisecond.
///
/// `Uuid::now_v7` reads the clock and takes the crate's shared context for every id: 560
/// of a redirect's 24,500 instructions under callgrind. The forwarder already knows each
/// click's time and is the only one making its ids, so it keeps its own state: the 74
/// bits after the timestamp are a counter started at a random point in each millisecond
/// (ids of one millisecond keep their order) above 32 random bits, from a wyrand
/// generator seeded by the system's generator once. Ids are unique across instances as
/// random UUIDv7s are (2^-73 for two ids of the same millisecond); they are
/// de-duplication keys, not secrets.
#[derive(Debug)]
pub(crate) struct EventIds {
    state: u64,
    millis: u64,
    counter: u64,
}

/// Counter bits: 42, started below half so a millisecond never runs out.
const COUNTER_START_MASK: u64 = (1 << 41) - 1;

impl EventIds {
    pub fn new() -> Self {
        let (a, b) = Uuid::new_v4().as_u64_pair();
        EventIds {
            state: a ^ b.rotate_left(32),
            millis: u64::MAX,
            counter: 0,
        }
    }

    fn random(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0xa076_1d64_78bd_642f);
        let t = u128::from(self.state) * u128::from(self.state ^ 0xe703_7ed1_a0b4_28db);
        (t >> 64) as u64 ^ t as u64
    }

    /// The id of a click at `at`.
    pub fn next(&mut self, at: DateTime<Utc>) -> Uuid {
        let millis = u64::try_from(at.timestamp_millis()).unwrap_or(0) & ((1 << 48) - 1);
        if millis == self.millis {
            self.counter += 1;
        } else {
            self.millis = millis;
            self.counter = self.random() & COUNTER_START_MASK;
        }
        let low = self.random() & 0xffff_ffff;
        // 74 bits: 12 in `rand_a`, 62 in `rand_b`, around the version and variant.
        let bits = (u128::from(self.counter) << 32) | u128::from(low);
        let id = (u128::from(millis) << 80)
            | (0x7 << 76)
            | (((bits >> 62) & 0xfff) << 64)
            | (0b10 << 62)
            | (bits & ((1 << 62) - 1));
        Uuid::from_u128(id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn ids_are_version_7_of_the_clicks_millisecond_ordered_and_distinct() {
        let mut ids = EventIds::new();
        let at = DateTime::parse_from_rfc3339("2026-12-01T10:00:00.123456Z")
            .unwrap()
            .with_timezone(&Utc);
        let made: Vec<Uuid> = (0..10_000).map(|_| ids.next(at)).collect();
        for id in &made {
            assert_eq!(id.get_version_num(), 7);
            assert_eq!(id.get_variant(), uuid::Variant::RFC4122);
            let (secs, nanos) = id.get_timestamp().unwrap().to_unix();
            assert_eq!((secs, nanos / 1_000_000), (at.timestamp() as u64, 123));
        }
        assert!(
            made.windows(2).all(|w| w[0] < w[1]),
            "one millisecond's ids keep their order"
        );
        let later = ids.next(at + chrono::Duration::milliseconds(1));
        assert!(later > made[made.len() - 1]);
        // Another forwarder (another instance) in the same millisecond.
        let mut other = EventIds::new();
        let all: HashSet<Uuid> = made
            .iter()
            .copied()
            .chain((0..10_000).map(|_| other.next(at)))
            .collect();
        assert_eq!(all.len(), 20_000);
    }
}
