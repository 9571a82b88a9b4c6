//! Which of the listed messages one poll fetches, and where the cursor ends up.

/// What to do with the messages a server listed after the cursor.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct Plan {
    /// UIDs to download, ascending.
    pub fetch: Vec<u32>,
    /// (UID, size) of messages over the size limit: skipped, but passed by the cursor.
    pub oversized: Vec<(u32, u32)>,
    /// The cursor's new position: the highest UID this poll dealt with.
    pub last_uid: u32,
}

/// `listed` is (UID, size) as the server answered `UID FETCH after+1:*`, which may include
/// UIDs at or below `after` (the `*` of an empty range is the highest existing UID).
pub(super) fn plan_batch(after: u32, mut listed: Vec<(u32, u32)>, max: usize, limit: u32) -> Plan {
    listed.retain(|(uid, _)| *uid > after);
    listed.sort_unstable();
    listed.dedup_by_key(|(uid, _)| *uid);
    listed.truncate(max);
    let last_uid = listed.last().map_or(after, |(uid, _)| *uid);
    let (oversized, fitting): (Vec<_>, Vec<_>) =
        listed.into_iter().partition(|(_, size)| *size > limit);
    Plan {
        fetch: fitting.into_iter().map(|(uid, _)| uid).collect(),
        oversized,
        last_uid,
    }
}

/// An IMAP sequence set for ascending UIDs, with runs collapsed ("1:3,7,9:10") so a large
/// batch stays a short command line.
pub(super) fn uid_set(ascending: &[u32]) -> String {
    let mut set = String::new();
    let mut uids = ascending.iter().copied().peekable();
    while let Some(start) = uids.next() {
        let mut end = start;
        while uids.peek() == Some(&end.wrapping_add(1)) && end != u32::MAX {
            end += 1;
            uids.next();
        }
        if !set.is_empty() {
            set.push(',');
        }
        if start == end {
            set.push_str(&start.to_string());
        } else {
            set.push_str(&format!("{start}:{end}"));
        }
    }
    set
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_highest_uid_answered_for_an_empty_range_is_not_new() {
        let plan = plan_batch(7, vec![(7, 100)], 10, 1000);
        assert_eq!(
            plan,
            Plan {
                fetch: vec![],
                oversized: vec![],
                last_uid: 7
            }
        );
    }

    #[test]
    fn at_most_max_oldest_first_and_the_cursor_stops_at_the_last_taken() {
        let plan = plan_batch(0, vec![(5, 1), (2, 1), (9, 1), (3, 1)], 3, 1000);
        assert_eq!(plan.fetch, vec![2, 3, 5]);
        assert_eq!(plan.last_uid, 5);
    }

    #[test]
    fn oversized_messages_are_skipped_but_passed() {
        let plan = plan_batch(1, vec![(2, 10), (3, 5000), (4, 10)], 10, 1000);
        assert_eq!(plan.fetch, vec![2, 4]);
        assert_eq!(plan.oversized, vec![(3, 5000)]);
        assert_eq!(plan.last_uid, 4);

        let only_oversized = plan_batch(1, vec![(3, 5000)], 10, 1000);
        assert!(only_oversized.fetch.is_empty());
        assert_eq!(only_oversized.last_uid, 3);
    }

    #[test]
    fn max_zero_takes_nothing_and_keeps_the_cursor() {
        let plan = plan_batch(4, vec![(5, 1)], 0, 1000);
        assert!(plan.fetch.is_empty());
        assert_eq!(plan.last_uid, 4);
    }

    #[test]
    fn uid_sets_collapse_runs() {
        assert_eq!(uid_set(&[1, 2, 3, 7, 9, 10]), "1:3,7,9:10");
        assert_eq!(uid_set(&[4]), "4");
        assert_eq!(
            uid_set(&[u32::MAX - 1, u32::MAX]),
            format!("{}:{}", u32::MAX - 1, u32::MAX)
        );
        assert_eq!(uid_set(&[]), "");
    }
}
