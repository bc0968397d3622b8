//! The checkable claims of a sentence — clock times and amounts of money — so two answers to
//! one question can be compared: when the bot's facts say "9:00–17:00" and a knowledge passage
//! says "8am to 6pm", they disagree, and a person has to decide which is true.

use std::collections::BTreeSet;
use std::sync::LazyLock;

use regex::Regex;

/// "9:00", "17:30", "9am", "5 pm", "9 a.m.", "15h", "15h30", "15 Uhr".
static TIME: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)\b([01]?\d|2[0-3])(?:[:.]([0-5]\d))?\s*(a\.?m\.?|p\.?m\.?|h|uhr)?(?:([0-5]\d))?(?:\b|$)")
        .expect("time regex")
});

/// "$25", "€ 40", "£12.50", "25 dollars", "40 euros", "40 €", "USD 25".
static MONEY: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"(?i)(?:[$€£]|\b(?:usd|eur|gbp)\b)\s?(\d+(?:[.,]\d{1,2})?)|(\d+(?:[.,]\d{1,2})?)\s?(?:[$€£]|\b(?:dollars?|euros?|pounds?|usd|eur|gbp)\b)",
    )
    .expect("money regex")
});

/// What a text claims: minutes after midnight, and amounts in cents.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Claims {
    pub times: BTreeSet<u32>,
    pub amounts: BTreeSet<u64>,
}

impl Claims {
    pub fn of(text: &str) -> Claims {
        let mut claims = Claims::default();
        for caps in MONEY.captures_iter(text) {
            let number = caps.get(1).or(caps.get(2)).map_or("", |m| m.as_str()).replace(',', ".");
            if let Ok(value) = number.parse::<f64>() {
                claims.amounts.insert((value * 100.0).round() as u64);
            }
        }
        // Amounts are masked first so "$25" is never read as a time.
        let text = MONEY.replace_all(text, " ");
        for caps in TIME.captures_iter(&text) {
            let hour: u32 = caps[1].parse().unwrap_or(0);
            let minutes = caps.get(2).or(caps.get(4)).map_or(0, |m| m.as_str().parse().unwrap_or(0));
            let marker = caps.get(3).map(|m| m.as_str().to_lowercase().replace('.', ""));
            // A bare number is a count or a date, not a time: only a colon or a marker says time.
            let hour = match marker.as_deref() {
                Some("pm") if hour < 12 => hour + 12,
                Some("am") if hour == 12 => 0,
                Some(_) => hour,
                None if caps.get(2).is_some() => hour,
                None => continue,
            };
            claims.times.insert(hour * 60 + minutes);
        }
        claims
    }

    /// Where `other` claims a time or an amount that `self` does not, while `self` claims some
    /// of that kind too: the two say different things about the same matter. A passage adding
    /// a price to a fact about hours is not a disagreement.
    pub fn contradicted_by(&self, other: &Claims) -> bool {
        let differs = |mine: &BTreeSet<u32>, theirs: &BTreeSet<u32>| {
            !mine.is_empty() && !theirs.is_empty() && !theirs.is_subset(mine)
        };
        let amounts_differ =
            !self.amounts.is_empty() && !other.amounts.is_empty() && !other.amounts.is_subset(&self.amounts);
        differs(&self.times, &other.times) || amounts_differ
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn times(text: &str) -> Vec<u32> {
        Claims::of(text).times.into_iter().collect()
    }

    #[test]
    fn times_in_the_ways_people_write_them() {
        assert_eq!(times("Mon–Fri 9:00–17:00"), [540, 1020]);
        assert_eq!(times("open 9am to 5 pm"), [540, 1020]);
        assert_eq!(times("from 9 a.m. until 12:30"), [540, 750]);
        assert_eq!(times("de 15h30 à 18h"), [930, 1080]);
        assert_eq!(times("bis 17 Uhr"), [1020]);
        assert_eq!(times("we have 3 chairs and 12 staff"), Vec::<u32>::new());
    }

    #[test]
    fn amounts_in_the_ways_people_write_them() {
        let amounts = |t: &str| Claims::of(t).amounts.into_iter().collect::<Vec<_>>();
        assert_eq!(amounts("A cleaning is $95; whitening $250."), [9500, 25000]);
        assert_eq!(amounts("Kosten: 40 € oder EUR 12,50"), [1250, 4000]);
        assert_eq!(amounts("a late fee of 25 dollars"), [2500]);
        assert!(Claims::of("$25 fee").times.is_empty(), "money is not a time");
    }

    #[test]
    fn disagreement_needs_the_same_kind_of_claim() {
        let fact = Claims::of("We are open Mon–Fri 9:00–17:00.");
        assert!(fact.contradicted_by(&Claims::of("Opening hours: 8am to 6pm on weekdays.")));
        assert!(!fact.contradicted_by(&Claims::of("We open at 9am and close at 5pm.")));
        assert!(!fact.contradicted_by(&Claims::of("Parking costs $5 per visit.")));
        assert!(!fact.contradicted_by(&Claims::of("We are open on weekdays.")));
        let price = Claims::of("Late cancellations may be charged $25.");
        assert!(price.contradicted_by(&Claims::of("A missed appointment costs $40.")));
    }
}
