//! CX Genie types some ids as UUIDs where frontdesk's rows have whole-number ids: a message, a
//! training-data source, an agent. Those ids are written as UUIDs made from the row's id
//! (version 8, "custom": a fixed marker, the kind of row, the id in the last six bytes), so a
//! client that stores or validates them as UUIDs works and a row always has the same UUID; a
//! route that takes one back accepts that UUID or the bare number. Conversations already have
//! UUIDs of their own; customers are typed as strings and keep their numbers.

/// The kind of row a UUID stands for: a UUID of one kind never names a row of another.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RowKind {
    Message = 1,
    Source = 2,
    Agent = 3,
}

const MARKER: [u8; 4] = *b"fdsk";

/// The row's UUID. Ids are below 2^48 (281 trillion rows), which the six bytes hold.
pub fn uuid_of(kind: RowKind, id: i64) -> String {
    let mut bytes = [0u8; 16];
    bytes[..4].copy_from_slice(&MARKER);
    bytes[4] = kind as u8;
    bytes[10..].copy_from_slice(&id.to_be_bytes()[2..]);
    uuid::Builder::from_custom_bytes(bytes).into_uuid().to_string()
}

/// The row id a client sent: one of [`uuid_of`]'s UUIDs of this kind, or the bare number.
pub fn id_of(kind: RowKind, text: &str) -> Option<i64> {
    let text = text.trim();
    if let Ok(id) = text.parse::<i64>() {
        return Some(id);
    }
    let parsed = uuid::Uuid::parse_str(text).ok()?;
    let bytes = parsed.as_bytes();
    let ours = bytes[..4] == MARKER && bytes[4] == kind as u8 && parsed.get_version_num() == 8;
    if !ours {
        return None;
    }
    let mut id = [0u8; 8];
    id[2..].copy_from_slice(&bytes[10..]);
    Some(i64::from_be_bytes(id))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_round_trip_as_valid_uuids_of_their_kind() {
        for id in [0, 1, 42, 1 << 40, (1 << 48) - 1] {
            let text = uuid_of(RowKind::Message, id);
            let parsed = uuid::Uuid::parse_str(&text).unwrap();
            assert_eq!(parsed.get_version_num(), 8, "{text}");
            assert_eq!(parsed.get_variant(), uuid::Variant::RFC4122, "{text}");
            assert_eq!(id_of(RowKind::Message, &text), Some(id), "{text}");
            assert_eq!(id_of(RowKind::Agent, &text), None, "a message's UUID names no agent");
        }
        assert_ne!(uuid_of(RowKind::Source, 7), uuid_of(RowKind::Agent, 7));
        assert_eq!(id_of(RowKind::Source, " 17 "), Some(17));
        assert_eq!(id_of(RowKind::Source, &uuid::Uuid::new_v4().to_string()), None);
        assert_eq!(id_of(RowKind::Source, "not-an-id"), None);
    }
}
