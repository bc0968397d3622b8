//! Which of the brain's languages a visitor writes in.
//!
//! Long messages are told apart by their letters (`whatlang`, limited to the five languages
//! the brain speaks); short ones ("hola", "merci", "sí") carry too few letters for that, so
//! the language of the training examples they are closest to decides, and failing both the
//! conversation keeps the language it had.

use serde::{Deserialize, Serialize};

/// A language the built-in brain understands and answers in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Lang {
    En,
    Es,
    Fr,
    De,
    Pt,
}

impl Lang {
    pub const ALL: [Lang; 5] = [Lang::En, Lang::Es, Lang::Fr, Lang::De, Lang::Pt];

    /// The ISO 639-1 code, as stored and as sent.
    pub fn code(self) -> &'static str {
        match self {
            Lang::En => "en",
            Lang::Es => "es",
            Lang::Fr => "fr",
            Lang::De => "de",
            Lang::Pt => "pt",
        }
    }

    pub fn from_code(code: &str) -> Option<Lang> {
        let code = code.trim().to_ascii_lowercase();
        Lang::ALL.into_iter().find(|l| code == l.code() || code.starts_with(&format!("{}-", l.code())))
    }

    fn from_whatlang(lang: whatlang::Lang) -> Option<Lang> {
        match lang {
            whatlang::Lang::Eng => Some(Lang::En),
            whatlang::Lang::Spa => Some(Lang::Es),
            whatlang::Lang::Fra => Some(Lang::Fr),
            whatlang::Lang::Deu => Some(Lang::De),
            whatlang::Lang::Por => Some(Lang::Pt),
            _ => None,
        }
    }
}

impl std::fmt::Display for Lang {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.code())
    }
}

/// The language a text's letters point to, when there are enough of them to be sure.
pub fn by_letters(text: &str) -> Option<Lang> {
    detect(text, false)
}

/// Like [`by_letters`], but only when whatlang itself calls the guess reliable: what it takes
/// to move a conversation that already has a language (a name or a service's English name in a
/// Portuguese chat must not).
pub fn by_letters_surely(text: &str) -> Option<Lang> {
    detect(text, true)
}

fn detect(text: &str, surely: bool) -> Option<Lang> {
    let detector = whatlang::Detector::with_allowlist(vec![
        whatlang::Lang::Eng,
        whatlang::Lang::Spa,
        whatlang::Lang::Fra,
        whatlang::Lang::Deu,
        whatlang::Lang::Por,
    ]);
    // An email address or a number says nothing about the language around it.
    let words: Vec<&str> =
        text.split_whitespace().filter(|w| !w.contains('@') && !w.chars().any(|c| c.is_ascii_digit())).collect();
    let text = words.join(" ");
    let letters = text.chars().filter(|c| c.is_alphabetic()).count();
    // Below a few words trigram statistics guess; the nearest examples do better there.
    if letters < 18 {
        return None;
    }
    let info = detector.detect(&text)?;
    let sure_enough = if surely { info.is_reliable() } else { info.confidence() >= 0.3 || info.is_reliable() };
    sure_enough.then(|| Lang::from_whatlang(info.lang())).flatten()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_messages_are_told_apart_by_their_letters() {
        assert_eq!(by_letters("Could I come in for a checkup on the 14th, late morning?"), Some(Lang::En));
        assert_eq!(by_letters("Bonjour, combien coûte un détartrage chez vous ?"), Some(Lang::Fr));
        assert_eq!(by_letters("Hola, quisiera pedir una cita para la semana que viene"), Some(Lang::Es));
        assert_eq!(by_letters("Guten Tag, ich möchte einen Termin für nächste Woche"), Some(Lang::De));
        assert_eq!(by_letters("Olá, gostaria de marcar uma consulta para a próxima semana"), Some(Lang::Pt));
    }

    #[test]
    fn short_messages_are_not_guessed_by_letters() {
        assert_eq!(by_letters("hola"), None);
        assert_eq!(by_letters("merci"), None);
    }

    #[test]
    fn codes_round_trip_and_regions_are_ignored() {
        for lang in Lang::ALL {
            assert_eq!(Lang::from_code(lang.code()), Some(lang));
        }
        assert_eq!(Lang::from_code("pt-BR"), Some(Lang::Pt));
        assert_eq!(Lang::from_code("it"), None);
    }
}
