//! The conversation stories of `tests/nlu/stories.md`, played against the demo practice through
//! the REST API: each is a fresh conversation, its visitor messages sent in order, its end state
//! (a booking made, moved or cancelled, the CRM's contact, a hand-over, the reply's language and
//! words) checked through the API afterwards.
//!
//! The stories were written apart from the brain's training examples. Not all of them pass yet
//! (the booking dialog still answers in English, for one); the test prints every failing story
//! with its reason and holds the number that pass to a floor that only ever goes up.

use serde_json::Value;

use crate::helpers::{spawn_app, Backend, TestApp};
use frontdesk::brain::nlu::Lang;

/// Stories that passed when this floor was last raised; fewer is a regression.
const STORIES_PASSING: usize = 48;

#[derive(Debug, Default)]
struct Story {
    title: String,
    given: Option<Vec<(String, String)>>,
    messages: Vec<String>,
    expects: Vec<String>,
}

fn fields(text: &str) -> Vec<(String, String)> {
    // `service=Teeth Cleaning doctor=Dr. Sarah Johnson`: a value runs to the next `key=`.
    let mut out: Vec<(String, String)> = Vec::new();
    for token in text.split_whitespace() {
        match token.split_once('=') {
            Some((key, value)) if key.chars().all(|c| c.is_ascii_lowercase() || c == '_') => {
                out.push((key.to_owned(), value.to_owned()))
            }
            _ => {
                if let Some(last) = out.last_mut() {
                    last.1.push(' ');
                    last.1.push_str(token);
                }
            }
        }
    }
    out
}

fn parse(source: &str) -> Vec<Story> {
    let mut stories = Vec::new();
    let mut current: Option<Story> = None;
    for line in source.lines() {
        if let Some(title) = line.strip_prefix("## story:") {
            stories.extend(current.take());
            current = Some(Story { title: title.trim().to_owned(), ..Story::default() });
        } else if let Some(story) = current.as_mut() {
            if let Some(message) = line.strip_prefix("> ") {
                story.messages.push(message.trim().to_owned());
            } else if let Some(given) = line.strip_prefix("given: booking") {
                story.given = Some(fields(given));
            } else if let Some(expect) = line.strip_prefix("expect:") {
                story.expects.push(expect.trim().to_owned());
            }
        }
    }
    stories.extend(current);
    stories
}

async fn bookings(app: &TestApp, conversation: &str) -> Vec<Value> {
    let (status, body) = app.get(&app.a.api_key, "/api/bookings").await;
    assert_eq!(status, 200, "{body}");
    body.as_array().unwrap().iter().filter(|b| b["conversation_id"] == conversation).cloned().collect()
}

/// The visitor's booking made the way a visitor makes it, in this conversation, before the story.
async fn book_first(app: &TestApp, conversation: &str, given: &[(String, String)]) -> Result<Value, String> {
    let get = |key: &str| given.iter().find(|(k, _)| k == key).map(|(_, v)| v.clone()).unwrap_or_default();
    let script = [
        format!("I'd like to book a {}", get("service")),
        "next Monday".to_owned(),
        "the first one".to_owned(),
        get("name"),
        get("email"),
        "yes".to_owned(),
    ];
    for line in &script {
        app.say(conversation, line).await;
    }
    match bookings(app, conversation).await.as_slice() {
        [one] if one["status"] == "confirmed" => Ok(one.clone()),
        other => Err(format!("the given booking could not be made: {other:?}")),
    }
}

/// The patient with every detail in `want`, or what the CRM holds instead.
async fn find_patient(app: &TestApp, want: &[(String, String)]) -> Result<(), String> {
    let (status, patients) = app.get(&app.a.api_key, "/api/patients").await;
    assert_eq!(status, 200, "{patients}");
    let patients = patients.as_array().cloned().unwrap_or_default();
    let found = patients.iter().any(|p| {
        want.iter().all(|(key, value)| {
            let value = value.trim();
            match key.as_str() {
                "email" => p["email"].as_str().is_some_and(|e| e.eq_ignore_ascii_case(value)),
                "phone" => p["phone"].as_str().is_some_and(|ph| digits(ph).ends_with(&digits(value))),
                "name" => p["name"].as_str().is_some_and(|n| n.eq_ignore_ascii_case(value)),
                _ => true,
            }
        })
    });
    if found {
        return Ok(());
    }
    let held: Vec<String> =
        patients.iter().take(5).map(|p| format!("{} <{}> {}", p["name"], p["email"], p["phone"])).collect();
    Err(format!("no patient with {want:?}; the latest: {}", held.join(", ")))
}

/// The language of a reply, judged by its letters alone (whatlang, limited to the five), however
/// short: the judge must not share the brain's own rules.
fn language_of(text: &str) -> Option<Lang> {
    use whatlang::Lang as W;
    let detector = whatlang::Detector::with_allowlist(vec![W::Eng, W::Spa, W::Fra, W::Deu, W::Por]);
    match detector.detect(text)?.lang() {
        W::Eng => Some(Lang::En),
        W::Spa => Some(Lang::Es),
        W::Fra => Some(Lang::Fr),
        W::Deu => Some(Lang::De),
        W::Por => Some(Lang::Pt),
        _ => None,
    }
}

fn digits(text: &str) -> String {
    text.chars().filter(char::is_ascii_digit).collect()
}

