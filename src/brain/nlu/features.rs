//! Turning a message into the sparse vector the classifier compares.
//!
//! Text is folded (lower case, accents dropped, so "cuánto" and "cuanto" meet), emails and
//! phone numbers become placeholder words (what matters is that one was given, not which),
//! and the features are the words themselves plus their character 2- to 4-grams inside word
//! boundaries: those survive typos, inflection and compounds ("Zahnreinigung"), which is why
//! a few dozen examples per intent are enough.

use std::collections::BTreeMap;
use std::sync::LazyLock;

use regex::Regex;
use unicode_normalization::UnicodeNormalization;

static EMAIL: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"[^\s@<>(),;:]+@[^\s@<>(),;:]+\.[a-z]{2,}").expect("the email pattern compiles"));
static PHONE: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"\+?\d[\d\s().-]{5,}\d").expect("the phone pattern compiles"));

/// Lower case without accents: "Größe" is "grosse", "cuánto" is "cuanto".
pub fn plain_lower(text: &str) -> String {
    let plain: String = text.nfd().filter(|c| !unicode_normalization::char::is_combining_mark(*c)).collect();
    plain.to_lowercase().replace('ß', "ss")
}

/// Lower case without accents or punctuation; emails and phone numbers as placeholder words.
pub fn fold(text: &str) -> String {
    let lower = plain_lower(text);
    let lower = EMAIL.replace_all(&lower, " zzemail ");
    let lower = PHONE.replace_all(&lower, |found: &regex::Captures| {
        let digits = found[0].chars().filter(char::is_ascii_digit).count();
        if digits >= 7 {
            " zzphone ".to_owned()
        } else {
            found[0].to_owned()
        }
    });
    let mut out = String::with_capacity(lower.len());
    for c in lower.chars() {
        if c.is_alphanumeric() {
            out.push(c);
        } else if !out.ends_with(' ') {
            out.push(' ');
        }
    }
    out.split(' ').filter(|w| !w.is_empty()).map(split_compound).collect::<Vec<_>>().join(" ")
}

/// The heads German compounds end with in a clinic's chat ("Beratungstermin", "Öffnungszeiten"),
/// split off so the word that carries the meaning is a word of its own.
const COMPOUND_HEADS: &[&str] =
    &["termin", "termine", "reinigung", "behandlung", "beratung", "zeiten", "praxis", "nummer"];

fn split_compound(word: &str) -> String {
    for head in COMPOUND_HEADS {
        if word.len() >= head.len() + 4 && word.ends_with(head) {
            return format!("{} {head}", &word[..word.len() - head.len()]);
        }
    }
    word.to_owned()
}

/// The features of a folded text and how often each occurs.
pub fn count(folded: &str) -> BTreeMap<String, u32> {
    let mut counts: BTreeMap<String, u32> = BTreeMap::new();
    for word in folded.split(' ').filter(|w| !w.is_empty()) {
        *counts.entry(format!("w:{word}")).or_default() += 1;
        // A placeholder is one fact ("a doctor was named"), not a dozen rare letter grams
        // that would outweigh how the question is asked.
        if word.starts_with("zz") {
            continue;
        }
        let padded: Vec<char> = format!(" {word} ").chars().collect();
        for n in 2..=4 {
            for gram in padded.windows(n) {
                // A gram of only the boundary and one letter says little and is everywhere.
                if n == 2 && gram.contains(&' ') && padded.len() > 3 {
                    continue;
                }
                *counts.entry(gram.iter().collect()).or_default() += 1;
            }
        }
    }
    counts
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folding_drops_case_accents_and_punctuation() {
        assert_eq!(fold("¿Cuánto cuesta?"), "cuanto cuesta");
        assert_eq!(fold("Größe, bitte!"), "grosse bitte");
        assert_eq!(fold("einen Beratungstermin"), "einen beratungs termin");
    }

    #[test]
    fn emails_and_phone_numbers_become_placeholders_but_times_stay() {
        assert_eq!(fold("Dana here, dana.r@mail.com"), "dana here zzemail");
        assert_eq!(fold("call me on +1 (555) 010-2030"), "call me on zzphone");
        assert_eq!(fold("10:30 works"), "10 30 works");
    }

    #[test]
    fn words_and_their_grams_are_counted() {
        let counts = count("hola hola");
        assert_eq!(counts["w:hola"], 2);
        assert_eq!(counts[" ho"], 2);
        assert_eq!(counts["la "], 2);
        assert!(!counts.contains_key(" h"));
    }
}
