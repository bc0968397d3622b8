//! Things a message names, read against the workspace's own data.
//!
//! Services are the practice's own, named the way visitors name them in any of the brain's
//! languages: "détartrage", "limpieza" and "Zahnreinigung" are a cleaning. The everyday words
//! are mapped to the English words services are usually named with, then matched by the CRM's
//! service reader, so one rule decides what a service mention is.
//!
//! The same knowledge hides names from the classifier: "Dr. Chen", "Johnson" and "a cleaning"
//! become `zzdoctor` and `zzservice` before a message is featurised (training examples too), so
//! an intent is learnt from how people ask, not from which doctor or treatment they name.

use std::sync::LazyLock;

use regex::Regex;

use super::features;
use crate::domain::crm::signals;

/// Everyday words in the brain's languages (folded: lower case, no accents) and the English
/// word a practice's service is likely named with.
const SERVICE_WORDS: &[(&str, &[&str])] = &[
    (
        "cleaning",
        &[
            "limpieza",
            "limpeza",
            "detartrage",
            "nettoyage",
            "zahnreinigung",
            "reinigung",
            "prophylaxe",
            "profilaxis",
            "profilaxia",
            "detartrer",
            "detartrage",
        ],
    ),
    (
        "whitening",
        &["blanqueamiento", "blanchiment", "bleaching", "zahnaufhellung", "aufhellung", "clareamento", "branqueamento"],
    ),
    (
        "consultation",
        &[
            "consulta",
            "beratung",
            "untersuchung",
            "kontrolle",
            "revision",
            "revisao",
            "chequeo",
            "controle",
            "bilan",
            "checkup",
        ],
    ),
    ("filling", &["empaste", "obturation", "plombage", "fullung", "obturacao"]),
    ("implant", &["implante", "implantes", "implantat", "implantate"]),
    ("braces", &["ortodoncia", "brackets", "zahnspange", "aparelho", "orthodontie"]),
    ("extraction", &["extraccion", "extraktion", "extracao", "extraction"]),
    ("crown", &["corona", "couronne", "krone", "coroa"]),
];

/// A doctor's title followed by a capitalised name, in any of the brain's languages.
static TITLED_NAME: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"(?i:\b(?:dr|dra|dre|doctora?|docteure?|doktor|doutora?)\b\.?)\s+\p{Lu}[\p{L}'’-]+(?:\s+\p{Lu}[\p{L}'’-]+)?",
    )
    .expect("the titled-name pattern compiles")
});

/// The placeholder words names are replaced with.
pub const DOCTOR: &str = "zzdoctor";
pub const SERVICE: &str = "zzservice";

/// The names a workspace's visitors may use: its doctors' and services' (folded words).
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct Lexicon {
    doctor_words: Vec<String>,
    services: Vec<Vec<String>>,
}

impl Lexicon {
    pub fn new<'a>(doctors: impl IntoIterator<Item = &'a str>, services: impl IntoIterator<Item = &'a str>) -> Lexicon {
        let titles = ["dr", "dra", "dre", "doctor", "doctora", "docteur", "doktor", "doutor", "doutora", "prof"];
        let mut doctor_words: Vec<String> = doctors
            .into_iter()
            .flat_map(|name| features::fold(name).split(' ').map(str::to_owned).collect::<Vec<_>>())
            .filter(|w| w.chars().count() > 2 && !titles.contains(&w.as_str()))
            .collect();
        doctor_words.sort();
        doctor_words.dedup();
        let services = services
            .into_iter()
            .map(|name| features::fold(name).split(' ').map(str::to_owned).collect::<Vec<_>>())
            .filter(|words| !words.is_empty())
            .collect();
        Lexicon { doctor_words, services }
    }

    /// `text`, folded, with doctors' and services' names replaced by placeholder words.
    pub fn mask(&self, text: &str) -> String {
        let titled = TITLED_NAME.replace_all(text, format!(" {DOCTOR} "));
        let folded = features::fold(&titled);
        let mut words: Vec<&str> = folded.split(' ').filter(|w| !w.is_empty()).collect();
        for name in &self.services {
            let mut i = 0;
            while i + name.len() <= words.len() {
                if words[i..i + name.len()].iter().zip(name).all(|(w, n)| *w == n) {
                    words.splice(i..i + name.len(), [SERVICE]);
                }
                i += 1;
            }
        }
        let mut out: Vec<&str> = Vec::with_capacity(words.len());
        for word in words {
            let word = if self.doctor_words.iter().any(|d| d == word) {
                DOCTOR
            } else if is_service_word(word) {
                SERVICE
            } else {
                word
            };
            // "zzdoctor zzdoctor" (a first name and a surname) is one doctor.
            if (word == DOCTOR || word == SERVICE) && out.last() == Some(&word) {
                continue;
            }
            out.push(word);
        }
        out.join(" ")
    }
}

