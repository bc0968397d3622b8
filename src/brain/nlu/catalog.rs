//! The built-in brain's own words in each language, as Fluent messages.
//!
//! The catalogue is a `.ftl` file per language under `src/brain/nlu/locales/`, compiled in and
//! parsed once. Every language must define every message English defines; a test holds them
//! to that, so a missing translation is a failing build rather than a visitor reading an id.

use std::collections::HashMap;
use std::sync::LazyLock;

use fluent_bundle::concurrent::FluentBundle;
use fluent_bundle::{FluentArgs, FluentResource};

use super::Lang;

const SOURCES: [(Lang, &str); 5] = [
    (Lang::En, include_str!("locales/en.ftl")),
    (Lang::Es, include_str!("locales/es.ftl")),
    (Lang::Fr, include_str!("locales/fr.ftl")),
    (Lang::De, include_str!("locales/de.ftl")),
    (Lang::Pt, include_str!("locales/pt.ftl")),
];

static BUNDLES: LazyLock<HashMap<Lang, FluentBundle<FluentResource>>> = LazyLock::new(|| {
    SOURCES
        .iter()
        .map(|(lang, source)| {
            let resource = FluentResource::try_new((*source).to_owned())
                .unwrap_or_else(|(_, errors)| panic!("locales/{lang}.ftl does not parse: {errors:?}"));
            let id: unic_langid::LanguageIdentifier = lang.code().parse().expect("a language code is an identifier");
            let mut bundle = FluentBundle::new_concurrent(vec![id]);
            // Replies are plain text in a chat bubble, not bidirectional markup.
            bundle.set_use_isolating(false);
            bundle.add_resource(resource).unwrap_or_else(|errors| panic!("locales/{lang}.ftl: {errors:?}"));
            (*lang, bundle)
        })
        .collect()
});

/// The message `id` in `lang` with its arguments filled in; English when `lang` lacks it.
pub fn say(lang: Lang, id: &str, args: &[(&str, &str)]) -> String {
    let mut fluent_args = FluentArgs::new();
    for (name, value) in args {
        fluent_args.set(*name, *value);
    }
    for lang in [lang, Lang::En] {
        let bundle = &BUNDLES[&lang];
        if let Some(pattern) = bundle.get_message(id).and_then(|m| m.value()) {
            let mut errors = Vec::new();
            let text = bundle.format_pattern(pattern, Some(&fluent_args), &mut errors);
            if errors.is_empty() {
                return text.into_owned();
            }
            tracing::warn!(%lang, id, ?errors, "a catalogue message did not format");
        }
    }
    id.to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(lang: Lang) -> Vec<String> {
        let (_, source) = SOURCES.iter().find(|(l, _)| *l == lang).unwrap();
        source
            .lines()
            .filter(|l| !l.starts_with(['#', ' ', '}']) && l.contains(" = "))
            .map(|l| l.split(" = ").next().unwrap().to_owned())
            .collect()
    }

    /// Every argument a message of the catalogue takes.
    const ARGUMENTS: &[&str] = &[
        "name",
        "details",
        "service",
        "price",
        "list",
        "services",
        "offer",
        "minutes",
        "reach",
        "doctor",
        "date",
        "time",
        "id",
        "days",
        "reason",
        "with",
        "times",
        "next",
        "why",
        "options",
        "booking",
        "when",
        "specialty",
        "bio",
        "company",
    ];

    #[test]
    fn every_language_says_everything_english_says() {
        let english = ids(Lang::En);
        assert!(english.len() >= 50);
        let mut args = FluentArgs::new();
        for name in ARGUMENTS {
            args.set(*name, "x");
        }
        for lang in Lang::ALL {
            assert!(ids(lang).len() == english.len(), "{lang} has messages English lacks");
            let bundle = &BUNDLES[&lang];
            for id in &english {
                let pattern = bundle.get_message(id).and_then(|m| m.value());
                let pattern = pattern.unwrap_or_else(|| panic!("{lang} lacks {id}"));
                let mut errors = Vec::new();
                let text = bundle.format_pattern(pattern, Some(&args), &mut errors);
                assert!(errors.is_empty() && !text.trim().is_empty(), "{lang} {id}: {errors:?}");
            }
        }
    }

    #[test]
    fn arguments_are_filled_in() {
        assert_eq!(
            say(Lang::Fr, "price", &[("service", "Teeth Cleaning"), ("price", "$120")]),
            "Le tarif pour Teeth Cleaning est de $120."
        );
        assert_eq!(
            say(Lang::De, "contact-noted-named", &[("name", "Dana"), ("details", "dana@x.io")]),
            "Danke, Dana. Wir haben Ihre Kontaktdaten notiert (dana@x.io)."
        );
    }
}
