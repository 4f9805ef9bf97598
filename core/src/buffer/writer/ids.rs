//! Receipt ids: UUIDs (version 8, RFC 9562 §5.8) whose first 32 bits count up, one per receipt,
//! and whose other 90 bits are random.
//!
//! Why not random (v4) ids: every new receipt's id, and every event naming it, then lands on a
//! random page of its index, so each commit wrote one more 4 KiB page to the WAL per receipt per
//! index; ascending ids land at the end of the index, a few pages per commit for a whole batch
//! (BENCHMARKS.md, issue 18: +42 % receipts/s, p99 16 → 9 ms). Why not time-ordered (v7) ids:
//! their first 8 characters — what a person types to find a receipt — would be the same for
//! every receipt of a minute; a counter makes them differ from one receipt to the next.
//! Unguessable all the same (90 random bits), unique by their random part even if the counter
//! were to repeat (a restored backup, a wrap after 4 billion receipts).

use rusqlite::{Connection, OptionalExtension};

pub(super) struct Ids {
    next: u32,
}

impl Ids {
    pub(super) fn new(next: u32) -> Ids {
        Ids { next }
    }

    /// Continues after the newest receipt's id when it is one of these; otherwise (a new
    /// buffer, or one whose newest id is random) starts from the seconds since 2024 — a counter
    /// that was ahead of the clock before a restart continues from its row instead.
    pub(super) fn after_newest(conn: &Connection) -> rusqlite::Result<Ids> {
        let newest: Option<String> = conn
            .query_row("SELECT id FROM receipts ORDER BY rowid DESC LIMIT 1", [], |r| r.get(0))
            .optional()?;
        let counted = newest
            .and_then(|id| uuid::Uuid::parse_str(&id).ok())
            .filter(|u| u.get_version_num() == 8)
            .map(|u| u32::from_be_bytes(u.as_bytes()[..4].try_into().unwrap_or_default()).wrapping_add(1));
        let seconds = (crate::time::now_ms() / 1000 - 1_704_067_200).max(0) as u32;
        Ok(Ids::new(counted.unwrap_or(seconds)))
    }

    pub(super) fn next(&mut self) -> String {
        let mut bytes = *uuid::Uuid::new_v4().as_bytes();
        bytes[..4].copy_from_slice(&self.next.to_be_bytes());
        self.next = self.next.wrapping_add(1);
        uuid::Uuid::new_v8(bytes).to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_ascend_differ_in_their_first_eight_characters_and_keep_90_random_bits() {
        let mut ids = Ids::new(0x0fff_fffe);
        let a = ids.next();
        let b = ids.next();
        let c = ids.next();
        assert!(a < b && b < c, "{a} {b} {c}");
        assert_eq!((&a[..8], &b[..8], &c[..8]), ("0ffffffe", "0fffffff", "10000000"));
        let u = uuid::Uuid::parse_str(&a).unwrap();
        assert_eq!(u.get_version_num(), 8);
        assert_eq!(u.get_variant(), uuid::Variant::RFC4122);
        assert_ne!(a[8..], Ids::new(0x0fff_fffe).next()[8..], "the rest is random");
    }

    #[test]
    fn a_restarted_writer_continues_after_the_newest_receipt() {
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch("CREATE TABLE receipts (id TEXT PRIMARY KEY)")
            .unwrap();
        let fresh = Ids::after_newest(&conn).unwrap().next;
        assert!(fresh > 90_000_000, "seconds since 2024: {fresh}");
        // A buffer of random ids: the clock again.
        conn.execute(
            "INSERT INTO receipts VALUES ('ffffffff-0000-4000-8000-000000000000')",
            [],
        )
        .unwrap();
        assert!(Ids::after_newest(&conn).unwrap().next < 0xffff_ffff);
        let mut ids = Ids::new(0x7000_0000);
        conn.execute("INSERT INTO receipts VALUES (?1)", [ids.next()]).unwrap();
        assert_eq!(Ids::after_newest(&conn).unwrap().next, 0x7000_0001);
    }
}
