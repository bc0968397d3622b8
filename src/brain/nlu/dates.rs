//! Dates, times and choices said in Spanish, French, German or Portuguese, rewritten in the
//! English words the date reader ([`crate::brain::when`]) knows, so it keeps one set of rules
//! for what "next Monday" or "at 3" means, in every language.
//!
//! The rewrite is word by word on folded text (lower case, no accents), with the few phrases
//! whose words change meaning together ("por la mañana" is a morning, "mañana" tomorrow; "a
//! segunda" the second one, "segunda" Monday) read first, and the word order of "lundi
//! prochain" turned into "next monday". Anything it does not know is left as it was.

use chrono::{Datelike, NaiveDate, NaiveTime};

use super::Lang;
use crate::brain::when;

/// Phrases first (longest meaning wins), then single words.
const PHRASES: &[(&str, &str)] = &[
    // Greetings, which name a part of the day without asking for it.
    ("buenos dias", "good morning"),
    ("buenas tardes", "good afternoon"),
    ("buenas noches", "good evening"),
    ("guten morgen", "good morning"),
    ("guten tag", "hello"),
    ("guten abend", "good evening"),
    ("bom dia", "good morning"),
    ("boa tarde", "good afternoon"),
    ("boa noite", "good evening"),
    // Rough times and narrowed parts of the day.
    ("a eso de las", "around"),
    ("sobre las", "around"),
    ("hacia las", "around"),
    ("por volta das", "around"),
    ("por volta de", "around"),
    ("a ultima hora de la manana", "late morning"),
    ("a primera hora de la manana", "early morning"),
    ("a primera hora", "early morning"),
    ("final da manha", "late morning"),
    ("fim da manha", "late morning"),
    ("de manha cedo", "early morning"),
    ("en debut d apres midi", "early afternoon"),
    ("en fin d apres midi", "late afternoon"),
    ("fin d apres midi", "late afternoon"),
    ("tot le matin", "early morning"),
    ("am spaten nachmittag", "late afternoon"),
    ("spaeten nachmittag", "late afternoon"),
    ("am fruhen morgen", "early morning"),
    // Spanish
    ("por la manana", "morning"),
    ("de la manana", "morning"),
    ("en la manana", "morning"),
    ("por la tarde", "afternoon"),
    ("de la tarde", "afternoon"),
    ("en la tarde", "afternoon"),
    ("por la noche", "evening"),
    ("la semana que viene", "next week"),
    ("semana que viene", "next week"),
    ("la proxima semana", "next week"),
    ("pasado manana", "day after tomorrow"),
    ("a las", "at"),
    ("a la", "at"),
    ("despues de las", "after"),
    ("despues de", "after"),
    ("antes de las", "before"),
    // French
    ("apres midi", "afternoon"),
    ("apres demain", "day after tomorrow"),
    ("la semaine prochaine", "next week"),
    ("semaine prochaine", "next week"),
    ("en fin de matinee", "late morning"),
    ("fin de matinee", "late morning"),
    ("aujourd hui", "today"),
    ("le matin", "morning"),
    ("dans la matinee", "morning"),
    // German
    ("naechste woche", "next week"),
    ("nachste woche", "next week"),
    ("kommende woche", "next week"),
    ("am morgen", "morning"),
    ("am vormittag", "morning"),
    ("am nachmittag", "afternoon"),
    ("am abend", "evening"),
    ("spaten vormittag", "late morning"),
    ("spaeten vormittag", "late morning"),
    // Portuguese
    ("de manha", "morning"),
    ("pela manha", "morning"),
    ("de tarde", "afternoon"),
    ("a tarde", "afternoon"),
    ("pela tarde", "afternoon"),
    ("semana que vem", "next week"),
    ("proxima semana", "next week"),
    ("depois de amanha", "day after tomorrow"),
    ("depois das", "after"),
    ("antes das", "before"),
    ("segunda feira", "monday"),
    ("terca feira", "tuesday"),
    ("quarta feira", "wednesday"),
    ("quinta feira", "thursday"),
    ("sexta feira", "friday"),
    ("que vem", "next"),
    ("que viene", "next"),
];

