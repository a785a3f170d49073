#![allow(clippy::unwrap_used)]

use super::*;

const T0: u64 = 1_767_225_600_000;

fn request(kind: BlockKind, value: &str, secs: Option<u64>, by: &str) -> BlockRequest {
    BlockRequest {
        target: Target::parse(kind, value).unwrap(),
        duration: secs.map(Duration::from_secs),
        reason: "test".to_string(),
        by: by.to_string(),
    }
}

fn ip(text: &str) -> Option<IpAddr> {
    Some(text.parse().unwrap())
}

#[test]
fn decisions_by_address_range_user_and_token() {
    let list = Blocklist::in_memory(100);
    list.apply(
        &[
            request(BlockKind::Address, "198.51.100.7", Some(60), "alice"),
            request(BlockKind::Address, "203.0.113.0/24", None, "alice"),
            request(BlockKind::User, "mallory", Some(60), "rule:r"),
            request(BlockKind::Token, "Bearer s3cret", Some(60), "rule:r"),
        ],
        T0,
    )
    .unwrap();
    let deny = |a, u, t| list.decide(a, u, t, T0 + 1).map(|b| b.value);
    assert_eq!(
        deny(ip("198.51.100.7"), None, None).as_deref(),
        Some("198.51.100.7")
    );
    assert_eq!(
        deny(ip("::ffff:198.51.100.7"), None, None).as_deref(),
        Some("198.51.100.7")
    );
    assert_eq!(
        deny(ip("203.0.113.200"), None, None).as_deref(),
        Some("203.0.113.0/24")
    );
    assert_eq!(deny(ip("198.51.100.8"), None, None), None);
    assert_eq!(
        deny(None, Some("mallory"), None).as_deref(),
        Some("mallory")
    );
    assert_eq!(deny(None, Some("Mallory"), None), None);
    let fp = token::fingerprint("s3cret");
    assert_eq!(deny(None, None, Some(&fp)), Some(fp.clone()));
    // The token itself is never kept.
    assert!(list.list(T0).iter().all(|b| !b.value.contains("s3cret")));
    let stats = list.stats(T0);
    assert_eq!(stats.active, [2, 1, 1]);
    assert_eq!((stats.denied, stats.allowed), (5, 2));
}

#[test]
fn expiry_extension_and_unblock() {
    let list = Blocklist::in_memory(100);
    let r = |secs| request(BlockKind::User, "u", Some(secs), "rule:r");
    assert_eq!(list.apply(&[r(60)], T0).unwrap(), vec![Change::Added]);
    // A second later the same rule asks again: not worth a history line.
    assert_eq!(
        list.apply(&[r(60)], T0 + 1000).unwrap(),
        vec![Change::Unchanged]
    );
    assert_eq!(
        list.apply(&[r(60)], T0 + 30_000).unwrap(),
        vec![Change::Extended]
    );
    assert!(list.decide(None, Some("u"), None, T0 + 89_000).is_some());
    // Ended: denies nothing even before a sweep.
    assert!(list.decide(None, Some("u"), None, T0 + 90_000).is_none());
    assert_eq!(list.sweep(T0 + 90_000).unwrap(), 1);
    assert_eq!(list.sweep(T0 + 90_000).unwrap(), 0);
    list.apply(&[r(60)], T0 + 100_000).unwrap();
    let target = Target::parse(BlockKind::User, "u").unwrap();
    assert!(
        list.unblock(&target, "bob", "false positive", T0 + 100_001)
            .unwrap()
            .is_some()
    );
    assert!(
        list.unblock(&target, "bob", "again", T0 + 100_002)
            .unwrap()
            .is_none()
    );
    assert!(list.decide(None, Some("u"), None, T0 + 100_003).is_none());
    assert_eq!(list.stats(T0).changes, [2, 1, 1, 1]);
}

#[test]
fn full_list_and_bad_requests() {
    let list = Blocklist::in_memory(1);
    list.apply(&[request(BlockKind::User, "a", None, "x")], T0)
        .unwrap();
    assert!(matches!(
        list.apply(&[request(BlockKind::User, "b", None, "x")], T0),
        Err(BlocksError::Full(1))
    ));
    assert!(Target::parse(BlockKind::Address, "203.0.113.1/24").is_err());
    assert!(Target::parse(BlockKind::User, " ").is_err());
    let mut bad = request(BlockKind::User, "c", None, "x");
    bad.reason = String::new();
    assert!(list.apply(&[bad], T0).is_err());
}

#[test]
fn saved_with_history_and_expired_while_down() {
    let dir = tempfile::tempdir().unwrap();
    {
        let list = Blocklist::open(dir.path(), 100, T0).unwrap();
        list.apply(
            &[
                request(BlockKind::Address, "203.0.113.0/24", None, "alice"),
                request(BlockKind::User, "short", Some(10), "rule:r"),
                request(BlockKind::Token, "tok", Some(3600), "rule:r"),
            ],
            T0,
        )
        .unwrap();
        let target = Target::parse(BlockKind::Token, "tok").unwrap();
        list.unblock(&target, "alice", "rotated", T0 + 1).unwrap();
        list.apply(
            &[request(BlockKind::Token, "tok", Some(3600), "rule:r")],
            T0 + 2,
        )
        .unwrap();
    }
    let text = std::fs::read_to_string(dir.path().join("blocklist.json")).unwrap();
    assert!(!text.contains("\"tok\""), "{text}");
    let list = Blocklist::open(dir.path(), 100, T0 + 20_000).unwrap();
    let values: Vec<String> = list
        .list(T0 + 20_000)
        .into_iter()
        .map(|b| b.value)
        .collect();
    assert_eq!(
        values,
        vec!["203.0.113.0/24".to_string(), token::fingerprint("tok")]
    );
    assert!(
        list.decide(ip("203.0.113.5"), None, None, T0 + 20_000)
            .is_some()
    );
    let actions: Vec<(Action, String)> = list
        .history(100)
        .unwrap()
        .into_iter()
        .map(|e| (e.action, e.by))
        .collect();
    assert_eq!(
        actions,
        vec![
            (Action::Block, "alice".to_string()),
            (Action::Block, "rule:r".to_string()),
            (Action::Block, "rule:r".to_string()),
            (Action::Unblock, "alice".to_string()),
            (Action::Block, "rule:r".to_string()),
            (Action::Expire, "expiry".to_string()),
        ]
    );
    assert_eq!(list.history(2).unwrap().len(), 2);
    std::fs::write(dir.path().join("blocklist.json"), "{").unwrap();
    assert!(matches!(
        Blocklist::open(dir.path(), 100, T0),
        Err(BlocksError::Corrupt { .. })
    ));
}

#[test]
fn times_for_people() {
    assert_eq!(format_time(0), "1970-01-01T00:00:00Z");
    assert_eq!(format_time(T0), "2026-01-01T00:00:00Z");
    assert_eq!(format_time(951_782_400_123), "2000-02-29T00:00:00Z");
    assert_eq!(format_time(4_107_542_399_999), "2100-02-28T23:59:59Z");
}