/// Checks one `expect:` line; `Err` says what was found instead.
async fn check(
    app: &TestApp,
    conversation: &str,
    given: Option<&Value>,
    last_reply: &str,
    expect: &str,
) -> Result<(), String> {
    let had_booking = given.is_some();
    let (kind, rest) = expect.split_once(' ').unwrap_or((expect, ""));
    let (kind, inline) =
        kind.split_once('=').map_or((kind, None), |(k, v)| (k, Some(format!("{v} {rest}").trim().to_owned())));
    let want = fields(rest);
    let want_of = |key: &str| want.iter().find(|(k, _)| k == key).map(|(_, v)| v.trim().to_owned());
    let booked = bookings(app, conversation).await;
    match kind {
        "booking_created" => {
            let expected = if had_booking { 2 } else { 1 };
            let made: Vec<&Value> = booked.iter().filter(|b| b["status"] == "confirmed").collect();
            if made.len() < expected {
                return Err(format!("no booking was made ({} in this conversation)", booked.len()));
            }
            let last = made.last().unwrap();
            if let Some(service) = want_of("service") {
                if last["service"] != service.as_str() {
                    return Err(format!("booked {} instead of {service}", last["service"]));
                }
            }
            if let Some(doctor) = want_of("doctor") {
                if last["doctor_name"] != doctor.as_str() {
                    return Err(format!("booked with {} instead of {doctor}", last["doctor_name"]));
                }
            }
            Ok(())
        }
        "no_booking" => {
            let expected = usize::from(had_booking);
            let made = booked.iter().filter(|b| b["status"] == "confirmed").count();
            if made > expected {
                return Err(format!("a booking was made: {booked:?}"));
            }
            Ok(())
        }
        "booking_rescheduled" | "booking_cancelled" => {
            let given = given.ok_or("the story gives no booking")?;
            let Some(now) = booked.iter().find(|b| b["id"] == given["id"]) else {
                return Err("the given booking is gone".into());
            };
            let done = if kind == "booking_cancelled" {
                now["status"] == "cancelled"
            } else {
                now["status"] == "confirmed" && now["starts_at"] != given["starts_at"]
            };
            if done {
                Ok(())
            } else {
                Err(format!("the booking is still {} at {}", now["status"], now["starts_at"]))
            }
        }
        "contact" => {
            // The CRM learns from the conversation in the background: give it a few seconds.
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
            loop {
                let found = find_patient(app, &want).await;
                if found.is_ok() || std::time::Instant::now() > deadline {
                    return found;
                }
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            }
        }
        "handoff" => {
            let (_, view) = app.get(&app.a.api_key, &format!("/api/conversations/{conversation}")).await;
            if view["owner"] == "bot" {
                Err(format!("the conversation is still the bot's: {view}"))
            } else {
                Ok(())
            }
        }
        "reply_language" => {
            let wanted = inline.as_deref().and_then(Lang::from_code).ok_or("an unknown language")?;
            match language_of(last_reply) {
                Some(found) if found == wanted => Ok(()),
                found => Err(format!("the last reply is in {found:?}: {last_reply:?}")),
            }
        }
        "reply_contains" => {
            let wanted = inline.unwrap_or_default();
            if last_reply.to_lowercase().contains(&wanted.to_lowercase()) {
                Ok(())
            } else {
                Err(format!("the last reply lacks {wanted:?}: {last_reply:?}"))
            }
        }
        other => Err(format!("an unknown expectation {other:?}")),
    }
}

async fn play(app: &TestApp, story: &Story) -> Result<(), String> {
    let conversation = app.start_conversation().await;
    let given = match &story.given {
        Some(given) => Some(book_first(app, &conversation, given).await?),
        None => None,
    };
    let mut last_reply = String::new();
    for message in &story.messages {
        let body = app.say(&conversation, message).await;
        last_reply = body["reply"]["content"].as_str().unwrap_or_default().to_owned();
    }
    let mut failures = Vec::new();
    for expect in &story.expects {
        if let Err(why) = check(app, &conversation, given.as_ref(), &last_reply, expect).await {
            failures.push(format!("{expect}: {why}"));
        }
    }
    if failures.is_empty() {
        Ok(())
    } else {
        Err(failures.join("; "))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_stories_reach_their_end_states() {
    let source = include_str!("../nlu/stories.md");
    let stories = parse(source);
    assert!(stories.len() >= 30, "{} stories", stories.len());
    assert!(stories.iter().all(|s| !s.messages.is_empty() && !s.expects.is_empty()), "every story says and expects");
    let app = spawn_app(Backend::Sqlite).await;
    let mut passed = 0;
    let mut report = Vec::new();
    for story in &stories {
        match play(&app, story).await {
            Ok(()) => passed += 1,
            Err(why) => report.push(format!("  {}: {why}", story.title)),
        }
    }
    println!("{passed} of {} stories reach their end state; the others:\n{}", stories.len(), report.join("\n"));
    assert!(passed >= STORIES_PASSING, "{passed} stories pass, fewer than {STORIES_PASSING}:\n{}", report.join("\n"));
}

#[test]
fn story_fields_run_to_the_next_key() {
    assert_eq!(
        fields(" service=General Consultation doctor=Dr. Sarah Johnson"),
        vec![("service".into(), "General Consultation".into()), ("doctor".into(), "Dr. Sarah Johnson".into())]
    );
}