const WORDS: &[(&str, &str)] = &[
    // weekdays
    ("lunes", "monday"),
    ("martes", "tuesday"),
    ("miercoles", "wednesday"),
    ("jueves", "thursday"),
    ("viernes", "friday"),
    ("sabado", "saturday"),
    ("domingo", "sunday"),
    ("lundi", "monday"),
    ("mardi", "tuesday"),
    ("mercredi", "wednesday"),
    ("jeudi", "thursday"),
    ("vendredi", "friday"),
    ("samedi", "saturday"),
    ("dimanche", "sunday"),
    ("montag", "monday"),
    ("dienstag", "tuesday"),
    ("mittwoch", "wednesday"),
    ("donnerstag", "thursday"),
    ("freitag", "friday"),
    ("samstag", "saturday"),
    ("sonntag", "sunday"),
    ("montags", "monday"),
    ("dienstags", "tuesday"),
    ("mittwochs", "wednesday"),
    ("donnerstags", "thursday"),
    ("freitags", "friday"),
    ("samstags", "saturday"),
    ("terca", "tuesday"),
    ("sexta", "friday"),
    // days
    ("manana", "tomorrow"),
    ("demain", "tomorrow"),
    ("morgen", "tomorrow"),
    ("amanha", "tomorrow"),
    ("hoy", "today"),
    ("heute", "today"),
    ("hoje", "today"),
    // next
    ("proximo", "next"),
    ("proxima", "next"),
    ("siguiente", "after"),
    ("prochain", "next"),
    ("prochaine", "next"),
    ("suivant", "after"),
    ("naechsten", "next"),
    ("nachsten", "next"),
    ("naechste", "next"),
    ("nachste", "next"),
    ("kommenden", "next"),
    ("kommende", "next"),
    // parts of the day
    ("manha", "morning"),
    ("matin", "morning"),
    ("matinee", "morning"),
    ("vormittag", "morning"),
    ("vormittags", "morning"),
    ("morgens", "morning"),
    ("tarde", "afternoon"),
    ("nachmittag", "afternoon"),
    ("nachmittags", "afternoon"),
    ("noche", "evening"),
    ("soir", "evening"),
    ("soiree", "evening"),
    ("abend", "evening"),
    ("abends", "evening"),
    ("noite", "evening"),
    ("mediodia", "noon"),
    ("midi", "noon"),
    ("mittag", "noon"),
    // weeks and months
    ("semana", "week"),
    ("semaine", "week"),
    ("woche", "week"),
    ("enero", "january"),
    ("janvier", "january"),
    ("januar", "january"),
    ("janeiro", "january"),
    ("febrero", "february"),
    ("fevrier", "february"),
    ("februar", "february"),
    ("fevereiro", "february"),
    ("marzo", "march"),
    ("mars", "march"),
    ("marz", "march"),
    ("maerz", "march"),
    ("marco", "march"),
    ("abril", "april"),
    ("avril", "april"),
    ("mayo", "may"),
    ("mai", "may"),
    ("maio", "may"),
    ("junio", "june"),
    ("juin", "june"),
    ("juni", "june"),
    ("junho", "june"),
    ("julio", "july"),
    ("juillet", "july"),
    ("juli", "july"),
    ("julho", "july"),
    ("agosto", "august"),
    ("aout", "august"),
    ("septiembre", "september"),
    ("septembre", "september"),
    ("setembro", "september"),
    ("octubre", "october"),
    ("octobre", "october"),
    ("oktober", "october"),
    ("outubro", "october"),
    ("noviembre", "november"),
    ("novembre", "november"),
    ("novembro", "november"),
    ("diciembre", "december"),
    ("decembre", "december"),
    ("dezember", "december"),
    ("dezembro", "december"),
    // at, after, before
    ("um", "at"),
    ("as", "at"),
    ("vers", "around"),
    ("gegen", "around"),
    ("apres", "after"),
    ("nach", "after"),
    ("avant", "before"),
    ("vor", "before"),
    // which one
    ("primero", "first"),
    ("primera", "first"),
    ("premier", "first"),
    ("premiere", "first"),
    ("erste", "first"),
    ("ersten", "first"),
    ("primeiro", "first"),
    ("primeira", "first"),
    ("segundo", "second"),
    ("deuxieme", "second"),
    ("seconde", "second"),
    ("zweite", "second"),
    ("zweiten", "second"),
    ("tercero", "third"),
    ("tercera", "third"),
    ("troisieme", "third"),
    ("dritte", "third"),
    ("dritten", "third"),
    ("terceiro", "third"),
    ("terceira", "third"),
    ("cuarto", "fourth"),
    ("cuarta", "fourth"),
    ("quatrieme", "fourth"),
    ("vierte", "fourth"),
    ("vierten", "fourth"),
    ("quarto", "fourth"),
    ("ultimo", "last"),
    ("ultima", "last"),
    ("dernier", "last"),
    ("derniere", "last"),
    ("letzte", "last"),
    ("letzten", "last"),
];