/// Words for the people who treat patients, in the brain's languages (folded).
const PRACTITIONER_WORDS: &[&str] = &[
    "doctor",
    "doctors",
    "dentist",
    "dentists",
    "dr",
    "hygienist",
    "orthodontist",
    "specialist",
    "specialists",
    "staff",
    "team",
    "physician",
    "surgeon",
    "doctora",
    "doctores",
    "medico",
    "medicos",
    "medica",
    "dentista",
    "dentistas",
    "odontologo",
    "odontologa",
    "ortodoncista",
    "especialista",
    "equipo",
    "docteur",
    "docteurs",
    "medecin",
    "medecins",
    "dentiste",
    "dentistes",
    "orthodontiste",
    "praticien",
    "praticiens",
    "equipe",
    "arzt",
    "arztin",
    "arzte",
    "zahnarzt",
    "zahnarztin",
    "zahnarzte",
    "kieferorthopade",
    "kieferorthopadin",
    "team",
    "doutor",
    "doutora",
    "doutores",
    "ortodontista",
    "equipa",
    "he",
    "she",
    "him",
    "her",
    "elle",
    "er",
    "ella",
    "ele",
    "ela",
];

/// Whether `text` is about a practitioner: names one of the workspace's doctors, titles
/// someone ("Dr. Moreau"), or says "dentist", "médecin", "Zahnarzt", "he", "she"….
pub fn mentions_practitioner(text: &str, lexicon: &Lexicon) -> bool {
    lexicon.mask(text).split(' ').any(|w| w == DOCTOR || PRACTITIONER_WORDS.contains(&w))
}

/// Words a request for a person is made with, in the brain's languages (folded).
const PERSON_WORDS: &[&str] = &[
    "human",
    "person",
    "someone",
    "somebody",
    "agent",
    "receptionist",
    "staff",
    "operator",
    "representative",
    "real",
    "humano",
    "persona",
    "alguien",
    "recepcionista",
    "agente",
    "operador",
    "humain",
    "personne",
    "quelqu",
    "quelquun",
    "conseiller",
    "conseillere",
    "secretariat",
    "standard",
    "mensch",
    "menschen",
    "person",
    "jemand",
    "jemandem",
    "mitarbeiter",
    "mitarbeiterin",
    "rezeption",
    "pessoa",
    "alguem",
    "atendente",
    "atendimento",
    "secretaria",
];

/// Whether `text` names a person to talk to ("a real person", "alguien", "quelqu'un", "jemandem").
pub fn mentions_person(text: &str) -> bool {
    features::fold(text).split(' ').any(|w| PERSON_WORDS.contains(&w))
}

