//! The closed sets of words the domain keeps in text columns and sends as JSON strings: a
//! booking's status, a lead's stage, an agent's role and presence, a webhook delivery's status,
//! a knowledge source's status. Each is an enum from the row to the response, so a misspelt
//! word is a compile error and the list of valid words, the parser and the error that names
//! them are written once. (A conversation's status and owner are the actors crate's
//! `ConversationStatus` and `Owner`, mapped to their columns the same way.)
//!
//! On the wire and in the database each word is exactly the string it always was.

use std::fmt;
use std::str::FromStr;

use diesel::deserialize::FromSqlRow;
use diesel::expression::AsExpression;
use diesel::sql_types::Text;
use serde::{Deserialize, Serialize};

/// A word that is not one of its set, with the words that are.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{word}` is not a {what}: expected one of {choices}")]
pub struct UnknownWord {
    /// What the set is (`booking status`, `lead stage`…).
    pub what: &'static str,
    pub word: String,
    /// The valid words, comma-separated.
    pub choices: String,
}

macro_rules! words {
    (
        $(#[$meta:meta])*
        pub enum $name:ident ($what:literal) {
            $($(#[$variant_meta:meta])* $variant:ident = $word:literal,)+
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, AsExpression, FromSqlRow)]
        #[diesel(sql_type = Text)]
        // Read through `FromStr`, so that a wrong word or a number in a body is named as the
        // data error it is, with the valid words.
        #[serde(try_from = "String")]
        pub enum $name {
            $($(#[$variant_meta])* #[serde(rename = $word)] $variant,)+
        }

        impl $name {
            /// Every word of the set, in its natural order.
            pub const ALL: &'static [$name] = &[$($name::$variant,)+];

            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $word,)+
                }
            }

            /// The word's value, if it is one of the set.
            pub fn parse(word: &str) -> Option<Self> {
                word.parse().ok()
            }

            /// The valid words, comma-separated, for an error message.
            pub fn choices() -> String {
                [$($word),+].join(", ")
            }
        }

        impl FromStr for $name {
            type Err = UnknownWord;

            fn from_str(word: &str) -> Result<Self, UnknownWord> {
                match word {
                    $($word => Ok($name::$variant),)+
                    _ => Err(UnknownWord { what: $what, word: word.to_owned(), choices: $name::choices() }),
                }
            }
        }

        impl TryFrom<String> for $name {
            type Error = UnknownWord;

            fn try_from(word: String) -> Result<Self, UnknownWord> {
                word.parse()
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        frontdesk_actors::text_column!($name);
    };
}

words! {
    /// Where a booking stands: `confirmed` (holding its slot) until it is cancelled, completed or
    /// marked as a no-show; those three are final.
    pub enum BookingStatus ("booking status") {
        Confirmed = "confirmed",
        Cancelled = "cancelled",
        Completed = "completed",
        NoShow = "no_show",
    }
}

words! {
    /// A lead's place in the funnel.
    pub enum LeadStage ("lead stage") {
        New = "new",
        Contacted = "contacted",
        Qualified = "qualified",
        Converted = "converted",
        Lost = "lost",
    }
}

words! {
    /// What an agent may do: an admin also manages the workspace, its team and its settings.
    pub enum AgentRole ("role") {
        Admin = "admin",
        Agent = "agent",
    }
}

words! {
    /// Whether an agent takes conversations now.
    pub enum Presence ("presence") {
        Online = "online",
        Away = "away",
        Offline = "offline",
    }
}

words! {
    /// Where a webhook delivery stands: waiting for (another) attempt, delivered, or given up.
    pub enum DeliveryStatus ("delivery status") {
        Pending = "pending",
        Delivered = "delivered",
        Dead = "dead",
    }
}

words! {
    /// Where a knowledge source stands in learning.
    pub enum SourceStatus ("source status") {
        Waiting = "waiting",
        Learning = "learning",
        Learned = "learned",
        Failed = "failed",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_word_reads_and_writes_as_the_string_it_always_was() {
        assert_eq!(serde_json::to_string(&BookingStatus::NoShow).unwrap(), "\"no_show\"");
        assert_eq!(serde_json::from_str::<BookingStatus>("\"no_show\"").unwrap(), BookingStatus::NoShow);
        for stage in LeadStage::ALL {
            assert_eq!(stage.as_str().parse::<LeadStage>(), Ok(*stage));
            assert_eq!(serde_json::to_value(stage).unwrap(), serde_json::json!(stage.as_str()));
        }
        assert_eq!(LeadStage::choices(), "new, contacted, qualified, converted, lost");
    }

    #[test]
    fn an_unknown_word_names_the_valid_ones() {
        let error = "vip".parse::<AgentRole>().unwrap_err();
        assert_eq!(error.to_string(), "`vip` is not a role: expected one of admin, agent");
        let error = serde_json::from_str::<Presence>("\"busy\"").unwrap_err();
        assert!(error.to_string().contains("expected one of online, away, offline"), "{error}");
        let error = serde_json::from_str::<Presence>("1").unwrap_err();
        assert!(error.is_data(), "a number is the wrong type, not malformed JSON: {error}");
    }
}