const WEEKDAYS: [&str; 7] = ["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"];

/// `text` with its date, time and choice words in English; English text is returned as it is.
pub fn in_english(text: &str, lang: Lang) -> String {
    if lang == Lang::En {
        return text.to_owned();
    }
    let folded = fold_keeping_clock(text);
    let mut words: Vec<String> = folded.split_whitespace().map(str::to_owned).collect();
    // Hours written the French, German or Portuguese way: "15h", "15h30", "9 h", "15 uhr".
    let mut i = 0;
    while i < words.len() {
        let word = words[i].clone();
        if let Some((hour, minute)) = word.split_once('h').filter(|(h, m)| is_hour(h) && (m.is_empty() || is_minute(m)))
        {
            words[i] = format!("{hour}:{}", if minute.is_empty() { "00" } else { minute });
        } else if is_hour(&word) && i + 1 < words.len() && (words[i + 1] == "h" || words[i + 1] == "uhr") {
            let minute = words.get(i + 2).filter(|m| is_minute(m)).cloned();
            let used = if minute.is_some() { 3 } else { 2 };
            words.splice(i..i + used, [format!("{word}:{}", minute.unwrap_or_else(|| "00".into()))]);
        }
        i += 1;
    }
    let mut joined = format!(" {} ", words.join(" "));
    for (day, english) in [
        ("segunda", "monday"),
        ("terca", "tuesday"),
        ("quarta", "wednesday"),
        ("quinta", "thursday"),
        ("sexta", "friday"),
    ] {
        joined = joined.replace(&format!(" {day} feira "), &format!(" {english} "));
    }
    // "a segunda" / "o segundo" is the second one; "segunda" alone is Monday. Same for quarta.
    for (article, word, meaning) in [("a", "segunda", "second"), ("a", "quarta", "fourth"), ("la", "segunda", "second")]
    {
        joined = joined.replace(&format!(" {article} {word} "), &format!(" the {meaning} "));
    }
    joined =
        joined.replace(" segunda ", " monday ").replace(" quarta ", " wednesday ").replace(" quinta ", " thursday ");
    for (phrase, english) in PHRASES {
        joined = joined.replace(&format!(" {phrase} "), &format!(" {english} "));
    }
    let mut out: Vec<&str> = Vec::new();
    for word in joined.split_whitespace() {
        let english = WORDS.iter().find(|(w, _)| *w == word).map_or(word, |(_, e)| e);
        // "lundi prochain", "el próximo martes", "sexta que vem": in these languages the coming
        // one, where English "next Monday" is the Monday of next week (`when`'s rule).
        if english == "next" && out.last().is_some_and(|last| WEEKDAYS.contains(last)) {
            continue;
        }
        if WEEKDAYS.contains(&english) && out.last() == Some(&"next") {
            out.pop();
        }
        out.push(english);
    }
    // "el 14", "le 14", "am 14.", "dia 14": the 14th.
    let mut result: Vec<String> = Vec::with_capacity(out.len());
    for (i, word) in out.iter().enumerate() {
        let day_after_article = ["el", "le", "am", "dia", "den", "del"].contains(word)
            && out.get(i + 1).is_some_and(|n| n.parse::<u32>().is_ok_and(|d| (1..=31).contains(&d)))
            && out.get(i + 2).is_none_or(|n| !n.contains(':'));
        if day_after_article {
            result.push("the".into());
        } else if i > 0 && result.last().is_some_and(|w| w == "the") && word.parse::<u32>().is_ok() {
            result.push(format!("{word}th"));
        } else {
            result.push((*word).to_owned());
        }
    }
    result.join(" ")
}