/// Everyday words for what a doctor does, in the brain's languages (folded), and the words of a
/// doctor's specialty or biography that mean the same thing.
const CARE_WORDS: &[(&[&str], &[&str])] = &[
    (
        &[
            "child", "children", "kid", "kids", "son", "daughter", "baby", "toddler", "nino", "ninos", "nina", "ninas",
            "hijo", "hija", "enfant", "enfants", "fils", "fille", "kind", "kinder", "sohn", "tochter", "crianca",
            "criancas", "filho", "filha", "bebe",
        ],
        &["pediatric", "paediatric", "children", "child", "kids", "youngest"],
    ),
    (
        &[
            "braces",
            "brace",
            "aligners",
            "aligner",
            "orthodontics",
            "orthodontic",
            "straighten",
            "ortodoncia",
            "brackets",
            "frenillos",
            "appareil",
            "orthodontie",
            "zahnspange",
            "kieferorthopadie",
            "aparelho",
            "ortodontia",
            "invisalign",
        ],
        &["orthodontist", "orthodontics", "braces", "aligners"],
    ),
    (
        &[
            "checkup",
            "general",
            "family",
            "cleaning",
            "limpieza",
            "detartrage",
            "zahnreinigung",
            "limpeza",
            "familia",
            "famille",
        ],
        &["general", "family", "preventive"],
    ),
];

/// Pronouns that refer to someone named before ("does he work Saturdays?", "book me with her").
/// Words that are also articles or the polite "you" ("el", "il", "Sie", "ihr") are left out: they
/// are in nearly every Spanish, French or German message.
const PRONOUNS: &[&str] =
    &["he", "she", "him", "her", "his", "ella", "elle", "lui", "er", "ihm", "ele", "ela", "dele", "dela"];

/// Whether `text` refers to someone by a pronoun.
pub fn refers_to_someone(text: &str) -> bool {
    // Spanish "él" is a pronoun; folded, it would be the article "el".
    let accented = text.to_lowercase().split(|c: char| !c.is_alphabetic()).any(|w| w == "él");
    accented || features::fold(text).split(' ').any(|w| PRONOUNS.contains(&w))
}

/// A doctor as the brain reads about them: name, specialty, biography.
pub struct DoctorCard<'a> {
    pub name: &'a str,
    pub specialty: &'a str,
    pub bio: &'a str,
}

/// The doctors `text` names by name (surname or full name).
pub fn doctors_named(text: &str, doctors: &[DoctorCard]) -> Vec<usize> {
    let words: Vec<String> = features::fold(text).split(' ').map(str::to_owned).collect();
    doctors
        .iter()
        .enumerate()
        .filter(|(_, d)| {
            let surname = features::fold(d.name).split(' ').next_back().map(str::to_owned).unwrap_or_default();
            surname.chars().count() > 2 && words.contains(&surname)
        })
        .map(|(i, _)| i)
        .collect()
}

/// The doctors `text` names by name, or else those whose specialty or biography covers the
/// care it asks about ("who sees children?" finds the pediatric dentist).
pub fn doctors_meant(text: &str, doctors: &[DoctorCard]) -> Vec<usize> {
    let by_name = doctors_named(text, doctors);
    if !by_name.is_empty() {
        return by_name;
    }
    let words: Vec<String> = features::fold(text).split(' ').map(str::to_owned).collect();
    let asked: Vec<&[&str]> = CARE_WORDS
        .iter()
        .filter(|(everyday, _)| words.iter().any(|w| everyday.contains(&w.as_str())))
        .map(|(_, meaning)| *meaning)
        .collect();
    if asked.is_empty() {
        return Vec::new();
    }
    doctors
        .iter()
        .enumerate()
        .filter(|(_, d)| {
            let about = features::fold(&format!("{} {}", d.specialty, d.bio));
            asked.iter().all(|meaning| about.split(' ').any(|w| meaning.contains(&w)))
        })
        .map(|(i, _)| i)
        .collect()
}

fn is_service_word(folded: &str) -> bool {
    let singular = folded.strip_suffix('s').unwrap_or(folded);
    SERVICE_WORDS.iter().any(|(meaning, words)| {
        *meaning == folded || *meaning == singular || words.contains(&folded) || words.contains(&singular)
    }) || ["checkup", "check", "exam", "examination"].contains(&folded)
}

