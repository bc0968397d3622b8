//! Scoring the classifier on a held-out, labelled set, like `rasa test nlu`.
//!
//! The set is a tab-separated file per language (`<intent>\t<message>`, `#` comments) with
//! entities marked inline as `[text](type)`; the marks are removed before the message is
//! classified. It is written apart from the training examples and never read by training, so
//! the figures say how the brain does on messages it has not seen.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

use super::{Intent, Lang, Lexicon, Nlu};
use crate::storage::schedule::{DEMO_DOCTORS, DEMO_SERVICES};

/// One labelled message of the evaluation set.
#[derive(Debug, Clone)]
pub struct Case {
    pub lang: Lang,
    pub intent: Intent,
    /// The message as a visitor would send it (entity marks removed).
    pub text: String,
    /// `(type, text)` of each marked entity.
    pub entities: Vec<(String, String)>,
}

/// Removes `[text](type)` marks, returning the plain text and the marked entities.
pub fn strip_marks(marked: &str) -> (String, Vec<(String, String)>) {
    let mut text = String::with_capacity(marked.len());
    let mut entities = Vec::new();
    let mut rest = marked;
    while let Some(open) = rest.find('[') {
        let after = &rest[open + 1..];
        let parsed = after.find("](").and_then(|close| {
            let kind_end = after[close + 2..].find(')')?;
            Some((&after[..close], &after[close + 2..close + 2 + kind_end], close + 2 + kind_end + 1))
        });
        match parsed {
            Some((value, kind, used)) if !kind.contains(' ') => {
                text.push_str(&rest[..open]);
                text.push_str(value);
                entities.push((kind.to_owned(), value.to_owned()));
                rest = &after[used..];
            }
            _ => {
                text.push_str(&rest[..=open]);
                rest = after;
            }
        }
    }
    text.push_str(rest);
    (text, entities)
}

pub fn parse_cases(lang: Lang, source: &str) -> Result<Vec<Case>, String> {
    let mut cases = Vec::new();
    for (number, line) in source.lines().enumerate() {
        if line.trim().is_empty() || line.trim_start().starts_with('#') {
            continue;
        }
        let (intent, message) =
            line.split_once('\t').ok_or_else(|| format!("line {}: expected `intent<TAB>message`", number + 1))?;
        let intent =
            Intent::from_name(intent).ok_or_else(|| format!("line {}: unknown intent {intent:?}", number + 1))?;
        let (text, entities) = strip_marks(message.trim());
        cases.push(Case { lang, intent, text, entities });
    }
    Ok(cases)
}

/// Every language's cases from `dir` (`en.tsv`, `es.tsv`, …); a missing file is an error.
pub fn load(dir: &Path) -> Result<Vec<Case>, String> {
    let mut cases = Vec::new();
    for lang in Lang::ALL {
        let path = dir.join(format!("{lang}.tsv"));
        let source = std::fs::read_to_string(&path).map_err(|err| format!("{}: {err}", path.display()))?;
        cases.extend(parse_cases(lang, &source).map_err(|err| format!("{}: {err}", path.display()))?);
    }
    Ok(cases)
}

/// Precision, recall and F1 of one intent.
#[derive(Debug, Clone, Copy, Default)]
pub struct Scores {
    pub support: usize,
    pub precision: f64,
    pub recall: f64,
    pub f1: f64,
}

/// How the classifier did on a set of cases.
#[derive(Debug, Clone, Default)]
pub struct Report {
    pub cases: usize,
    pub correct: usize,
    pub language_correct: usize,
    pub per_intent: BTreeMap<Intent, Scores>,
    /// Accuracy, macro-F1 and language accuracy of each language's cases.
    pub per_language: BTreeMap<Lang, (usize, f64, f64, f64)>,
    /// `(expected, predicted, message)` of every miss.
    pub misses: Vec<(Intent, Intent, String)>,
}

impl Report {
    pub fn accuracy(&self) -> f64 {
        ratio(self.correct, self.cases)
    }

    pub fn macro_f1(&self) -> f64 {
        macro_f1(&self.per_intent)
    }
}

fn ratio(part: usize, whole: usize) -> f64 {
    if whole == 0 {
        0.0
    } else {
        part as f64 / whole as f64
    }
}

fn macro_f1(per_intent: &BTreeMap<Intent, Scores>) -> f64 {
    let present: Vec<f64> = per_intent.values().filter(|s| s.support > 0).map(|s| s.f1).collect();
    present.iter().sum::<f64>() / present.len().max(1) as f64
}

/// The names the evaluation set's messages use: the demo practice's, which the brain knows at
/// run time as it knows any workspace's.
pub fn demo_lexicon() -> Lexicon {
    Lexicon::new(DEMO_DOCTORS.iter().map(|d| d.0), DEMO_SERVICES.iter().map(|s| s.0))
}

/// What the brain does with a message it claims no intent for is what it does out of scope.
fn predicted_intent(nlu: &Nlu, lexicon: &Lexicon, case: &Case) -> (Intent, Lang) {
    let understood = nlu.understand(&case.text, None, lexicon);
    (understood.intent.unwrap_or(Intent::OutOfScope), understood.lang)
}