/// A date the way the bot says it back in `lang`: "Friday 15 May", "viernes 15 de mayo",
/// "vendredi 15 mai", "Freitag, 15. Mai", "sexta-feira, 15 de maio".
pub fn say_date(date: NaiveDate, lang: Lang) -> String {
    let weekday = date.weekday().num_days_from_monday() as usize;
    let month = date.month0() as usize;
    let day = date.day();
    match lang {
        Lang::En => when::say_date(date),
        Lang::Es => format!("{} {day} de {}", ES_DAYS[weekday], ES_MONTHS[month]),
        Lang::Fr => format!("{} {day} {}", FR_DAYS[weekday], FR_MONTHS[month]),
        Lang::De => format!("{}, {day}. {}", DE_DAYS[weekday], DE_MONTHS[month]),
        Lang::Pt => format!("{}, {day} de {}", PT_DAYS[weekday], PT_MONTHS[month]),
    }
}

/// A time the way the bot says it back: "3:30 PM" in English, "15:30" elsewhere.
pub fn say_time(time: NaiveTime, lang: Lang) -> String {
    match lang {
        Lang::En => when::say_time(time),
        Lang::De => format!("{} Uhr", time.format("%H:%M")),
        _ => time.format("%H:%M").to_string(),
    }
}

const ES_DAYS: [&str; 7] = ["lunes", "martes", "miércoles", "jueves", "viernes", "sábado", "domingo"];
const FR_DAYS: [&str; 7] = ["lundi", "mardi", "mercredi", "jeudi", "vendredi", "samedi", "dimanche"];
const DE_DAYS: [&str; 7] = ["Montag", "Dienstag", "Mittwoch", "Donnerstag", "Freitag", "Samstag", "Sonntag"];
const PT_DAYS: [&str; 7] =
    ["segunda-feira", "terça-feira", "quarta-feira", "quinta-feira", "sexta-feira", "sábado", "domingo"];
const ES_MONTHS: [&str; 12] = [
    "enero",
    "febrero",
    "marzo",
    "abril",
    "mayo",
    "junio",
    "julio",
    "agosto",
    "septiembre",
    "octubre",
    "noviembre",
    "diciembre",
];
const FR_MONTHS: [&str; 12] = [
    "janvier",
    "février",
    "mars",
    "avril",
    "mai",
    "juin",
    "juillet",
    "août",
    "septembre",
    "octobre",
    "novembre",
    "décembre",
];
const DE_MONTHS: [&str; 12] = [
    "Januar",
    "Februar",
    "März",
    "April",
    "Mai",
    "Juni",
    "Juli",
    "August",
    "September",
    "Oktober",
    "November",
    "Dezember",
];
const PT_MONTHS: [&str; 12] = [
    "janeiro",
    "fevereiro",
    "março",
    "abril",
    "maio",
    "junho",
    "julho",
    "agosto",
    "setembro",
    "outubro",
    "novembro",
    "dezembro",
];

fn is_hour(text: &str) -> bool {
    text.len() <= 2 && text.parse::<u32>().is_ok_and(|h| h <= 23)
}

fn is_minute(text: &str) -> bool {
    text.len() == 2 && text.parse::<u32>().is_ok_and(|m| m <= 59)
}