/// The practice service `text` names, in any of the brain's languages.
pub fn service_named<'a>(text: &str, services: &[&'a str]) -> Option<&'a str> {
    let folded = features::fold(text);
    let mut english: Vec<&str> = Vec::new();
    for word in folded.split(' ') {
        for (meaning, words) in SERVICE_WORDS {
            // German joins words: "Beratungstermin", "Zahnreinigungstermin".
            let compound = |w: &&str| w.len() >= 6 && word.len() > w.len() + 3 && word.starts_with(*w);
            // "beratungs termin": the joining s of a split compound.
            let joined = word.strip_suffix('s').is_some_and(|stem| stem.len() >= 6 && words.contains(&stem));
            if words.contains(&word) || joined || words.iter().any(compound) {
                english.push(meaning);
            }
        }
    }
    let widened = format!("{text} {}", english.join(" "));
    signals::treatment_interest(&[widened.as_str()], services)
}

#[cfg(test)]
mod tests {
    use super::*;

    const DEMO: &[&str] = &["General Consultation", "Teeth Cleaning", "Teeth Whitening"];

    #[test]
    fn services_are_found_from_everyday_words_in_every_language() {
        for (text, service) in [
            ("how much is a cleaning?", "Teeth Cleaning"),
            ("Bonjour, combien coûte un détartrage ?", "Teeth Cleaning"),
            ("cuánto cuesta el blanqueamiento", "Teeth Whitening"),
            ("Was kostet eine Zahnreinigung?", "Teeth Cleaning"),
            ("quanto custa uma consulta?", "General Consultation"),
            ("einen Beratungstermin bei Dr. Johnson", "General Consultation"),
        ] {
            assert_eq!(service_named(text, DEMO), Some(service), "{text}");
        }
    }

    #[test]
    fn names_are_masked_for_the_classifier() {
        let lexicon = Lexicon::new(["Dr. Michael Chen", "Dr. Sarah Johnson"], DEMO.iter().copied());
        assert_eq!(lexicon.mask("Can I see Dr. Chen for a teeth cleaning?"), "can i see zzdoctor for a zzservice");
        assert_eq!(lexicon.mask("move my consultation with Chen"), "move my zzservice with zzdoctor");
        assert_eq!(lexicon.mask("la doctora Moreau hace blanqueamiento?"), "la zzdoctor hace zzservice");
        assert_eq!(Lexicon::default().mask("Sarah Johnson?"), "sarah johnson");
    }

    #[test]
    fn doctors_are_found_by_name_or_by_the_care_asked_about() {
        let cards = [
            DoctorCard {
                name: "Dr. Sarah Johnson",
                specialty: "General Dentist",
                bio: "Family and preventive dentistry.",
            },
            DoctorCard { name: "Dr. Michael Chen", specialty: "Orthodontist", bio: "Braces and clear aligners." },
            DoctorCard {
                name: "Dr. Emily Davis",
                specialty: "Pediatric Dentist",
                bio: "Gentle care for our youngest patients.",
            },
        ];
        assert_eq!(doctors_meant("which of your dentists does braces?", &cards), vec![1]);
        assert_eq!(doctors_meant("¿quién atiende a niños?", &cards), vec![2]);
        assert_eq!(doctors_meant("is Johnson in today?", &cards), vec![0]);
        assert!(doctors_meant("do you do implants?", &cards).is_empty());
        assert!(refers_to_someone("does he work Saturdays?"));
        assert!(!refers_to_someone("do you work Saturdays?"));
        assert!(!refers_to_someone("¿Cuál es el horario?"));
        assert!(refers_to_someone("¿trabaja él los sábados?"));
    }

    #[test]
    fn no_service_is_invented() {
        assert_eq!(service_named("combien ça coûte ?", DEMO), None);
        assert_eq!(service_named("do you do implants?", DEMO), None);
    }
}