fn scores(pairs: &[(Intent, Intent)]) -> BTreeMap<Intent, Scores> {
    let mut per_intent = BTreeMap::new();
    for intent in Intent::ALL {
        let true_positive = pairs.iter().filter(|(e, p)| *e == intent && *p == intent).count();
        let expected = pairs.iter().filter(|(e, _)| *e == intent).count();
        let predicted = pairs.iter().filter(|(_, p)| *p == intent).count();
        if expected == 0 && predicted == 0 {
            continue;
        }
        let precision = ratio(true_positive, predicted);
        let recall = ratio(true_positive, expected);
        let f1 = if precision + recall == 0.0 { 0.0 } else { 2.0 * precision * recall / (precision + recall) };
        per_intent.insert(intent, Scores { support: expected, precision, recall, f1 });
    }
    per_intent
}

pub fn evaluate(nlu: &Nlu, cases: &[Case]) -> Report {
    let lexicon = demo_lexicon();
    let predictions: Vec<(Intent, Lang)> = cases.iter().map(|case| predicted_intent(nlu, &lexicon, case)).collect();
    report_of(cases, &predictions)
}

/// The report of predictions made elsewhere (by words and meaning, say), one per case, in order.
pub fn report_of(cases: &[Case], predictions: &[(Intent, Lang)]) -> Report {
    let mut report = Report { cases: cases.len(), ..Report::default() };
    let mut pairs = Vec::with_capacity(cases.len());
    let mut by_language: BTreeMap<Lang, (Vec<(Intent, Intent)>, usize)> = BTreeMap::new();
    for (case, &(predicted, lang)) in cases.iter().zip(predictions) {
        pairs.push((case.intent, predicted));
        let entry = by_language.entry(case.lang).or_default();
        entry.0.push((case.intent, predicted));
        if lang == case.lang {
            report.language_correct += 1;
            entry.1 += 1;
        }
        if predicted == case.intent {
            report.correct += 1;
        } else {
            report.misses.push((case.intent, predicted, case.text.clone()));
        }
    }
    report.per_intent = scores(&pairs);
    for (lang, (pairs, language_correct)) in by_language {
        let correct = pairs.iter().filter(|(e, p)| e == p).count();
        let total = pairs.len();
        report
            .per_language
            .insert(lang, (total, ratio(correct, total), macro_f1(&scores(&pairs)), ratio(language_correct, total)));
    }
    report
}

/// The report as `frontdesk nlu evaluate` prints it.
pub fn render(report: &Report, show_misses: bool) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "intent accuracy {:.3} ({} of {}), macro-F1 {:.3}, language detected {:.3}",
        report.accuracy(),
        report.correct,
        report.cases,
        report.macro_f1(),
        ratio(report.language_correct, report.cases)
    );
    let _ = writeln!(out, "\n{:<6} {:>6} {:>9} {:>9} {:>9}", "lang", "cases", "accuracy", "macro-F1", "language");
    for (lang, (cases, accuracy, f1, language)) in &report.per_language {
        let _ = writeln!(out, "{:<6} {cases:>6} {accuracy:>9.3} {f1:>9.3} {language:>9.3}", lang.code());
    }
    let _ = writeln!(out, "\n{:<18} {:>7} {:>9} {:>7} {:>7}", "intent", "support", "precision", "recall", "f1");
    for (intent, s) in &report.per_intent {
        let _ = writeln!(
            out,
            "{:<18} {:>7} {:>9.3} {:>7.3} {:>7.3}",
            intent.name(),
            s.support,
            s.precision,
            s.recall,
            s.f1
        );
    }
    if show_misses && !report.misses.is_empty() {
        let _ = writeln!(out, "\nmisses (expected -> predicted):");
        for (expected, predicted, text) in &report.misses {
            let _ = writeln!(out, "  {expected} -> {predicted}: {text}");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entity_marks_are_removed_and_kept_apart() {
        let (text, entities) = strip_marks("[Dana Reyes](name) here, [dana.r@mail.com](email) [not a mark]");
        assert_eq!(text, "Dana Reyes here, dana.r@mail.com [not a mark]");
        assert_eq!(entities, vec![("name".into(), "Dana Reyes".into()), ("email".into(), "dana.r@mail.com".into())]);
    }

    #[test]
    fn a_case_with_an_unknown_intent_or_no_tab_is_refused() {
        assert!(parse_cases(Lang::En, "bok\thi").is_err());
        assert!(parse_cases(Lang::En, "book hi").is_err());
        assert_eq!(parse_cases(Lang::En, "# c\n\nbook\tcan I come in").unwrap().len(), 1);
    }

    /// The held-out set in `tests/nlu/eval` stays above the floor the README states; the
    /// figures themselves are printed by `frontdesk nlu evaluate` and kept in BENCHMARKS.md.
    #[test]
    fn the_held_out_set_is_understood() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/nlu/eval");
        let cases = load(&dir).unwrap();
        assert!(cases.len() >= 300, "the evaluation set has {} cases", cases.len());
        let report = evaluate(&Nlu::shared(), &cases);
        println!("{}", render(&report, true));
        assert!(report.accuracy() >= 0.85, "accuracy {:.3}", report.accuracy());
        assert!(report.macro_f1() >= 0.85, "macro-F1 {:.3}", report.macro_f1());
        for (lang, (_, accuracy, _, language)) in &report.per_language {
            assert!(*accuracy >= 0.82, "{lang}: accuracy {accuracy:.3}");
            assert!(*language >= 0.90, "{lang}: language detected {language:.3}");
        }
    }
}