/// Folded like the classifier's text, but keeping "10:30" and "14.05.2026" whole.
fn fold_keeping_clock(text: &str) -> String {
    let lower = super::features::plain_lower(text);
    let chars: Vec<char> = lower.chars().collect();
    let mut out = String::with_capacity(lower.len());
    for (i, c) in chars.iter().enumerate() {
        let between_digits =
            |i: usize| i > 0 && chars[i - 1].is_ascii_digit() && chars.get(i + 1).is_some_and(char::is_ascii_digit);
        if c.is_alphanumeric() || (matches!(c, ':' | '/' | '.' | '-') && between_digits(i)) {
            out.push(*c);
        } else {
            out.push(' ');
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Weekday;

    fn wednesday() -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 12, 2).unwrap()
    }

    fn read(text: &str, lang: Lang) -> when::When {
        when::parse(&in_english(text, lang), wednesday())
    }

    #[test]
    fn weekdays_parts_of_day_and_times_are_read_in_every_language() {
        let t = |h, m| NaiveTime::from_hms_opt(h, m, 0).unwrap();
        let cases = [
            ("el martes que viene por la tarde", Lang::Es, Weekday::Tue),
            ("mardi prochain dans l'après-midi", Lang::Fr, Weekday::Tue),
            ("am nächsten Dienstag nachmittags", Lang::De, Weekday::Tue),
            ("na terça-feira que vem à tarde", Lang::Pt, Weekday::Tue),
        ];
        for (text, lang, weekday) in cases {
            let said = read(text, lang);
            assert_eq!(said.date.map(|d| d.weekday()), Some(weekday), "{text} → {}", in_english(text, lang));
            assert!(said.part_of_day.is_some_and(|(from, _)| from >= t(12, 0)), "{text} → {}", in_english(text, lang));
        }
        assert_eq!(
            read("ich möchte eine Zahnreinigung am nächsten Dienstag", Lang::De).date.map(|d| d.weekday()),
            Some(Weekday::Tue)
        );
        assert_eq!(read("ach nein, lieber Mittwoch", Lang::De).date.map(|d| d.weekday()), Some(Weekday::Wed));
        assert_eq!(read("vendredi à 15h30", Lang::Fr).time, Some(t(15, 30)));
        assert_eq!(read("vendredi vers 10h", Lang::Fr).part_of_day, Some((t(9, 0), t(11, 0))));
        assert_eq!(read("el martes a última hora de la mañana", Lang::Es).part_of_day, Some((t(10, 0), t(12, 0))));
        assert_eq!(read("Freitag um 15 Uhr", Lang::De).time, Some(t(15, 0)));
        assert_eq!(read("el viernes a las 10:30", Lang::Es).time, Some(t(10, 30)));
        assert_eq!(read("às 14h", Lang::Pt).time, Some(t(14, 0)));
        assert_eq!(read("mañana por la mañana", Lang::Es).date, NaiveDate::from_ymd_opt(2026, 12, 3));
        assert_eq!(read("le 14", Lang::Fr).date, NaiveDate::from_ymd_opt(2026, 12, 14));
    }

    #[test]
    fn dates_are_said_back_in_the_visitors_language() {
        let friday = NaiveDate::from_ymd_opt(2026, 5, 15).unwrap();
        assert_eq!(say_date(friday, Lang::Es), "viernes 15 de mayo");
        assert_eq!(say_date(friday, Lang::De), "Freitag, 15. Mai");
        assert_eq!(say_time(NaiveTime::from_hms_opt(15, 30, 0).unwrap(), Lang::Fr), "15:30");
    }

    #[test]
    fn choices_keep_their_meaning() {
        assert_eq!(in_english("la segunda", Lang::Es), "the second");
        assert_eq!(in_english("a segunda", Lang::Pt), "the second");
        assert_eq!(in_english("na segunda", Lang::Pt), "na monday");
        assert_eq!(in_english("le deuxième", Lang::Fr), "le second");
        assert_eq!(in_english("den ersten bitte", Lang::De), "den first bitte");
        assert_eq!(in_english("next Monday", Lang::En), "next Monday");
        assert_eq!(in_english("à segunda-feira", Lang::Pt), "a monday");
        assert_eq!(in_english("lundi suivant", Lang::Fr), "monday after");
        assert_eq!(in_english("Guten Morgen, am Freitag", Lang::De), "good morning am friday");
    }
}
