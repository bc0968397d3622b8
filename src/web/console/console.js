/*! frontdesk console — the web app at /console (served under a content-hashed URL).
 *
 * Responsible for: signing in (cookie session + CSRF header on every non-GET), the live inbox
 * over /ws/agent (reconnect with back-off, at once on 1012, resync from the inbox frame), the
 * conversation view (history, streamed bot replies, take over / hand back / close, replies with
 * typing and read receipts, internal notes, saved replies with "/"), the contact panel, and the
 * admin pages (bot, widget with a live preview of the real widget, knowledge, bookings, leads,
 * team, API keys, webhooks, flows). It uses only the public REST and WebSocket APIs.
 *
 * Safety rule for every line below: text from the server, a visitor, an agent or a setting only
 * reaches the page through textContent / createElement / setAttribute — never innerHTML. The
 * Markdown subset of messages is parsed into nodes, not HTML.
 *
 * All the words are in the table T below (the console is English-only; one table keeps it
 * translatable).
 */
(() => {
  "use strict";
  const W = window, D = document;
  const SVG = "http://www.w3.org/2000/svg";

  // ---------------------------------------------------------------- words
  const T = {
    app: "frontdesk", console_title: "{page} · frontdesk", loading: "Loading…", retry: "Try again",
    skip: "Skip to content", optional: "optional", save: "Save changes", saving: "Saving…", saved: "Saved",
    cancel: "Cancel", close: "Close", delete: "Delete", discard: "Discard", add: "Add", remove: "Remove",
    copy: "Copy", copied: "Copied to the clipboard", copy_failed: "Copy it by hand: the browser refused",
    unsaved: "You have unsaved changes", leave_unsaved: "You have unsaved changes. Leave this page and lose them?",
    edit: "Edit", yes: "Yes", no: "No", none: "None", all: "All", default_: "Server default", confirm: "Confirm",
    // sign-in
    signin_title: "Sign in to your front desk", signin_sub: "Answer your patients' chats and run your assistant.",
    email: "Email", password: "Password", signin: "Sign in", signing_in: "Signing in…",
    signin_rate: "Too many attempts. Try again in {s} s.", signin_failed: "Could not sign in: {e}",
    session_ended: "Your session has ended. Please sign in again.", signed_out: "You have signed out.",
    setpw_title: "Choose your password", setpw_sub: "You'll use it with your email to sign in.",
    new_password: "New password", repeat_password: "Repeat the password", setpw_button: "Set password and sign in",
    setpw_hint: "At least 10 characters.", setpw_mismatch: "The two passwords are not the same",
    setpw_short: "Use at least 10 characters", setpw_notoken: "This link has no token. Ask your admin for a new invite link.",
    setpw_bad: "{e}. Ask your admin for a new invite link.",
    // shell
    nav_main: "Main", nav_admin: "Settings", signout: "Sign out", me_role_admin: "Admin", me_role_agent: "Agent",
    live: "Live", connecting: "Connecting…", reconnecting: "Reconnecting…", reconnect_in: "Reconnecting in {s} s",
    offline: "Offline", alerts_on: "Turn on desktop alerts", alerts_granted: "Desktop alerts are on",
    alerts_denied: "Desktop alerts are blocked in this browser's site settings",
    sound_on: "Sound alerts on", sound_off: "Sound alerts off", presence_online: "Online", presence_away: "Away",
    presence_label: "Your status: {p}. Click to switch.",
    no_access_title: "You don't have access to this page", no_access: "This page is for admins. Ask an admin of {ws} if you need it.",
    back_inbox: "Back to the inbox", not_found: "There is no such page.", load_failed: "Could not load this page: {e}",
    network: "The server could not be reached. Check the connection and try again.",
    forbidden: "You don't have access to this: {e}",
    csrf: "Your session's security token was refused. Reload the page and try again.",
    rate_limited: "Too many requests — try again in {s} s.",
    // pages
    p_inbox: "Inbox", p_bot: "Bot", p_widget: "Widget", p_knowledge: "Knowledge", p_bookings: "Bookings",
    p_leads: "Leads", p_agents: "Team", p_keys: "API keys", p_webhooks: "Webhooks", p_flows: "Flows",
    // inbox
    search: "Search name, email or message", filters: "Filters", owner: "Owner", status: "Status", agent: "Agent", bot: "Bot",
    unread_only: "Unread only", any: "Any", f_all: "Everyone", f_queued: "Waiting for a person", f_mine: "Mine",
    f_agent: "With a person", f_bot: "With the bot", s_open: "Open", s_closed: "Closed", s_all: "Open and closed",
    g_queued: "Waiting for a person", g_mine: "Mine", g_open: "All open", g_results: "Conversations",
    inbox_empty: "No conversations match.", inbox_empty_all: "No open conversations. New chats appear here as they start.",
    load_more: "Load older conversations", loading_more: "Loading…", visitor: "Visitor", you: "You", bot_name: "Bot",
    waiting: "Waiting {d}", awaiting: "Awaiting reply {d}", unread: "{n} unread", conv_count: "{n} open",
    no_messages: "No messages yet", attachment: "Attachment",
    pick_conv: "Pick a conversation", pick_conv_sub: "Conversations waiting for a person come first, with how long they've waited.",
    handoff_notif: "{name} is asking for a person", handoff_notif_body: "{text}",
    // conversation
    take_over: "Take over", taking_over: "Taking over…", hand_back: "Hand back to bot", close_conv: "Close",
    close_confirm: "Close this conversation?", close_confirm_text: "The visitor will see that the conversation has ended. This can't be undone.",
    owner_bot: "Bot", owner_queued: "Waiting", owner_agent: "{name}", owner_you: "You", closed: "Closed",
    lock_bot: "The bot is answering. Take over to reply yourself.",
    lock_queued: "{name} asked for a person {d} ago.", lock_other: "{agent} is handling this conversation.",
    lock_closed: "This conversation is closed.", taken_by: "{name} already has this conversation",
    reply_ph: "Reply to {name}…  Type / for saved replies", reply_label: "Reply", send: "Send",
    reply_hint: "Enter to send · Shift+Enter for a new line · / for saved replies",
    typing: "{name} is typing…", seen: "Seen", sending: "Sending…", not_sent: "Not sent", retry_send: "Retry",
    earlier: "Load earlier messages", start_of_conv: "Start of the conversation",
    interrupted: "Cut off by take-over", unanswered: "Couldn't answer", handoff_chip: "Asked for a person",
    fallback: "Built-in answer", sources: "Sources", offered: "Offered",
    ev_queued: "{by} asked for a person", ev_agent: "{agent} took over", ev_bot: "Handed back to the bot",
    ev_closed: "Conversation closed", by_visitor: "The visitor", by_bot: "The bot", by_api: "The API", by_system: "The system",
    by_agent: "An agent", by_rule: "The bot's hand-off rule", reason: "“{r}”",
    conv_missing: "This conversation doesn't exist, or it belongs to another workspace.",
    details_toggle: "Contact and details", back_list: "Back to the list",
    today: "Today", yesterday: "Yesterday",
    // canned
    canned_title: "Saved replies", canned_none: "No saved reply starts with “/{q}”.", canned_empty: "No saved replies yet. Admins add them on the Team page.",
    // contact panel
    contact: "Contact", name: "Name", phone: "Phone", save_contact: "Save contact", contact_saved: "Contact saved",
    lead: "Lead", stage: "Stage", score: "Score", why_score: "Why this score", no_lead: "Not a lead yet: a name plus an email or phone makes one.",
    bookings: "Bookings", upcoming: "Upcoming", past: "Past", no_bookings: "No bookings.",
    notes: "Internal notes", notes_hint: "Only your team sees notes.", add_note: "Add note", note_ph: "Write a note for your team…",
    no_notes: "No notes yet.", notes_unavailable: "Notes are not available on this server yet.",
    variables: "Conversation details", no_variables: "Nothing recorded yet.", channel: "Channel", started: "Started",
    previous: "Previous conversations", no_previous: "None found.", activity: "Activity", tokens: "Model tokens",
    interest: "Interest", source: "Source",
    // stages
    st_new: "New", st_contacted: "Contacted", st_qualified: "Qualified", st_converted: "Converted", st_lost: "Lost",
    // admin common
    bot_pick: "Bot", saved_ok: "Changes saved", discard_ok: "Changes discarded", not_saved: "Not saved",
    // bot page
    bot_title: "Bot settings", bot_sub: "What your assistant says, knows and when it calls a person.",
    bot_name_l: "Name", bot_active: "Active", bot_active_hint: "An inactive bot's widget doesn't load.",
    sec_messages: "Messages", sec_facts: "Facts about the practice", sec_policies: "Policies",
    sec_handoff: "Hand-off to people", sec_model: "Model", sec_sites: "Websites",
    welcome: "Welcome message", welcome_hint: "The first message of every conversation, and the widget's welcome.",
    greeting_reply: "Reply to a greeting", thanks_reply: "Reply to thanks", reply_unknown: "When it doesn't know",
    handoff_offer: "Offer of a person (after “doesn't know”)", attachment_reply: "Reply to a file without words",
    tone: "Tone", tone_hint: "How the model should sound, e.g. friendly, warm and concise.",
    fact_title: "Title", fact_content: "What the bot should know", add_fact: "Add a fact", add_policy: "Add a policy",
    facts_empty: "No facts yet: add opening hours, address, prices…", policies_empty: "No policies yet.",
    move_up: "Move up", move_down: "Move down",
    handoff_waiting: "When someone on the team is online", handoff_offline: "When nobody is online",
    handoff_after: "Ask for a person after this many unanswered questions", handoff_after_hint: "0 turns it off.",
    stream_delay: "Typing pace (ms before each chunk)", stream_delay_hint: "0 to 2000. A small pause reads more naturally.",
    model_enabled: "Use a language model", model_on: "On", model_off: "Off (built-in answers only)",
    model_name: "Model", model_profile: "Model profile", model_profile_hint: "One of the server's [models.NAME] profiles; empty uses the server's own endpoint.",
    temperature: "Temperature", max_tokens: "Max tokens per reply", timeout: "Timeout (seconds)",
    redact: "Hide emails and phone numbers from the model", first_tool: "Tool to call first",
    origins: "Allowed websites", origins_hint: "One origin per line, e.g. https://www.brightsmile.example. Empty: any site may embed the widget.",
    // widget page
    widget_title: "Widget", widget_sub: "How the chat looks on your website. The preview is the real widget with your unsaved changes.",
    colour: "Brand colour", colour_hint: "#RRGGBB. Text on it turns black or white, whichever reads better.",
    position: "Position", pos_right: "Bottom right", pos_left: "Bottom left", launcher_icon: "Launcher icon",
    launcher_text: "Launcher text", launcher_text_hint: "Words beside the icon, up to 40 characters. Empty: the icon alone.",
    w_title: "Title", w_title_hint: "Empty: the bot's name.", w_subtitle: "Subtitle", avatar_url: "Avatar image",
    avatar_hint: "An https:// image or a path on this server. Empty: initials.", hours: "Opening hours line",
    hours_hint: "Shown under the title, e.g. Mon–Fri 8:00–18:00.", quick_prompts: "Quick prompts",
    quick_prompts_hint: "Up to 6 buttons offered before the first message.", add_prompt: "Add a prompt",
    language: "Language", lang_auto: "The visitor's browser", sound: "Play a sound on new replies",
    uploads: "Let visitors attach pictures and PDFs", lead_capture: "Contact form", lead_enabled: "Ask for contact details",
    lead_when: "When", lead_before: "Before the first message", lead_during: "After the first message",
    lead_message: "Message above the form", lead_fields: "Fields", required: "Required",
    strings: "Custom wording", strings_hint: "Replace any of the widget's own words.", add_string: "Add wording",
    string_key: "Text", string_value: "Your wording", sec_look: "Look", sec_words: "Words", sec_behaviour: "Behaviour",
    preview: "Live preview", preview_note: "Unsaved changes show here at once. Conversations started in the preview are real.",
    embed: "Embed on your site", embed_hint: "Paste before </body> on every page that should show the chat.",
    preview_missing: "The preview page is not available on this server yet.", reload_preview: "Reload preview",
    // knowledge
    kn_title: "Knowledge", kn_sub: "What the bot answers from, and the questions it couldn't answer.",
    sources_tab: "Sources", unanswered_tab: "Unanswered questions", add_source: "Add source",
    k_url: "Website", k_file: "File", k_text: "Text", k_qa: "Q&A", k_type: "Type",
    url: "Address", crawl: "Follow links on the site", max_pages: "Pages at most", max_depth: "Link depth",
    sitemap: "Read the sitemap", title: "Title", content: "Text", question: "Question", answer: "Answer",
    file_pick: "File", file_hint: "PDF, HTML, Markdown, plain text or CSV.", all_bots: "Every bot", applies_to: "Used by",
    st_waiting: "Waiting", st_learning: "Learning", st_learned: "Learned", st_failed: "Failed",
    chunks: "{n} passages", pages: "{n} pages", learned_at: "Learned {t}", relearn: "Learn again", relearning: "Learning again",
    del_source: "Delete this source?", del_source_text: "The bot stops answering from it at once.",
    sources_empty: "No sources yet. Add your website, a document or Q&A pairs.",
    unanswered_empty: "Nothing unanswered. Questions the bot can't answer show up here.",
    asked: "Asked {n}×", last_asked: "last {t}", answer_ph: "Write the answer the bot should give…",
    add_answer: "Save as Q&A", dismiss: "Dismiss", answered: "Added to the knowledge base as a Q&A",
    try_q: "Try a question", try_ph: "e.g. Is there parking?", ask: "Ask", would_answer: "The bot would answer",
    no_answer: "The bot has no answer from its knowledge.", uploading: "Uploading…", open_conv: "Open conversation",
    // bookings
    bk_title: "Bookings", bk_sub: "The practice's appointments per doctor.", day: "Day", week: "Week",
    prev: "Previous", next: "Next", today_btn: "Today", doctor: "Doctor", all_doctors: "All doctors",
    bk_empty: "No appointments on this day.", bk_week_empty: "No appointments this week.",
    b_confirmed: "Confirmed", b_cancelled: "Cancelled", b_completed: "Completed", b_no_show: "No-show",
    cancel_booking: "Cancel booking", complete: "Mark completed", no_show: "Mark no-show", cancel_reason: "Reason (optional)",
    cancel_confirm: "Cancel this appointment?", service: "Service", when: "When", patient: "Patient", notes_l: "Notes",
    booking_n: "Booking #{id}", via: "Booked via {s}", status_l: "Status", timezone: "Times in {tz}",
    // leads
    leads_title: "Leads", leads_sub: "People who left their details, by stage, hottest first.",
    move_to: "Move to", leads_empty: "No leads.", lead_details: "Lead details", score_history: "Score history",
    // agents
    team_title: "Team", team_sub: "Who answers chats, and the replies they can insert with “/”.",
    invite: "Invite teammate", invite_title: "Invite a teammate", role: "Role", role_agent: "Agent — inbox and contacts",
    role_admin: "Admin — everything", invite_link: "Invite link", invite_link_hint: "Send this link to {name}. It works once and expires {t}.",
    new_link: "New invite link", deactivate: "Deactivate", deactivate_confirm: "Deactivate {name}?",
    deactivate_text: "They are signed out everywhere at once and can't sign in again.", last_seen: "Last seen {t}",
    never: "never", agents_empty: "No teammates yet.", you_tag: "you",
    canned_sub: "Type / and the shortcut in a reply to insert the text.", shortcut: "Shortcut", canned_text: "Text",
    add_canned: "Add saved reply", del_canned: "Delete /{s}?",
    // keys
    keys_title: "API keys", keys_sub: "Keys let your own software use the frontdesk API. Keep them secret.",
    new_key: "Create key", key_name: "Name", key_name_hint: "What uses it, e.g. Website booking form.",
    key_created: "Your new key", key_once: "Copy it now: it is shown only once.", revoke: "Revoke",
    revoke_confirm: "Revoke {name}?", revoke_text: "Anything using this key stops working at once.",
    revoked: "Revoked {t}", active: "Active", created: "Created {t}", last_used: "Last used {t}", keys_empty: "No keys.",
    // webhooks
    wh_title: "Webhooks", wh_sub: "Send events to your other systems, signed and retried until delivered.",
    add_endpoint: "Add endpoint", endpoint: "Endpoint", description: "Description", events: "Events",
    all_events: "All events", wh_enabled: "Enabled", wh_disabled: "Disabled", deliveries: "Delivery log",
    redeliver: "Redeliver", redelivered: "Queued for delivery again", attempts: "{n} attempts", secret: "Signing secret",
    reveal: "Reveal secret", rotate: "Rotate secret", rotated: "Secret rotated; the old one keeps signing for 24 hours.",
    del_endpoint: "Delete this endpoint?", wh_empty: "No endpoints yet.", del_empty: "No deliveries yet.",
    d_pending: "Pending", d_delivered: "Delivered", d_dead: "Failed", failing_since: "Failing since {t}",
    older: "Older", enable: "Enable", disable: "Disable", secret_once: "Shown now; you can reveal it again later.",
    // flows
    flows_title: "Flows", flows_sub: "Scripted conversations: qualify, collect details, book, route to a person.",
    new_flow: "New flow", flow_name: "Name", definition: "Definition (JSON)", validate: "Validate", valid: "The flow is valid",
    format: "Format", save_draft: "Save draft", dry_run: "Dry run", run: "Run", dry_messages: "Visitor messages, one per line",
    deploy: "Deploy", undeploy: "Stop on {c}", deployed: "Deployed version {v} to {c}", channels: "Channels",
    ch_widget: "Website widget", ch_api: "API channel", ch_rest: "REST", version: "v{v}", draft: "Draft",
    flows_empty: "No flows yet.", pick_flow: "Pick a flow or create one.", del_flow: "Delete this flow?",
    json_bad: "The definition is not valid JSON: {e}", effects: "Effects", transcript: "Transcript", flow_vars: "Variables",
    not_deployed: "Not deployed"
  };

  // ---------------------------------------------------------------- icons (24×24 strokes; "|" separates subpaths)
  const ICONS = {
    inbox: "M3.5 13h5l1.5 2.5h4l1.5-2.5h5|M6 5h12l2.5 8v5.5a1.5 1.5 0 0 1-1.5 1.5H5a1.5 1.5 0 0 1-1.5-1.5V13z",
    bot: "M5 10a2.5 2.5 0 0 1 2.5-2.5h9A2.5 2.5 0 0 1 19 10v6.5a2.5 2.5 0 0 1-2.5 2.5h-9A2.5 2.5 0 0 1 5 16.5z|M12 7.5V4.5|M9.5 13h.01|M14.5 13h.01|M2.5 12.5v3|M21.5 12.5v3",
    widget: "M3.5 6A1.5 1.5 0 0 1 5 4.5h14A1.5 1.5 0 0 1 20.5 6v12a1.5 1.5 0 0 1-1.5 1.5H5A1.5 1.5 0 0 1 3.5 18z|M3.5 8.5h17|M14.5 16a1.75 1.75 0 1 0 3.5 0a1.75 1.75 0 1 0-3.5 0",
    knowledge: "M3.5 5.5A1.5 1.5 0 0 1 5 4h5a2 2 0 0 1 2 2v14a1.5 1.5 0 0 0-1.5-1.5H5A1.5 1.5 0 0 1 3.5 17z|M20.5 5.5A1.5 1.5 0 0 0 19 4h-5a2 2 0 0 0-2 2v14a1.5 1.5 0 0 1 1.5-1.5H19a1.5 1.5 0 0 0 1.5-1.5z",
    bookings: "M5.5 5h13A1.5 1.5 0 0 1 20 6.5v12a1.5 1.5 0 0 1-1.5 1.5h-13A1.5 1.5 0 0 1 4 18.5v-12A1.5 1.5 0 0 1 5.5 5z|M4 10h16|M8.5 3v4|M15.5 3v4",
    leads: "M4 5h16l-6 7.5V18l-4 2v-7.5z",
    agents: "M9 11a3.5 3.5 0 1 0 0-7a3.5 3.5 0 1 0 0 7z|M2.5 20a6.5 6.5 0 0 1 13 0|M16 4.3a3.5 3.5 0 0 1 0 6.4|M18 14.2a6.5 6.5 0 0 1 3.5 5.8",
    keys: "M8 15.5a3.5 3.5 0 1 0 0-7a3.5 3.5 0 1 0 0 7z|M11.5 12H21|M18 12v3|M21 12v2.5",
    webhooks: "M10 14a4 4 0 0 0 5.7 0l3-3a4 4 0 0 0-5.7-5.7l-1 1|M14 10a4 4 0 0 0-5.7 0l-3 3a4 4 0 0 0 5.7 5.7l1-1",
    flows: "M4 4h5v5H4z|M15 15h5v5h-5z|M6.5 9v3.5A2.5 2.5 0 0 0 9 15h6",
    signout: "M14 4h4.5A1.5 1.5 0 0 1 20 5.5v13a1.5 1.5 0 0 1-1.5 1.5H14|M10 16l-4-4 4-4|M6 12h10",
    bell: "M6 16v-5a6 6 0 0 1 12 0v5l1.5 2h-15z|M10 20.5a2 2 0 0 0 4 0",
    belloff: "M6 16v-5a6 6 0 0 1 9.5-4.9|M18 11v5l1.5 2h-15|M10 20.5a2 2 0 0 0 4 0|M4 4l16 16",
    sound: "M4 9.5h3.5L12 5.5v13l-4.5-4H4z|M15.5 9a4 4 0 0 1 0 6|M18 6.5a7.5 7.5 0 0 1 0 11",
    mute: "M4 9.5h3.5L12 5.5v13l-4.5-4H4z|M16 9.5l5 5|M21 9.5l-5 5",
    search: "M11 18a7 7 0 1 0 0-14a7 7 0 1 0 0 14z|M20 20l-4-4",
    x: "M6.5 6.5l11 11|M17.5 6.5l-11 11",
    check: "M5 12.5l4.5 4.5L19 7.5",
    left: "M14.5 6l-6 6 6 6", right: "M9.5 6l6 6-6 6", down: "M6 9.5l6 6 6-6", up: "M6 14.5l6-6 6 6",
    plus: "M12 5v14|M5 12h14",
    trash: "M4.5 7h15|M9.5 7V4.5h5V7|M6.5 7l1 12.5h9l1-12.5",
    refresh: "M19.5 12a7.5 7.5 0 1 1-2.2-5.3|M19.5 4.5v4h-4",
    copy: "M8.5 8.5h11v11h-11z|M15.5 8.5v-4h-11v11h4",
    send: "M12 19V5.5|M6 11.5l6-6 6 6",
    note: "M6 4h9l4 4v12H6z|M14.5 4v4.5H19|M9 12.5h7|M9 16h5",
    user: "M12 12a4 4 0 1 0 0-8a4 4 0 1 0 0 8z|M4.5 20.5a7.5 7.5 0 0 1 15 0",
    mail: "M3.5 6h17v12h-17z|M3.5 6.5l8.5 6.5 8.5-6.5",
    phone: "M5 4h3.5l1.5 4.5-2 1.5a11 11 0 0 0 6 6l1.5-2 4.5 1.5V19a1.5 1.5 0 0 1-1.5 1.5A15.5 15.5 0 0 1 3.5 5.5 1.5 1.5 0 0 1 5 4z",
    clock: "M12 3a9 9 0 1 0 0 18a9 9 0 1 0 0-18z|M12 7.5V12l3 2",
    globe: "M12 3a9 9 0 1 0 0 18a9 9 0 1 0 0-18z|M3 12h18|M12 3c2.5 2.6 3.5 5.6 3.5 9s-1 6.4-3.5 9c-2.5-2.6-3.5-5.6-3.5-9s1-6.4 3.5-9z",
    text: "M5 6h14|M5 10h14|M5 14h10|M5 18h7",
    file: "M13.5 3H7a2 2 0 0 0-2 2v14a2 2 0 0 0 2 2h10a2 2 0 0 0 2-2V8.5z|M13.5 3v5.5H19",
    upload: "M12 15.5V4|M7.5 8.5L12 4l4.5 4.5|M4.5 15v3.5A1.5 1.5 0 0 0 6 20h12a1.5 1.5 0 0 0 1.5-1.5V15",
    headset: "M4 14v-2a8 8 0 0 1 16 0v2|M4 14h3v5H5.5A1.5 1.5 0 0 1 4 17.5z|M20 14h-3v5h1.5a1.5 1.5 0 0 0 1.5-1.5z",
    handback: "M9 14l-5-5 5-5|M4 9h10.5a5.5 5.5 0 0 1 0 11H11",
    done: "M12 3a9 9 0 1 0 0 18a9 9 0 1 0 0-18z|M8 12.5l2.7 2.7L16 10",
    panel: "M4 5h16v14H4z|M14.5 5v14",
    alert: "M12 4L2.8 19.5h18.4z|M12 10v4|M12 17h.01",
    info: "M12 3a9 9 0 1 0 0 18a9 9 0 1 0 0-18z|M12 11v5.5|M12 7.5h.01",
    play: "M8 5.5v13l10.5-6.5z",
    eye: "M2.5 12S6 5.5 12 5.5 21.5 12 21.5 12 18 18.5 12 18.5 2.5 12 2.5 12z|M12 15a3 3 0 1 0 0-6a3 3 0 1 0 0 6z",
    external: "M14 4h6v6|M20 4l-9 9|M18 14v4.5a1.5 1.5 0 0 1-1.5 1.5h-11A1.5 1.5 0 0 1 4 18.5v-11A1.5 1.5 0 0 1 5.5 6H10",
    chat: "M20 11.5a8 8 0 0 1-11.7 7.1L4 20l1.3-4A8 8 0 1 1 20 11.5z|M8.5 11.5h.01|M12 11.5h.01|M15.5 11.5h.01",
    help: "M12 3a9 9 0 1 0 0 18a9 9 0 1 0 0-18z|M9.6 9.2a2.5 2.5 0 1 1 3.4 2.3c-.6.3-1 .8-1 1.5v.5|M12 16.8h.01",
    calendar: "M5.5 5h13A1.5 1.5 0 0 1 20 6.5v12a1.5 1.5 0 0 1-1.5 1.5h-13A1.5 1.5 0 0 1 4 18.5v-12A1.5 1.5 0 0 1 5.5 5z|M4 10h16|M8.5 3v4|M15.5 3v4",
    tooth: "M8 3.5C5.3 3.5 4 5.6 4 8c0 2.6 1.3 4 1.8 6.4.5 2.6.9 6.1 2.5 6.1 1.8 0 1.6-4.6 3.7-4.6s1.9 4.6 3.7 4.6c1.6 0 2-3.5 2.5-6.1.5-2.4 1.8-3.8 1.8-6.4 0-2.4-1.3-4.5-4-4.5-1.8 0-2.7 1-4 1s-2.2-1-4-1z",
    more: "M5.5 12h.01|M12 12h.01|M18.5 12h.01",
    fire: "M12 21a6 6 0 0 0 6-6c0-3.5-2.5-5.5-3.5-8.5-1 2-2 3-3.5 3.5C11 8 10.5 5.5 9 3.5 8.5 7 6 9.5 6 15a6 6 0 0 0 6 6z"
  };

  // ---------------------------------------------------------------- DOM helpers
  const PROPS = new Set(["value", "checked", "disabled", "hidden", "selected", "required", "readOnly", "multiple",
    "type", "min", "max", "step", "maxLength", "rows", "placeholder", "name", "id", "href", "src", "title", "tabIndex",
    "spellcheck", "open", "accept", "draggable"]);
  function h(tag, a, ...kids) {
    const e = D.createElement(tag);
    if (a) {
      for (const k of Object.keys(a)) {
        const v = a[k];
        if (v == null || (v === false && !PROPS.has(k))) continue;
        if (k === "class") e.className = v;
        else if (k === "text") e.textContent = v;
        else if (k === "data") { for (const d of Object.keys(v)) if (v[d] != null) e.dataset[d] = v[d]; }
        else if (k.slice(0, 2) === "on" && typeof v === "function") e.addEventListener(k.slice(2), v);
        else if (PROPS.has(k)) e[k] = v;
        else e.setAttribute(k, v === true ? "" : String(v));
      }
    }
    return add(e, kids);
  }
  function add(e, kids) {
    for (const k of kids) {
      if (k == null || k === false) continue;
      if (Array.isArray(k)) add(e, k);
      else e.appendChild(typeof k === "object" ? k : D.createTextNode(String(k)));
    }
    return e;
  }
  function icon(name, cls) {
    const s = D.createElementNS(SVG, "svg");
    s.setAttribute("viewBox", "0 0 24 24");
    s.setAttribute("aria-hidden", "true");
    s.setAttribute("focusable", "false");
    s.setAttribute("class", "fc-icon" + (cls ? " " + cls : ""));
    for (const d of (ICONS[name] || ICONS.info).split("|")) {
      const p = D.createElementNS(SVG, "path");
      p.setAttribute("d", d);
      s.appendChild(p);
    }
    return s;
  }
  function clear(e) { while (e && e.firstChild) e.removeChild(e.firstChild); return e; }
  function fmt(s, v) { return String(s).replace(/\{(\w+)\}/g, (m, k) => (v && v[k] != null ? v[k] : m)); }
  const str = (v) => (typeof v === "string" ? v : v == null ? "" : String(v));
  let uidN = 0;
  const uid = (p) => (p || "fc") + "-" + (++uidN);
  function esc(s) { return s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&"); }
  function uuid() {
    const c = W.crypto;
    if (c && c.randomUUID) return c.randomUUID();
    const b = new Uint8Array(16);
    c.getRandomValues(b);
    b[6] = (b[6] & 15) | 64; b[8] = (b[8] & 63) | 128;
    const x = Array.from(b, (n) => (n + 256).toString(16).slice(1)).join("");
    return x.slice(0, 8) + "-" + x.slice(8, 12) + "-" + x.slice(12, 16) + "-" + x.slice(16, 20) + "-" + x.slice(20);
  }
  function debounce(fn, ms) {
    let t = 0;
    return (...a) => { clearTimeout(t); t = setTimeout(() => fn(...a), ms); };
  }
  function clone(v) { return v == null ? v : JSON.parse(JSON.stringify(v)); }

  // Buttons: kind is "primary", "secondary" (default), "ghost", "danger"; label may be null for
  // an icon-only button (then aria is the accessible name).
  function button(label, o) {
    o = o || {};
    const b = h("button", {
      type: o.type || "button", class: "fc-btn fc-btn-" + (o.kind || "secondary") + (o.size ? " fc-btn-" + o.size : "") +
        (label == null ? " fc-btn-icon" : "") + (o.cls ? " " + o.cls : ""),
      "aria-label": o.aria || null, title: o.title || (label == null ? o.aria : null), disabled: !!o.disabled,
      onclick: o.onclick || null
    }, o.icon && icon(o.icon), label != null && h("span", { class: "fc-btn-label" }, label));
    return b;
  }
  // Runs an async action from a button: disabled and busy meanwhile, errors toasted unless handled.
  async function busy(btn, fn, label) {
    if (btn.disabled) return;
    const lab = btn.querySelector(".fc-btn-label"), was = lab && lab.textContent;
    btn.disabled = true;
    btn.setAttribute("aria-busy", "true");
    if (label && lab) lab.textContent = label;
    try { return await fn(); }
    finally {
      if (btn.isConnected || true) {
        btn.disabled = false;
        btn.removeAttribute("aria-busy");
        if (label && lab) lab.textContent = was;
      }
    }
  }

  // ---------------------------------------------------------------- time
  const MIN = 60000, HOUR = 3600000, DAY = 86400000;
  const tfmt = new Intl.DateTimeFormat(undefined, { hour: "numeric", minute: "2-digit" });
  const dfmt = new Intl.DateTimeFormat(undefined, { weekday: "short", day: "numeric", month: "short" });
  const dyfmt = new Intl.DateTimeFormat(undefined, { day: "numeric", month: "short", year: "numeric" });
  const clock = (ms) => tfmt.format(new Date(ms));
  function dayKey(ms) { const d = new Date(ms); return d.getFullYear() + "-" + d.getMonth() + "-" + d.getDate(); }
  function dayLabel(ms) {
    const now = Date.now();
    if (dayKey(ms) === dayKey(now)) return T.today;
    if (dayKey(ms) === dayKey(now - DAY)) return T.yesterday;
    return (Math.abs(now - ms) > 300 * DAY ? dyfmt : dfmt).format(new Date(ms));
  }
  // Compact "when" for lists: 14:05 today, Yesterday, Tue, 3 Dec.
  function when(ms) {
    if (!ms) return "";
    const now = Date.now();
    if (dayKey(ms) === dayKey(now)) return clock(ms);
    if (dayKey(ms) === dayKey(now - DAY)) return T.yesterday;
    if (now - ms < 6 * DAY) return new Intl.DateTimeFormat(undefined, { weekday: "short" }).format(new Date(ms));
    return (now - ms > 300 * DAY ? dyfmt : new Intl.DateTimeFormat(undefined, { day: "numeric", month: "short" })).format(new Date(ms));
  }
  function dur(ms) {
    ms = Math.max(0, ms);
    if (ms < MIN) return Math.max(1, Math.floor(ms / 1000)) + " s";
    if (ms < HOUR) return Math.floor(ms / MIN) + " min";
    if (ms < DAY) { const hh = Math.floor(ms / HOUR), mm = Math.floor((ms % HOUR) / MIN); return hh + " h" + (mm ? " " + mm + " min" : ""); }
    return Math.floor(ms / DAY) + " d";
  }
  function ago(ms) { return ms ? (Date.now() - ms < MIN ? "just now" : dur(Date.now() - ms) + " ago") : T.never; }
  const full = (ms) => (ms ? new Date(ms).toLocaleString() : "");

  // ---------------------------------------------------------------- safe Markdown subset (as the widget's)
  function safeHref(url) {
    let u;
    try { u = new URL(url, location.href); } catch (e) { return null; }
    return /^(https?|mailto|tel):$/.test(u.protocol) ? u.href : null;
  }
  function extLink(href, label) {
    return h("a", { href, target: "_blank", rel: "noopener noreferrer" }, label);
  }
  function inline(parent, text) {
    const re = /\*\*(?=\S)([\s\S]*?\S)\*\*|\[([^\]\n]+)\]\(([^()\s]+)\)|\b((?:https?:\/\/|mailto:|tel:)[^\s<>"]+)|([\w.+-]+@[a-z0-9-]+(?:\.[a-z0-9-]+)*\.[a-z]{2,})/gi;
    let last = 0, m;
    while ((m = re.exec(text))) {
      if (m.index > last) parent.appendChild(D.createTextNode(text.slice(last, m.index)));
      let tail = "";
      if (m[1] != null) inline(parent.appendChild(h("strong")), m[1]);
      else if (m[2] != null) { const href = safeHref(m[3]); parent.appendChild(href ? extLink(href, m[2]) : D.createTextNode(m[0])); }
      else if (m[4] != null) {
        let url = m[4].replace(/[.,;:!?'"\]]+$/, "");
        while (/\)$/.test(url) && url.split("(").length < url.split(")").length) url = url.slice(0, -1);
        tail = m[4].slice(url.length);
        const safe = safeHref(url);
        parent.appendChild(safe ? extLink(safe, url) : D.createTextNode(url));
      } else parent.appendChild(extLink("mailto:" + m[5], m[5]));
      if (tail) parent.appendChild(D.createTextNode(tail));
      last = re.lastIndex;
    }
    if (last < text.length) parent.appendChild(D.createTextNode(text.slice(last)));
  }
  function markdown(target, src) {
    clear(target);
    let para = null, list = null, kind = "";
    String(src).replace(/\r\n?/g, "\n").split("\n").forEach((line) => {
      const m = /^\s*([-*•]|\d{1,3}[.)])\s+(.*)$/.exec(line);
      if (m) {
        const type = /\d/.test(m[1]) ? "ol" : "ul";
        if (!list || kind !== type) {
          list = target.appendChild(h(type));
          kind = type;
          if (type === "ol" && parseInt(m[1], 10) > 1) list.start = parseInt(m[1], 10);
        }
        inline(list.appendChild(h("li")), m[2]);
        para = null;
        return;
      }
      list = null;
      if (!line.trim()) { para = null; return; }
      if (para) para.appendChild(h("br"));
      else para = target.appendChild(h("p"));
      inline(para, line);
    });
  }

  // ---------------------------------------------------------------- avatars
  const HUES = ["#D1FADF:#05603A", "#D1E9FF:#1849A9", "#FCE7F6:#9E165F", "#FEF0C7:#93370D", "#EBE9FE:#4A1FB8",
    "#CCFBEF:#125D56", "#FFE4E8:#A11043", "#E0F2FE:#065986"];
  function initials(name) {
    const parts = str(name).trim().split(/\s+/).filter(Boolean);
    if (!parts.length) return "?";
    const a = parts[0].charAt(0), b = parts.length > 1 ? parts[parts.length - 1].charAt(0) : "";
    return (a + b).toUpperCase();
  }
  function avatar(name, seed, cls) {
    let n = 0;
    for (const ch of str(seed || name)) n = (n * 31 + ch.charCodeAt(0)) >>> 0;
    const [bg, fg] = HUES[n % HUES.length].split(":");
    const e = h("span", { class: "fc-avatar" + (cls ? " " + cls : ""), "aria-hidden": "true" }, initials(name));
    e.style.background = bg;
    e.style.color = fg;
    return e;
  }

  // ---------------------------------------------------------------- state
  const S = {
    me: null, workspace: null, csrf: "", expires: 0, role: "agent",
    bots: [], agents: [], canned: null, cannedAt: 0,
    convs: new Map(), // id → inbox item (every conversation we know of)
    page: null, cleanup: null, dirty: null, after: null,
    sound: localStorage.getItem("fc:sound") !== "off", presence: "online"
  };
  const isAdmin = () => S.role === "admin";

  // ---------------------------------------------------------------- API
  class ApiError extends Error {
    constructor(status, message, body) { super(message); this.status = status; this.body = body || {}; }
  }
  async function api(method, path, body, opt) {
    opt = opt || {};
    const init = { method, credentials: "same-origin", headers: { Accept: "application/json" } };
    if (method !== "GET" && method !== "HEAD") init.headers["X-CSRF-Token"] = S.csrf;
    if (body instanceof FormData) init.body = body;
    else if (body !== undefined) { init.headers["Content-Type"] = "application/json"; init.body = JSON.stringify(body); }
    let r;
    try { r = await fetch(path, init); } catch (e) { throw new ApiError(0, T.network); }
    let data = null;
    if (r.status !== 204) {
      const text = await r.text().catch(() => "");
      try { data = text ? JSON.parse(text) : null; } catch (e) { data = { error: text.slice(0, 300) }; }
    }
    if (r.ok) return data;
    const b = data && typeof data === "object" ? data : {};
    let msg = str(b.error) || r.statusText || "HTTP " + r.status;
    if (b.code === "rate_limited" || r.status === 429) msg = fmt(T.rate_limited, { s: b.retry_after || r.headers.get("Retry-After") || 1 });
    else if (b.code === "csrf") msg = T.csrf;
    const err = new ApiError(r.status, msg, b);
    if (r.status === 401 && !opt.auth) signedOut(T.session_ended);
    throw err;
  }
  const GET = (p) => api("GET", p);
  const q = (o) => {
    const u = new URLSearchParams();
    for (const k of Object.keys(o)) if (o[k] != null && o[k] !== "") u.set(k, o[k]);
    const s = u.toString();
    return s ? "?" + s : "";
  };

  // ---------------------------------------------------------------- toasts
  let toasts = null;
  function toast(msg, kind) {
    kind = kind || "error";
    if (!toasts || !toasts.isConnected) { toasts = h("div", { class: "fc-toasts" }); D.body.appendChild(toasts); }
    const t = h("div", { class: "fc-toast fc-toast-" + kind, role: kind === "error" ? "alert" : "status" },
      icon(kind === "error" ? "alert" : kind === "ok" ? "check" : "info"), h("div", { class: "fc-toast-text" }, str(msg)));
    const x = button(null, { kind: "ghost", size: "sm", icon: "x", aria: T.close, onclick: () => t.remove() });
    t.appendChild(x);
    toasts.appendChild(t);
    while (toasts.children.length > 4) toasts.firstChild.remove();
    setTimeout(() => { t.classList.add("fc-toast-out"); setTimeout(() => t.remove(), 250); }, kind === "error" ? 8000 : 4000);
    return t;
  }
  function fail(e) { if (e && e.status !== 401) toast(e && e.message ? e.message : String(e)); }

  // ---------------------------------------------------------------- dialogs
  function dialog(o) {
    const d = h("dialog", { class: "fc-dialog" + (o.wide ? " fc-dialog-wide" : ""), "aria-labelledby": uid("dlg") });
    const titleId = d.getAttribute("aria-labelledby");
    const head = h("div", { class: "fc-dialog-head" }, h("h2", { id: titleId, class: "fc-dialog-title" }, o.title),
      button(null, { kind: "ghost", icon: "x", aria: T.close, onclick: () => close() }));
    const bodyEl = h("div", { class: "fc-dialog-body" }, o.body);
    const foot = o.actions ? h("div", { class: "fc-dialog-foot" }, o.actions) : null;
    const content = o.form ? h("form", { class: "fc-dialog-form " + (o.formClass || ""), novalidate: true }, head, bodyEl, foot) : h("div", null, head, bodyEl, foot);
    d.appendChild(content);
    D.body.appendChild(d);
    let closed = false;
    function close(v) {
      if (closed) return;
      closed = true;
      if (d.open) d.close();
      d.remove();
      if (o.onclose) o.onclose(v);
    }
    d.addEventListener("close", () => close());
    d.addEventListener("click", (e) => { if (e.target === d) close(); });
    if (o.form && o.onsubmit) content.addEventListener("submit", (e) => { e.preventDefault(); o.onsubmit(e, close); });
    d.showModal();
    const first = d.querySelector("[autofocus]") || d.querySelector(".fc-dialog-body input, .fc-dialog-body textarea, .fc-dialog-body select");
    if (first) first.focus();
    return { el: d, form: o.form ? content : null, close, body: bodyEl };
  }
  function confirmDialog(title, text, ok, danger) {
    return new Promise((resolve) => {
      let result = false;
      const yes = button(ok || T.confirm, { kind: danger ? "danger" : "primary", onclick: () => { result = true; dlg.close(); } });
      const dlg = dialog({
        title, body: h("p", { class: "fc-dialog-text" }, text),
        actions: [button(T.cancel, { onclick: () => dlg.close() }), yes], onclose: () => resolve(result)
      });
      yes.focus();
    });
  }

  // ---------------------------------------------------------------- forms and field errors
  function field(label, control, o) {
    o = o || {};
    control.id = control.id || uid("f");
    const hint = o.hint ? h("div", { class: "fc-hint", id: control.id + "-hint" }, o.hint) : null;
    if (hint) control.setAttribute("aria-describedby", hint.id);
    return h("div", { class: "fc-field" + (o.cls ? " " + o.cls : "") },
      h("label", { class: "fc-label", for: control.id }, label, o.optional && h("span", { class: "fc-optional" }, " · " + T.optional)),
      o.wrap ? o.wrap(control) : control, hint);
  }
  function input(name, value, a) { return h("input", Object.assign({ class: "fc-input", type: "text", name, value: str(value) }, a || {})); }
  function textarea(name, value, a) { return h("textarea", Object.assign({ class: "fc-input fc-textarea", name, rows: 3 }, a || {}), str(value)); }
  function select(name, options, value, a) {
    const s = h("select", Object.assign({ class: "fc-input fc-select", name }, a || {}));
    for (const [v, l] of options) s.appendChild(h("option", { value: String(v), selected: String(v) === String(value == null ? "" : value) }, l));
    return s;
  }
  function toggle(name, checked, label, a) {
    const i = h("input", Object.assign({ type: "checkbox", class: "fc-switch-input", name, checked: !!checked }, a || {}));
    i.id = i.id || uid("t");
    return h("label", { class: "fc-switch", for: i.id }, i, h("span", { class: "fc-switch-track", "aria-hidden": "true" }), h("span", { class: "fc-switch-label" }, label));
  }
  function clearErrors(root) {
    if (!root) return;
    root.querySelectorAll(".fc-field-error").forEach((e) => e.remove());
    root.querySelectorAll("[aria-invalid]").forEach((e) => {
      e.removeAttribute("aria-invalid");
      const ids = (e.getAttribute("aria-describedby") || "").split(" ").filter((x) => !/-err$/.test(x));
      if (ids.length) e.setAttribute("aria-describedby", ids.join(" ")); else e.removeAttribute("aria-describedby");
    });
  }
  // The control a server error names: the longest data-field (or name) that appears in the message
  // as a whole token ("settings.widget.primary_color must be…", "invalid field `customer.name`…",
  // "name must be 1 to 200 characters").
  function fieldFor(root, msg) {
    let best = null, len = 0;
    for (const f of root.querySelectorAll("[data-field],[name]")) {
      if (f.type === "hidden") continue;
      for (const p of (f.dataset.field || f.name || "").split(" ")) {
        if (!p || p.length <= len) continue;
        if (new RegExp("(^|[\\s`'\"(])" + esc(p) + "($|[\\s`'\".,:;)\\[])").test(msg)) { best = f; len = p.length; }
      }
    }
    return best;
  }
  function markField(f, msg) {
    const wrap = f.closest(".fc-field, .fc-row, .fc-field-inline") || f.parentNode;
    const old = wrap.querySelector(":scope > .fc-field-error");
    if (old) old.remove();
    const id = (f.id || (f.id = uid("f"))) + "-err";
    wrap.appendChild(h("div", { class: "fc-field-error", id, role: "alert" }, icon("alert"), h("span", null, msg)));
    f.setAttribute("aria-invalid", "true");
    const ids = (f.getAttribute("aria-describedby") || "").split(" ").filter(Boolean);
    if (ids.indexOf(id) < 0) ids.push(id);
    f.setAttribute("aria-describedby", ids.join(" "));
  }
  // Shows an error next to the field it names, else as a toast. True when a field took it.
  function showError(root, e) {
    if (!e || e.status === 401) return false;
    clearErrors(root);
    const f = root && e.message ? fieldFor(root, e.message) : null;
    if (f) {
      markField(f, e.message);
      const det = f.closest("details");
      if (det) det.open = true;
      f.focus({ preventScroll: false });
      return true;
    }
    toast(e.message);
    return false;
  }

  // ---------------------------------------------------------------- clipboard
  async function copyText(text) {
    try { await navigator.clipboard.writeText(text); toast(T.copied, "ok"); }
    catch (e) {
      const ta = h("textarea", { class: "fc-offscreen" }, text);
      D.body.appendChild(ta);
      ta.select();
      let ok = false;
      try { ok = D.execCommand("copy"); } catch (x) { ok = false; }
      ta.remove();
      toast(ok ? T.copied : T.copy_failed, ok ? "ok" : "error");
    }
  }
  function secretBox(value, cls) {
    return h("div", { class: "fc-secret" }, h("code", { class: cls || "fc-secret-value", tabIndex: 0 }, value),
      button(T.copy, { icon: "copy", size: "sm", onclick: () => copyText(value) }));
  }

  // ---------------------------------------------------------------- pages and routes
  const PAGES = {
    inbox: { path: "/console/inbox", icon: "inbox", label: T.p_inbox },
    bookings: { path: "/console/bookings", icon: "bookings", label: T.p_bookings, admin: true },
    leads: { path: "/console/leads", icon: "leads", label: T.p_leads, admin: true },
    bot: { path: "/console/settings/bot", icon: "bot", label: T.p_bot, admin: true },
    widget: { path: "/console/settings/widget", icon: "widget", label: T.p_widget, admin: true },
    knowledge: { path: "/console/knowledge", icon: "knowledge", label: T.p_knowledge, admin: true },
    flows: { path: "/console/flows", icon: "flows", label: T.p_flows, admin: true },
    agents: { path: "/console/agents", icon: "agents", label: T.p_agents, admin: true },
    keys: { path: "/console/keys", icon: "keys", label: T.p_keys, admin: true },
    webhooks: { path: "/console/webhooks", icon: "webhooks", label: T.p_webhooks, admin: true }
  };
  function parseRoute(path) {
    path = path.replace(/\/+$/, "") || "/";
    if (path === "/console" || path === "/console/inbox") return { page: "inbox" };
    let m = /^\/console\/c\/([^/]+)$/.exec(path);
    if (m) return { page: "inbox", id: decodeURIComponent(m[1]) };
    for (const k of Object.keys(PAGES)) if (PAGES[k].path === path) return { page: k };
    if (path === "/console/set-password") return { page: "set-password" };
    if (path === "/console/sign-in") return { page: "sign-in" };
    return { page: "missing" };
  }
  function go(path, replace) {
    if (path === location.pathname + location.search) return route();
    if (S.dirty && !W.confirm(T.leave_unsaved)) return;
    S.dirty = null;
    history[replace ? "replaceState" : "pushState"](null, "", path);
    route();
  }
  // Same-origin /console links navigate in place (Ctrl/Cmd-click still opens a tab).
  D.addEventListener("click", (e) => {
    const a = e.target.closest && e.target.closest("a[href]");
    if (!a || e.defaultPrevented || e.button !== 0 || e.metaKey || e.ctrlKey || e.shiftKey || e.altKey || a.target) return;
    const u = new URL(a.href, location.href);
    if (u.origin !== location.origin || !/^\/console(\/|$)/.test(u.pathname) || /^\/console\/(assets|preview)\//.test(u.pathname)) return;
    e.preventDefault();
    go(u.pathname + u.search);
  });
  W.addEventListener("popstate", () => {
    if (S.dirty && !W.confirm(T.leave_unsaved)) { history.pushState(null, "", S.dirtyPath || location.pathname); return; }
    S.dirty = null;
    route();
  });
  W.addEventListener("beforeunload", (e) => { if (S.dirty) { e.preventDefault(); e.returnValue = ""; } });

  let root = null, shell = null;
  function route() {
    const r = parseRoute(location.pathname);
    if (r.page === "set-password") return renderSetPassword();
    if (!S.me) return r.page === "sign-in" ? renderSignIn() : boot();
    if (r.page === "sign-in") return go("/console/inbox", true);
    if (!shell || !shell.el.isConnected) buildShell();
    const same = S.page === r.page && r.page === "inbox" && S.cleanup;
    if (!same) {
      if (S.cleanup) { try { S.cleanup(); } catch (e) { /* a page's cleanup must not stop navigation */ } }
      S.cleanup = null;
    }
    S.page = r.page;
    S.dirtyPath = location.pathname;
    shell.nav.querySelectorAll("a[data-page]").forEach((a) => {
      if (a.dataset.page === r.page) a.setAttribute("aria-current", "page"); else a.removeAttribute("aria-current");
    });
    const main = shell.main;
    if (r.page === "missing") return page(main, T.not_found, () => emptyState("alert", T.not_found, null, h("a", { class: "fc-btn fc-btn-secondary", href: "/console/inbox" }, T.back_inbox)));
    const def = PAGES[r.page];
    setTitle(def.label);
    if (def.admin && !isAdmin()) return noAccess(main);
    if (r.page === "inbox") {
      if (same && S.inboxView) return S.inboxView.open(r.id || null);
      clear(main);
      S.cleanup = renderInbox(main, r.id || null);
      return;
    }
    clear(main);
    main.scrollTop = 0;
    S.cleanup = RENDER[r.page](main) || null;
  }
  function setTitle(label) {
    S.titleLabel = label;
    const n = queuedCount();
    D.title = (n ? "(" + n + ") " : "") + fmt(T.console_title, { page: label });
  }
  function page(main, title, body) {
    clear(main);
    main.appendChild(h("div", { class: "fc-page" }, body()));
  }
  function emptyState(ic, title, text, action) {
    return h("div", { class: "fc-empty" }, h("div", { class: "fc-empty-icon" }, icon(ic)), h("h2", { class: "fc-empty-title" }, title),
      text && h("p", { class: "fc-empty-text" }, text), action);
  }
  function noAccess(main) {
    clear(main);
    main.appendChild(h("div", { class: "fc-page fc-no-access", role: "alert" },
      emptyState("alert", T.no_access_title, fmt(T.no_access, { ws: (S.workspace && S.workspace.name) || "" }),
        h("a", { class: "fc-btn fc-btn-secondary", href: "/console/inbox" }, T.back_inbox))));
  }
  // A page's header: title, subtitle, and actions on the right.
  function pageHead(title, sub, actions) {
    return h("header", { class: "fc-page-head" },
      h("div", { class: "fc-page-titles" }, h("h1", { class: "fc-page-title" }, title), sub && h("p", { class: "fc-page-sub" }, sub)),
      actions && h("div", { class: "fc-page-actions" }, actions));
  }
  // Loads data for a page, showing a spinner, then the page, or the error with a retry.
  function loadInto(container, load, render) {
    clear(container);
    container.appendChild(h("div", { class: "fc-loading", role: "status" }, h("span", { class: "fc-spinner" }), T.loading));
    return load().then((data) => { clear(container); render(data); }).catch((e) => {
      if (e && e.status === 401) return;
      clear(container);
      if (e && e.status === 403) {
        container.appendChild(emptyState("alert", T.no_access_title, fmt(T.forbidden, { e: e.message })));
        return;
      }
      container.appendChild(emptyState("alert", fmt(T.load_failed, { e: e && e.message }), null,
        button(T.retry, { icon: "refresh", onclick: () => loadInto(container, load, render) })));
    });
  }

  // ---------------------------------------------------------------- session
  function rootEl() {
    root = D.getElementById("fc-root");
    if (!root) { root = h("div", { id: "fc-root", class: "fc-root" }); D.body.appendChild(root); }
    root.removeAttribute("aria-busy");
    return root;
  }
  let booting = null;
  function boot() {
    if (booting) return booting;
    booting = api("GET", "/api/auth/session", undefined, { auth: true }).then((s) => {
      booting = null;
      signedIn(s);
    }).catch((e) => {
      booting = null;
      if (e.status === 401) {
        const p = location.pathname + location.search;
        if (p !== "/console/sign-in") S.after = p;
        history.replaceState(null, "", "/console/sign-in");
        renderSignIn();
      } else {
        clear(rootEl()).appendChild(h("div", { class: "fc-auth" }, h("div", { class: "fc-auth-card" },
          emptyState("alert", T.network, e.message, button(T.retry, { kind: "primary", icon: "refresh", onclick: () => boot() })))));
      }
    });
    return booting;
  }
  let expiryTimer = 0;
  function signedIn(s) {
    S.me = s.agent;
    S.role = s.agent && s.agent.role === "admin" ? "admin" : "agent";
    S.workspace = s.workspace || {};
    S.csrf = s.csrf_token || "";
    S.expires = s.expires_at || 0;
    clearTimeout(expiryTimer);
    if (S.expires) {
      // Asks once the session should have ended: a renewed one keeps the console going.
      expiryTimer = setTimeout(checkSession, Math.min(Math.max(S.expires - Date.now() + 1000, 5000), 2147000000));
    }
    shell = null;
    buildShell();
    Sock.start();
    GET("/api/bots").then((r) => { S.bots = (r && r.data) || []; onBots(); }).catch(() => {});
    loadAgents();
    const to = S.after && S.after !== "/console/sign-in" ? S.after : location.pathname === "/console/sign-in" ? "/console/inbox" : null;
    S.after = null;
    if (to) history.replaceState(null, "", to);
    route();
  }
  function loadAgents() {
    return GET("/api/agents").then((r) => { S.agents = (r && r.agents) || []; onAgents(); }).catch(() => {});
  }
  const botListeners = [], agentListeners = [];
  function onBots() { botListeners.forEach((f) => f()); }
  function onAgents() { agentListeners.forEach((f) => f()); }
  function checkSession() {
    return api("GET", "/api/auth/session").then((s) => {
      if (s && s.csrf_token) S.csrf = s.csrf_token;
      if (s && s.agent && s.agent.role !== S.me.role) { S.me = s.agent; S.role = s.agent.role === "admin" ? "admin" : "agent"; buildShell(); route(); }
      if (s && s.expires_at) { S.expires = s.expires_at; clearTimeout(expiryTimer); expiryTimer = setTimeout(checkSession, Math.min(Math.max(S.expires - Date.now() + 1000, 5000), 2147000000)); }
      return true;
    }).catch(() => false);
  }
  function signedOut(msg) {
    if (!S.me) return;
    S.me = null;
    S.csrf = "";
    S.convs.clear();
    S.canned = null;
    S.dirty = null;
    Sock.stop();
    if (S.cleanup) { try { S.cleanup(); } catch (e) { /* ignore */ } }
    S.cleanup = null;
    S.page = null;
    S.inboxView = null;
    shell = null;
    clearTimeout(expiryTimer);
    const p = location.pathname + location.search;
    if (!/^\/console\/(sign-in|set-password)/.test(p)) S.after = p;
    history.replaceState(null, "", "/console/sign-in");
    renderSignIn(msg);
  }
  async function signOut() {
    try { await api("POST", "/api/auth/sign-out", undefined, { auth: true }); } catch (e) { /* signed out either way */ }
    S.after = null;
    signedOut(T.signed_out);
    S.after = null;
  }

  // ---------------------------------------------------------------- sign-in and set-password
  function authFrame(title, sub, content) {
    const r = clear(rootEl());
    D.title = title + " · frontdesk";
    r.appendChild(h("main", { class: "fc-auth" },
      h("div", { class: "fc-auth-card" },
        h("div", { class: "fc-auth-brand" }, h("span", { class: "fc-logo" }, icon("tooth")), h("span", { class: "fc-wordmark" }, T.app)),
        h("h1", { class: "fc-auth-title" }, title), h("p", { class: "fc-auth-sub" }, sub), content)));
  }
  function renderSignIn(msg) {
    const err = h("div", { class: "fc-error", role: "alert", hidden: true });
    const info = h("div", { class: "fc-auth-info", role: "status", hidden: !msg }, msg || "");
    const email = input("email", "", { type: "email", autocomplete: "username", required: true, spellcheck: false });
    const pw = input("password", "", { type: "password", autocomplete: "current-password", required: true });
    const submit = button(T.signin, { kind: "primary", type: "submit", cls: "fc-btn-block" });
    let wait = 0;
    const form = h("form", { class: "fc-signin", novalidate: true }, info,
      field(T.email, email), field(T.password, pw), err, submit);
    form.addEventListener("submit", async (e) => {
      e.preventDefault();
      if (wait) return;
      err.hidden = true;
      info.hidden = true;
      if (!email.value.trim() || !pw.value) {
        err.textContent = "Enter your email and password.";
        err.hidden = false;
        (email.value.trim() ? pw : email).focus();
        return;
      }
      await busy(submit, async () => {
        try {
          const s = await api("POST", "/api/auth/sign-in", { email: email.value.trim(), password: pw.value }, { auth: true });
          signedIn(s);
        } catch (x) {
          err.textContent = x.message;
          err.hidden = false;
          pw.value = "";
          pw.focus();
          const retry = x.body && x.body.retry_after;
          if (x.status === 429 && retry) countdown(retry);
        }
      }, T.signing_in);
    });
    function countdown(s) {
      wait = s;
      submit.disabled = true;
      const tick = () => {
        if (!submit.isConnected) return;
        if (wait <= 0) { submit.disabled = false; wait = 0; err.hidden = true; return; }
        err.textContent = fmt(T.signin_rate, { s: wait });
        wait--;
        setTimeout(tick, 1000);
      };
      tick();
    }
    authFrame(T.signin_title, T.signin_sub, form);
    (email.value ? pw : email).focus();
  }
  function renderSetPassword() {
    const token = new URLSearchParams(location.search).get("token") || "";
    const err = h("div", { class: "fc-error", role: "alert", hidden: true });
    const pw = input("password", "", { type: "password", autocomplete: "new-password", required: true, minLength: 10 });
    const pw2 = input("password_repeat", "", { type: "password", autocomplete: "new-password", required: true });
    const submit = button(T.setpw_button, { kind: "primary", type: "submit", cls: "fc-btn-block", disabled: !token });
    const form = h("form", { class: "fc-set-password", novalidate: true },
      field(T.new_password, pw, { hint: T.setpw_hint }), field(T.repeat_password, pw2), err, submit);
    if (!token) { err.textContent = T.setpw_notoken; err.hidden = false; }
    form.addEventListener("submit", async (e) => {
      e.preventDefault();
      clearErrors(form);
      err.hidden = true;
      if (pw.value.length < 10) return markField(pw, T.setpw_short), pw.focus();
      if (pw.value !== pw2.value) return markField(pw2, T.setpw_mismatch), pw2.focus();
      await busy(submit, async () => {
        try {
          const s = await api("POST", "/api/auth/password", { token, password: pw.value }, { auth: true });
          history.replaceState(null, "", "/console/inbox");
          signedIn(s);
        } catch (x) {
          if (x.status === 422) { markField(pw, x.message); pw.focus(); return; }
          err.textContent = x.status === 400 || x.status === 410 ? fmt(T.setpw_bad, { e: x.message.replace(/\.$/, "") }) : x.message;
          err.hidden = false;
        }
      });
    });
    authFrame(T.setpw_title, T.setpw_sub, form);
    if (token) pw.focus();
  }

  // ---------------------------------------------------------------- the shell
  function buildShell() {
    const r = clear(rootEl());
    const me = S.me || {};
    const nav = h("nav", { class: "fc-nav", "aria-label": T.nav_main });
    const list = h("ul", { class: "fc-nav-list" });
    const adminList = h("ul", { class: "fc-nav-list" });
    for (const k of Object.keys(PAGES)) {
      const p = PAGES[k];
      if (p.admin && !isAdmin()) continue;
      const a = h("a", { class: "fc-nav-link", href: p.path, data: { page: k }, title: p.label },
        icon(p.icon), h("span", { class: "fc-nav-label" }, p.label));
      if (k === "inbox") a.appendChild(h("span", { class: "fc-nav-badge", hidden: true, "aria-label": "" }));
      (k === "inbox" || k === "bookings" || k === "leads" ? list : adminList).appendChild(h("li", null, a));
    }
    nav.appendChild(list);
    if (adminList.children.length) nav.append(h("div", { class: "fc-nav-sep", role: "presentation" }), h("div", { class: "fc-nav-group", "aria-hidden": "true" }, T.nav_admin), adminList);

    const status = h("div", { class: "fc-status", role: "status", data: { state: "connecting" } }, h("span", { class: "fc-status-dot" }), h("span", { class: "fc-status-text" }, T.connecting));
    const alerts = h("button", { type: "button", class: "fc-btn fc-btn-ghost fc-alerts" });
    const soundBtn = h("button", { type: "button", class: "fc-btn fc-btn-ghost fc-btn-icon fc-sound" });
    const presence = h("button", { type: "button", class: "fc-presence" }, h("span", { class: "fc-presence-dot" }), h("span", { class: "fc-presence-label" }));
    const signout = h("button", { type: "button", class: "fc-btn fc-btn-ghost fc-signout", title: T.signout }, icon("signout"), h("span", { class: "fc-btn-label" }, T.signout));
    signout.addEventListener("click", signOut);
    const top = h("header", { class: "fc-topbar" },
      h("a", { class: "fc-brand", href: "/console/inbox", "aria-label": T.app + " — " + T.p_inbox },
        h("span", { class: "fc-logo" }, icon("tooth")), h("span", { class: "fc-wordmark" }, T.app)),
      h("span", { class: "fc-ws-name", title: str(S.workspace.name) }, str(S.workspace.name)),
      h("div", { class: "fc-topbar-space" }),
      status, alerts, soundBtn, presence,
      h("div", { class: "fc-me-block" }, avatar(me.name, "agent" + me.id, "fc-avatar-sm"),
        h("div", { class: "fc-me-text" }, h("span", { class: "fc-me" }, str(me.name)),
          h("span", { class: "fc-me-role" }, isAdmin() ? T.me_role_admin : T.me_role_agent))),
      signout);
    const main = h("main", { class: "fc-main", id: "fc-main", tabIndex: -1 });
    const el = h("div", { class: "fc-app" + (isAdmin() ? " fc-is-admin" : "") },
      h("a", { class: "fc-skip", href: "#fc-main", onclick: (e) => { e.preventDefault(); main.focus(); } }, T.skip),
      top, h("div", { class: "fc-frame" }, nav, main));
    r.appendChild(el);
    shell = { el, nav, main, status, alerts, soundBtn, presence };
    alerts.addEventListener("click", askAlerts);
    soundBtn.addEventListener("click", () => {
      S.sound = !S.sound;
      try { localStorage.setItem("fc:sound", S.sound ? "on" : "off"); } catch (e) { /* memory only */ }
      if (S.sound) { unlockAudio(); chime(); }
      paintAlerts();
    });
    presence.addEventListener("click", () => {
      S.presence = S.presence === "online" ? "away" : "online";
      Sock.send({ type: "presence", presence: S.presence });
      paintPresence();
    });
    paintAlerts();
    paintPresence();
    paintStatus();
    paintQueued();
  }
  function paintPresence() {
    if (!shell) return;
    const p = S.presence === "away" ? T.presence_away : T.presence_online;
    shell.presence.dataset.presence = S.presence;
    shell.presence.querySelector(".fc-presence-label").textContent = p;
    shell.presence.setAttribute("aria-label", fmt(T.presence_label, { p }));
    shell.presence.title = fmt(T.presence_label, { p });
  }
  function paintAlerts() {
    if (!shell) return;
    const perm = "Notification" in W ? Notification.permission : "denied";
    const a = shell.alerts;
    clear(a);
    a.hidden = !("Notification" in W) || perm === "granted";
    a.appendChild(icon(perm === "denied" ? "belloff" : "bell"));
    a.appendChild(h("span", { class: "fc-btn-label" }, perm === "denied" ? "Alerts blocked" : "Turn on alerts"));
    a.title = perm === "denied" ? T.alerts_denied : T.alerts_on;
    a.disabled = perm === "denied";
    const s = shell.soundBtn;
    clear(s).appendChild(icon(S.sound ? "sound" : "mute"));
    s.setAttribute("aria-pressed", String(S.sound));
    s.setAttribute("aria-label", S.sound ? T.sound_on : T.sound_off);
    s.title = S.sound ? T.sound_on : T.sound_off;
  }
  function askAlerts() {
    unlockAudio();
    if (!("Notification" in W) || Notification.permission !== "default") return paintAlerts();
    Notification.requestPermission().then(paintAlerts, paintAlerts);
  }

  // ---------------------------------------------------------------- sound
  let audio = null, chimeAt = 0;
  function unlockAudio() {
    const AC = W.AudioContext || W.webkitAudioContext;
    if (!AC) return;
    try {
      audio = audio || new AC();
      if (audio.state === "suspended") audio.resume();
    } catch (e) { audio = null; }
  }
  // Browsers allow sound only after the person has used the page: the first click or key unlocks it.
  D.addEventListener("pointerdown", unlockAudio, { once: true, capture: true });
  D.addEventListener("keydown", unlockAudio, { once: true, capture: true });
  function chime() {
    if (!S.sound || !audio || Date.now() - chimeAt < 1500) return;
    chimeAt = Date.now();
    try {
      if (audio.state === "suspended") audio.resume();
      const t = audio.currentTime;
      [[659.25, 0], [987.77, 0.14], [1318.5, 0.28]].forEach(([f, at]) => {
        const o = audio.createOscillator(), g = audio.createGain();
        o.type = "sine";
        o.frequency.value = f;
        g.gain.setValueAtTime(0.0001, t + at);
        g.gain.exponentialRampToValueAtTime(0.12, t + at + 0.02);
        g.gain.exponentialRampToValueAtTime(0.0001, t + at + 0.45);
        o.connect(g);
        g.connect(audio.destination);
        o.start(t + at);
        o.stop(t + at + 0.5);
      });
    } catch (e) { /* no sound is fine */ }
  }

  // ---------------------------------------------------------------- the agent socket
  const Sock = {
    ws: null, up: false, want: false, attempt: 0, timer: 0, pinger: 0, refs: new Map(), n: 0, state: "connecting", retryAt: 0,
    start() { this.want = true; this.attempt = 0; this.open(); },
    stop() {
      this.want = false;
      clearTimeout(this.timer);
      clearInterval(this.pinger);
      const ws = this.ws;
      this.ws = null;
      this.up = false;
      if (ws) { try { ws.close(1000); } catch (e) { /* closed */ } }
      this.failAll(T.network);
    },
    open() {
      clearTimeout(this.timer);
      if (!this.want || (this.ws && this.ws.readyState <= 1)) return;
      let ws;
      try { ws = new WebSocket((location.protocol === "https:" ? "wss" : "ws") + "://" + location.host + "/ws/agent"); }
      catch (e) { return this.later(); }
      this.ws = ws;
      this.setState(this.attempt ? "reconnecting" : "connecting");
      ws.onopen = () => {
        if (this.ws !== ws) return;
        this.up = true;
        this.attempt = 0;
        this.setState("live");
        clearInterval(this.pinger);
        this.pinger = setInterval(() => this.send({ type: "ping" }), 25000);
        if (S.presence === "away") this.send({ type: "presence", presence: "away" });
      };
      ws.onmessage = (e) => {
        let f;
        try { f = JSON.parse(e.data); } catch (x) { return; }
        if (!f || typeof f !== "object") return;
        if ((f.type === "ack" || f.type === "error") && f.ref != null && this.refs.has(f.ref)) {
          const p = this.refs.get(f.ref);
          this.refs.delete(f.ref);
          clearTimeout(p.timer);
          if (f.type === "ack") p.resolve(f); else p.reject(new ApiError(409, str(f.error)));
          return;
        }
        onFrame(f);
      };
      ws.onclose = (e) => {
        if (this.ws !== ws) return;
        this.ws = null;
        this.up = false;
        clearInterval(this.pinger);
        this.failAll(T.network);
        if (!this.want) return;
        if (e.code === 4001) { this.setState("offline"); checkSession().then((ok) => { if (ok) this.later(); }); return; }
        // 1012: the server is restarting; come back at once (with a little spread) and resync.
        if (e.code === 1012) { this.setState("reconnecting"); this.timer = setTimeout(() => this.open(), 150 + Math.random() * 400); return; }
        this.later();
      };
    },
    later() {
      const n = this.attempt++;
      const delay = Math.min(30000, 1000 * Math.pow(2, n)) * (0.75 + Math.random() * 0.5);
      this.retryAt = Date.now() + delay;
      this.setState("reconnecting");
      clearTimeout(this.timer);
      this.timer = setTimeout(() => this.open(), delay);
      // Several failures in a row: maybe the session ended (the handshake gets 401 then).
      if (n >= 1) checkSession();
    },
    now() { if (this.want && !this.up) { this.attempt = 0; this.open(); } },
    send(f) {
      if (!this.up || !this.ws) return false;
      try { this.ws.send(JSON.stringify(f)); return true; } catch (e) { return false; }
    },
    // A frame with a ref, answered by its ack (resolved) or error (rejected).
    request(f, ms) {
      return new Promise((resolve, reject) => {
        if (!this.up) return reject(new ApiError(0, T.network));
        const ref = "c" + (++this.n);
        f.ref = ref;
        const timer = setTimeout(() => { this.refs.delete(ref); reject(new ApiError(0, T.network)); }, ms || 15000);
        this.refs.set(ref, { resolve, reject, timer });
        if (!this.send(f)) { clearTimeout(timer); this.refs.delete(ref); reject(new ApiError(0, T.network)); }
      });
    },
    failAll(msg) {
      for (const p of this.refs.values()) { clearTimeout(p.timer); p.reject(new ApiError(0, msg)); }
      this.refs.clear();
    },
    setState(s) { this.state = s; paintStatus(); }
  };
  W.addEventListener("online", () => Sock.now());
  D.addEventListener("visibilitychange", () => { if (!D.hidden) Sock.now(); });
  let statusTimer = 0;
  function paintStatus() {
    if (!shell) return;
    const s = Sock.state, el = shell.status;
    el.dataset.state = s;
    let text = s === "live" ? T.live : s === "connecting" ? T.connecting : s === "offline" ? T.offline : T.reconnecting;
    if (s === "reconnecting" && Sock.retryAt > Date.now() + 1500) text = fmt(T.reconnect_in, { s: Math.ceil((Sock.retryAt - Date.now()) / 1000) });
    el.querySelector(".fc-status-text").textContent = text;
    clearTimeout(statusTimer);
    if (s === "reconnecting") statusTimer = setTimeout(paintStatus, 1000);
  }

  // ---------------------------------------------------------------- the inbox model (fed by the socket)
  const listeners = new Set();
  function convName(c) {
    const ct = (c && c.variables && c.variables.contact) || {};
    return str(ct.name).trim() || str(ct.email).trim() || str(ct.phone).trim() || T.visitor + " " + str(c && c.id).replace(/-/g, "").slice(-4).toUpperCase();
  }
  const lastAt = (c) => (c.last_message && c.last_message.created_at) || c.updated_at || c.created_at || 0;
  const isMine = (c) => c.owner === "agent" && c.agent && S.me && c.agent.id === S.me.id;
  function botName(botId) {
    const b = S.bots.find((x) => x.id === botId);
    return (b && b.name) || T.bot_name;
  }
  function agentName(id) {
    const a = S.agents.find((x) => x.id === id);
    return a ? a.name : null;
  }
  function upsert(item) {
    if (!item || !item.id) return null;
    const copy = Object.assign({}, item);
    delete copy.messages;
    delete copy.transitions;
    const old = S.convs.get(item.id);
    // An older snapshot must not roll back what the socket already said.
    if (old && old.last_seq > (copy.last_seq || 0)) { delete copy.last_message; delete copy.last_seq; delete copy.unread; }
    const c = old ? Object.assign(old, copy) : copy;
    S.convs.set(c.id, c);
    return c;
  }
  function onFrame(f) {
    let id = f.conversation_id || (f.message && f.message.conversation_id) || (f.conversation && f.conversation.id) || null;
    switch (f.type) {
      case "inbox": {
        const seen = new Set();
        for (const it of f.conversations || []) { upsert(it); seen.add(it.id); }
        // A complete snapshot: open conversations it lacks ended while we were away.
        if ((f.conversations || []).length < 500) {
          for (const c of S.convs.values()) if (c.status === "open" && !seen.has(c.id)) { c.status = "closed"; c.waiting_since = null; }
        }
        S.synced = true;
        S.snapshotFull = (f.conversations || []).length >= 500;
        id = null;
        break;
      }
      case "inbox_stale":
        // The socket fell behind the workspace's events: a fresh socket sends a fresh inbox.
        if (Sock.ws) { const ws = Sock.ws; Sock.ws = null; Sock.up = false; try { ws.close(); } catch (e) { /* closed */ } Sock.open(); }
        return;
      case "conversation": {
        const c = upsert(f.conversation);
        if (c && c.owner === "queued" && c.status === "open") handoffAlert(c);
        break;
      }
      case "message": case "done": onMessage(f.message); break;
      case "owner_changed": {
        const c = S.convs.get(f.conversation_id);
        if (!c) break;
        const was = c.owner;
        c.owner = f.owner;
        c.agent = f.agent || null;
        c.owner_changed_at = f.at || Date.now();
        if (f.owner === "queued") {
          c.handoff_requested_at = f.at || Date.now();
          c.waiting_since = c.handoff_requested_at;
          if (was !== "queued") handoffAlert(c);
        } else if (was === "queued") c.waiting_since = null;
        break;
      }
      case "closed": {
        const c = S.convs.get(f.conversation_id);
        if (c) { c.status = "closed"; c.closed_at = Date.now(); c.waiting_since = null; }
        break;
      }
      case "read": {
        const c = S.convs.get(f.conversation_id);
        if (c && f.reader === "agent") { c.agent_read_seq = Math.max(c.agent_read_seq || 0, f.seq || 0); if (c.agent_read_seq >= (c.last_seq || 0)) c.unread = 0; }
        if (c && f.reader === "visitor") c.visitor_read_seq = Math.max(c.visitor_read_seq || 0, f.seq || 0);
        break;
      }
      case "error":
        if (f.ref == null && f.error && !/needs `conversation_id`/.test(f.error)) console.warn("frontdesk: " + f.error);
        return;
      default: break;
    }
    listeners.forEach((fn) => { try { fn(f, id); } catch (e) { console.error(e); } });
    paintQueued();
  }
  function onMessage(m) {
    if (!m) return;
    const c = S.convs.get(m.conversation_id);
    if (!c) return;
    if (m.seq <= (c.last_seq || 0) && c.last_message) return;
    c.last_message = m;
    c.last_seq = m.seq;
    c.updated_at = Math.max(c.updated_at || 0, m.created_at || 0);
    if (m.sender === "visitor") {
      c.unread = (c.unread || 0) + 1;
      if (c.owner !== "queued" && !c.waiting_since) c.waiting_since = m.created_at;
    } else if ((m.sender === "agent" || m.sender === "bot") && c.owner !== "queued") c.waiting_since = null;
  }
  const alerted = new Set();
  function handoffAlert(c) {
    const key = c.id + ":" + (c.handoff_requested_at || "");
    if (alerted.has(key)) return;
    alerted.add(key);
    chime();
    const viewing = S.inboxView && S.inboxView.current() === c.id && !D.hidden;
    if (!viewing && "Notification" in W && Notification.permission === "granted") {
      try {
        const lm = c.last_message;
        const n = new Notification(fmt(T.handoff_notif, { name: convName(c) }), {
          body: lm && lm.sender === "visitor" ? str(lm.content).slice(0, 140) : "", tag: "fd-" + c.id, renotify: true
        });
        n.onclick = () => { W.focus(); go("/console/c/" + encodeURIComponent(c.id)); n.close(); };
      } catch (e) { /* some browsers allow notifications only from a service worker */ }
    }
  }
  function queuedCount() {
    let n = 0;
    for (const c of S.convs.values()) if (c.status === "open" && c.owner === "queued") n++;
    return n;
  }
  let queuedPainted = -1;
  function paintQueued() {
    if (!shell) return;
    const n = queuedCount();
    if (n === queuedPainted) return;
    queuedPainted = n;
    const b = shell.nav.querySelector(".fc-nav-badge");
    if (b) { b.hidden = !n; b.textContent = n > 99 ? "99+" : String(n); b.setAttribute("aria-label", n + " " + T.g_queued.toLowerCase()); }
    if (S.titleLabel) setTitle(S.titleLabel);
  }

  // ---------------------------------------------------------------- the inbox page
  function loadFilters() {
    try { return Object.assign({ owner: "", status: "open", agent: "", bot: "", unread: false, search: "" }, JSON.parse(localStorage.getItem("fc:filters") || "{}"), { search: "" }); }
    catch (e) { return { owner: "", status: "open", agent: "", bot: "", unread: false, search: "" }; }
  }
  function renderInbox(main, openId) {
    const F = loadFilters();
    const saveF = () => { try { localStorage.setItem("fc:filters", JSON.stringify(Object.assign({}, F, { search: "" }))); } catch (e) { /* memory only */ } };
    const layout = h("div", { class: "fc-inbox-layout" });
    const listPane = h("section", { class: "fc-list-pane", "aria-label": T.p_inbox });
    const convPane = h("section", { class: "fc-conv-pane", "aria-label": T.p_inbox });
    const side = h("aside", { class: "fc-side", "aria-label": T.details_toggle });
    layout.append(listPane, convPane, side);
    main.appendChild(layout);

    // --- list head
    const count = h("span", { class: "fc-list-count" });
    const search = h("input", { class: "fc-input fc-search-input", type: "search", name: "search", placeholder: T.search, "aria-label": T.search, autocomplete: "off", spellcheck: false });
    const owner = select("owner", [["", T.f_all], ["queued", T.f_queued], ["mine", T.f_mine], ["agent", T.f_agent], ["bot", T.f_bot]], F.owner, { "aria-label": T.owner });
    const status = select("status", [["open", T.s_open], ["closed", T.s_closed], ["all", T.s_all]], F.status, { "aria-label": T.status });
    const agentSel = select("agent", [["", T.agent + ": " + T.any]], F.agent, { "aria-label": T.agent });
    const botSel = select("bot", [["", T.bot + ": " + T.any]], F.bot, { "aria-label": T.bot });
    const unread = h("input", { type: "checkbox", name: "unread", checked: !!F.unread, id: uid("unread") });
    const moreBtn = h("button", { type: "button", class: "fc-btn fc-btn-ghost fc-btn-sm fc-more-filters", "aria-expanded": "false" }, icon("leads"), h("span", { class: "fc-btn-label" }, T.filters), h("span", { class: "fc-count-badge", hidden: true }));
    const more = h("div", { class: "fc-filters-more", hidden: true }, agentSel, botSel,
      h("label", { class: "fc-check", for: unread.id }, unread, h("span", null, T.unread_only)));
    moreBtn.addEventListener("click", () => { more.hidden = !more.hidden; moreBtn.setAttribute("aria-expanded", String(!more.hidden)); });
    const inbox = h("div", { class: "fc-inbox", "aria-label": T.p_inbox });
    const loadMore = button(T.load_more, { kind: "ghost", size: "sm", cls: "fc-load-more" });
    const foot = h("div", { class: "fc-list-foot" }, loadMore);
    listPane.append(
      h("div", { class: "fc-list-head" }, h("h1", { class: "fc-list-title" }, T.p_inbox), count),
      h("div", { class: "fc-list-tools" },
        h("div", { class: "fc-search" }, icon("search"), search),
        h("div", { class: "fc-filters" }, owner, status, moreBtn), more),
      inbox, foot);

    function fillAgents() {
      const v = agentSel.value || F.agent;
      clear(agentSel).appendChild(h("option", { value: "" }, T.agent + ": " + T.any));
      for (const a of S.agents) agentSel.appendChild(h("option", { value: String(a.id), selected: String(a.id) === v }, a.name));
    }
    function fillBots() {
      const v = botSel.value || F.bot;
      clear(botSel).appendChild(h("option", { value: "" }, T.bot + ": " + T.any));
      for (const b of S.bots) botSel.appendChild(h("option", { value: b.id, selected: b.id === v }, b.name));
      botSel.hidden = S.bots.length < 2 && !v;
    }
    fillAgents(); fillBots();
    agentListeners.push(fillAgents); botListeners.push(fillBots);
    function paintMoreCount() {
      const n = (F.agent ? 1 : 0) + (F.bot ? 1 : 0) + (F.unread ? 1 : 0);
      const b = moreBtn.querySelector(".fc-count-badge");
      b.hidden = !n;
      b.textContent = String(n);
      if (n && more.hidden && !moreBtn._shown) { more.hidden = false; moreBtn.setAttribute("aria-expanded", "true"); }
      moreBtn._shown = true;
    }
    paintMoreCount();

    // --- filtering
    const norm = (s) => str(s).toLowerCase();
    function matches(c) {
      if (F.status === "open" && c.status !== "open") return false;
      if (F.status === "closed" && c.status !== "closed") return false;
      if (F.owner === "mine" && !isMine(c)) return false;
      if (F.owner && F.owner !== "mine" && c.owner !== F.owner) return false;
      if (F.agent && !(c.agent && String(c.agent.id) === F.agent)) return false;
      if (F.bot && c.bot_id !== F.bot) return false;
      if (F.unread && !(c.unread > 0)) return false;
      if (F.search) {
        const ct = (c.variables && c.variables.contact) || {};
        const hay = norm([convName(c), ct.email, ct.phone, c.last_message && c.last_message.content, c.id, c.external_id].join(" "));
        for (const w of norm(F.search).split(/\s+/)) if (w && hay.indexOf(w) < 0) return false;
      }
      return true;
    }
    // Queued first (longest waiting first), then mine, then the rest, newest activity first.
    function groups() {
      const all = [];
      for (const c of S.convs.values()) if (matches(c)) all.push(c);
      const byRecent = (a, b) => lastAt(b) - lastAt(a);
      if (F.status !== "open") return [["results", T.g_results, all.sort(byRecent)]];
      const qd = [], mine = [], rest = [];
      for (const c of all) (c.owner === "queued" ? qd : isMine(c) ? mine : rest).push(c);
      qd.sort((a, b) => (a.waiting_since || a.handoff_requested_at || lastAt(a)) - (b.waiting_since || b.handoff_requested_at || lastAt(b)));
      return [["queued", T.g_queued, qd], ["mine", T.g_mine, mine.sort(byRecent)], ["open", T.g_open, rest.sort(byRecent)]];
    }

    // --- items
    const items = new Map(); // id → element
    const heads = new Map();
    let current = null;
    function preview(c) {
      const m = c.last_message;
      if (!m) return T.no_messages;
      const text = str(m.content).replace(/\s+/g, " ").trim() || (m.media ? T.attachment : "");
      if (m.sender === "agent") return (m.agent_id === S.me.id ? T.you : str(m.metadata && m.metadata.agent && m.metadata.agent.name).split(" ")[0] || T.agent) + ": " + text;
      if (m.sender === "bot") return T.bot_name + ": " + text;
      return text;
    }
    function fillItem(a, c) {
      const name = convName(c);
      a.dataset.owner = c.owner;
      a.dataset.status = c.status;
      a.classList.toggle("fc-conv-has-unread", c.unread > 0);
      if (c.id === current) a.setAttribute("aria-current", "true"); else a.removeAttribute("aria-current");
      const chips = h("div", { class: "fc-conv-chips" });
      if (c.status === "closed") chips.appendChild(h("span", { class: "fc-chip fc-chip-muted" }, T.closed));
      else if (c.owner === "queued") {
        const since = c.waiting_since || c.handoff_requested_at;
        chips.appendChild(h("span", { class: "fc-chip fc-chip-warn fc-waiting", title: since ? full(since) : null }, icon("clock"), fmt(T.waiting, { d: since ? dur(Date.now() - since) : "" }).trim()));
      } else if (c.owner === "agent") {
        chips.appendChild(h("span", { class: "fc-chip" + (isMine(c) ? " fc-chip-accent" : "") }, icon("headset"), isMine(c) ? T.owner_you : str(c.agent && c.agent.name) || T.agent));
        if (c.waiting_since) chips.appendChild(h("span", { class: "fc-chip fc-chip-plain fc-awaiting", title: full(c.waiting_since) }, fmt(T.awaiting, { d: dur(Date.now() - c.waiting_since) })));
      } else chips.appendChild(h("span", { class: "fc-chip fc-chip-plain" }, icon("bot"), T.owner_bot));
      if (S.bots.length > 1) chips.appendChild(h("span", { class: "fc-chip fc-chip-plain" }, botName(c.bot_id)));
      const un = h("span", { class: "fc-unread", hidden: !(c.unread > 0), "aria-label": fmt(T.unread, { n: c.unread || 0 }) }, String(c.unread > 99 ? "99+" : c.unread || 0));
      clear(a).append(
        avatar(name, c.id),
        h("div", { class: "fc-conv-body" },
          h("div", { class: "fc-conv-row" }, h("span", { class: "fc-conv-name" }, name), h("time", { class: "fc-conv-time", datetime: new Date(lastAt(c)).toISOString(), title: full(lastAt(c)) }, when(lastAt(c)))),
          h("div", { class: "fc-conv-row" }, h("span", { class: "fc-conv-preview" }, preview(c)), un),
          chips));
    }
    function itemFor(c) {
      let a = items.get(c.id);
      if (!a) {
        a = h("a", { class: "fc-conv", href: "/console/c/" + encodeURIComponent(c.id), data: { id: c.id } });
        items.set(c.id, a);
      }
      return a;
    }
    function headFor(key, label, n) {
      let e = heads.get(key);
      if (!e) { e = h("h2", { class: "fc-group fc-group-" + key }, h("span", { class: "fc-group-label" }), h("span", { class: "fc-group-count" })); heads.set(key, e); }
      e.firstChild.textContent = label;
      e.lastChild.textContent = String(n);
      return e;
    }
    let dirtyIds = new Set(), allDirty = true, frame = 0;
    function schedule(id) {
      if (id) dirtyIds.add(id); else allDirty = true;
      if (!frame) frame = requestAnimationFrame(paint);
    }
    function paint() {
      frame = 0;
      const gs = groups();
      const want = [];
      let total = 0;
      for (const [key, label, list] of gs) {
        if (!list.length) continue;
        want.push(headFor(key, label, list.length));
        for (const c of list) {
          const a = itemFor(c);
          if (allDirty || dirtyIds.has(c.id) || !a.firstChild) fillItem(a, c);
          want.push(a);
          total++;
        }
      }
      dirtyIds = new Set();
      allDirty = false;
      // Move only what is out of place: a focused item keeps its focus.
      let i = 0;
      for (; i < want.length; i++) {
        const at = inbox.children[i];
        if (at !== want[i]) inbox.insertBefore(want[i], at || null);
      }
      while (inbox.children.length > want.length) inbox.lastElementChild.remove();
      let empty = inbox.querySelector(".fc-inbox-empty");
      if (!total) {
        if (!empty) inbox.appendChild(emptyBox());
      } else if (empty) empty.remove();
      let open = 0;
      for (const c of S.convs.values()) if (c.status === "open") open++;
      count.textContent = S.synced ? fmt(T.conv_count, { n: open }) : T.connecting;
      loadMore.hidden = F.status === "open" ? !(S.snapshotFull && restCursor !== null) : restCursor === null;
    }
    function emptyBox() {
      const filtered = F.search || F.owner || F.agent || F.bot || F.unread || F.status !== "open";
      return h("div", { class: "fc-inbox-empty" }, S.synced || F.status !== "open" ? (filtered ? T.inbox_empty : T.inbox_empty_all) : T.loading);
    }

    // --- REST pages (closed conversations, and the open ones past the socket's 500)
    let restCursor = undefined, restKey = "";
    function restQuery(cursor) {
      const o = { limit: 100, cursor };
      if (F.status !== "all") o.status = F.status;
      if (F.owner === "mine") { o.owner = "agent"; o.agent_id = S.me.id; }
      else if (F.owner) o.owner = F.owner;
      if (F.agent) o.agent_id = F.agent;
      if (F.unread) o.unread = "true";
      return "/api/conversations" + q(o);
    }
    async function fetchPage(untilNew) {
      const key = restQuery("");
      if (key !== restKey) { restKey = key; restCursor = undefined; }
      for (let n = 0; n < (untilNew ? 10 : 1); n++) {
        if (restCursor === null) break;
        const r = await GET(restQuery(restCursor || ""));
        let added = 0;
        for (const it of (r && r.conversations) || []) { if (!S.convs.has(it.id)) added++; upsert(it); }
        restCursor = (r && r.next_cursor) || null;
        if (added) break;
      }
      schedule();
    }
    loadMore.addEventListener("click", () => busy(loadMore, () => fetchPage(true).catch(fail), T.loading_more));

    function refilter() {
      F.owner = owner.value; F.status = status.value; F.agent = agentSel.value; F.bot = botSel.value; F.unread = unread.checked;
      saveF();
      paintMoreCount();
      schedule();
      if (F.status !== "open") fetchPage(false).catch(fail);
    }
    [owner, status, agentSel, botSel, unread].forEach((e) => e.addEventListener("change", refilter));
    search.addEventListener("input", debounce(() => { F.search = search.value.trim(); schedule(); }, 120));
    search.addEventListener("keydown", (e) => {
      if (e.key === "ArrowDown") { const f = inbox.querySelector(".fc-conv"); if (f) { e.preventDefault(); f.focus(); } }
      if (e.key === "Escape" && search.value) { search.value = ""; F.search = ""; schedule(); }
    });
    // ↑/↓ walk the list.
    inbox.addEventListener("keydown", (e) => {
      if (e.key !== "ArrowDown" && e.key !== "ArrowUp") return;
      const all = Array.from(inbox.querySelectorAll(".fc-conv"));
      const i = all.indexOf(D.activeElement);
      if (i < 0) return;
      e.preventDefault();
      const n = all[Math.max(0, Math.min(all.length - 1, i + (e.key === "ArrowDown" ? 1 : -1)))];
      n.focus();
      n.scrollIntoView({ block: "nearest" });
    });
    if (F.status !== "open") fetchPage(false).catch(fail);

    // --- live updates
    let view = null;
    const onEvent = (f, id) => {
      if (f.type === "inbox") { schedule(); if (view) view.resubscribe(); return; }
      if (id && f.type !== "delta" && f.type !== "typing") schedule(id);
      if (view && id === view.id) view.frame(f);
    };
    listeners.add(onEvent);
    const ticker = setInterval(() => {
      for (const c of S.convs.values()) if (c.waiting_since && c.status === "open" && items.has(c.id)) fillItem(items.get(c.id), c);
    }, 15000);

    function open(id) {
      if (view && view.id === id) return;
      if (view) { view.destroy(); view = null; }
      const prev = current;
      current = id;
      if (prev) schedule(prev);
      if (id) schedule(id);
      layout.classList.toggle("fc-has-conv", !!id);
      clear(convPane);
      clear(side);
      if (!id) {
        layout.classList.remove("fc-side-open");
        convPane.appendChild(emptyState("inbox", T.pick_conv, T.pick_conv_sub));
        setTitle(T.p_inbox);
        return;
      }
      view = ConvView(convPane, side, layout, id, () => schedule(id));
    }
    S.inboxView = { open, current: () => current };
    open(openId);
    schedule();
    return () => {
      listeners.delete(onEvent);
      clearInterval(ticker);
      cancelAnimationFrame(frame);
      agentListeners.splice(agentListeners.indexOf(fillAgents), 1);
      botListeners.splice(botListeners.indexOf(fillBots), 1);
      if (view) view.destroy();
      S.inboxView = null;
    };
  }

  // ---------------------------------------------------------------- one conversation
  function ConvView(pane, side, layout, id, touch) {
    const conv = () => S.convs.get(id) || { id, owner: "bot", status: "open", variables: {} };
    let alive = true, subscribed = false, minSeq = Infinity, maxSeq = 0, visitorRead = 0, loaded = false;
    const bySeq = new Map(), streams = new Map(), pending = new Map();
    let typingTimer = 0, myTyping = false, myTypingAt = 0, myTypingOff = 0, readTimer = 0, relayoutFrame = 0;

    // --- head
    const backBtn = button(null, { kind: "ghost", icon: "left", aria: T.back_list, cls: "fc-back", onclick: () => go("/console/inbox") });
    const headAvatar = h("span", { class: "fc-head-avatar" });
    const title = h("h2", { class: "fc-thread-title" });
    const sub = h("div", { class: "fc-thread-sub" });
    const ownerChip = h("span", { class: "fc-chip fc-owner-chip" });
    const handback = button(T.hand_back, { icon: "handback", cls: "fc-handback", size: "sm" });
    const closeBtn = button(T.close_conv, { icon: "done", cls: "fc-close", size: "sm" });
    const panelBtn = button(null, { kind: "ghost", icon: "panel", aria: T.details_toggle, cls: "fc-panel-toggle" });
    panelBtn.setAttribute("aria-expanded", "false");
    const head = h("header", { class: "fc-thread-head" }, backBtn, headAvatar,
      h("div", { class: "fc-thread-titles" }, h("div", { class: "fc-thread-title-row" }, title, ownerChip), sub),
      h("div", { class: "fc-thread-actions" }, handback, closeBtn, panelBtn));

    // --- thread
    const earlier = button(T.earlier, { kind: "ghost", size: "sm", icon: "up", cls: "fc-earlier" });
    const top = h("div", { class: "fc-thread-top" }, earlier);
    const msgs = h("div", { class: "fc-msgs" });
    const live = h("div", { class: "fc-live" });
    const seenEl = h("div", { class: "fc-seen" }, icon("check"), T.seen);
    const thread = h("div", { class: "fc-thread", role: "log", "aria-live": "polite", "aria-relevant": "additions", "aria-label": T.p_inbox, tabIndex: 0 },
      top, msgs, live);
    const loading = h("div", { class: "fc-loading", role: "status" }, h("span", { class: "fc-spinner" }), T.loading);
    thread.appendChild(loading);
    const typingLine = h("div", { class: "fc-typing-line", hidden: true, "aria-live": "polite" }, h("span", { class: "fc-dots", "aria-hidden": "true" }, h("i"), h("i"), h("i")), h("span", { class: "fc-typing-text" }));

    // --- composer
    const lockText = h("span", { class: "fc-lock-text", role: "status" });
    const takeover = button(T.take_over, { kind: "primary", icon: "headset", cls: "fc-takeover" });
    const lock = h("div", { class: "fc-lock" }, icon("info"), lockText, takeover);
    const reply = h("textarea", { class: "fc-reply", name: "reply", rows: 2, "aria-label": T.reply_label, disabled: true, "aria-autocomplete": "list" });
    const send = button(T.send, { kind: "primary", type: "submit", icon: "send", cls: "fc-send", disabled: true });
    const canned = h("ul", { class: "fc-canned", role: "listbox", id: uid("canned"), hidden: true, "aria-label": T.canned_title });
    reply.setAttribute("aria-controls", canned.id);
    const composer = h("form", { class: "fc-composer", novalidate: true }, canned, reply,
      h("div", { class: "fc-composer-bar" }, h("span", { class: "fc-composer-hint" }, T.reply_hint), send));
    const composeWrap = h("div", { class: "fc-compose" }, lock, composer);

    const pad = h("div", { class: "fc-conv-view" }, head, thread, typingLine, composeWrap);
    pane.appendChild(pad);

    // --- side panel
    const sideView = SidePanel(side, id, conv);
    const narrow = W.matchMedia("(max-width: 1179px)");
    function setPanel(openIt) {
      layout.classList.toggle("fc-side-open", openIt);
      panelBtn.setAttribute("aria-expanded", String(openIt));
      if (openIt && narrow.matches) { const f = side.querySelector("input, button, select, textarea, summary"); if (f) f.focus(); }
    }
    panelBtn.addEventListener("click", () => setPanel(!layout.classList.contains("fc-side-open")));
    side.addEventListener("keydown", (e) => { if (e.key === "Escape" && narrow.matches) { setPanel(false); panelBtn.focus(); } });
    setPanel(false);

    // --- painting state
    function paintState() {
      const c = conv();
      const name = convName(c);
      title.textContent = name;
      clear(headAvatar).appendChild(avatar(name, c.id, "fc-avatar-md"));
      const ct = (c.variables && c.variables.contact) || {};
      clear(sub).append(...[ct.email, ct.phone, c.channel && c.channel.toUpperCase() === "REST" ? "REST" : c.channel, S.bots.length > 1 ? botName(c.bot_id) : null]
        .filter(Boolean).map((t, i) => h("span", { class: "fc-sub-item" }, i ? "· " + t : t)));
      clear(ownerChip);
      ownerChip.className = "fc-chip fc-owner-chip";
      if (c.status === "closed") { ownerChip.classList.add("fc-chip-muted"); ownerChip.append(T.closed); }
      else if (c.owner === "queued") {
        ownerChip.classList.add("fc-chip-warn");
        const since = c.waiting_since || c.handoff_requested_at;
        ownerChip.append(icon("clock"), fmt(T.waiting, { d: since ? dur(Date.now() - since) : "" }).trim());
      } else if (c.owner === "agent") {
        ownerChip.classList.add(isMine(c) ? "fc-chip-accent" : "fc-chip-info");
        ownerChip.append(icon("headset"), isMine(c) ? T.owner_you : str(c.agent && c.agent.name));
      } else ownerChip.append(icon("bot"), T.owner_bot);
      const open = c.status === "open", mine = isMine(c) && open;
      handback.hidden = !mine;
      closeBtn.hidden = !open;
      takeover.hidden = !open || mine || (c.owner === "agent" && !!c.agent);
      lock.hidden = mine;
      lock.dataset.kind = !open ? "closed" : c.owner === "queued" ? "queued" : c.owner === "agent" ? "other" : "bot";
      if (!lockText.dataset.error) {
        lockText.textContent = !open ? T.lock_closed
          : c.owner === "queued" ? fmt(T.lock_queued, { name, d: dur(Date.now() - (c.waiting_since || c.handoff_requested_at || Date.now())) })
          : c.owner === "agent" ? fmt(T.lock_other, { agent: str(c.agent && c.agent.name) || T.agent })
          : T.lock_bot;
      }
      reply.disabled = !mine;
      reply.placeholder = mine ? fmt(T.reply_ph, { name: name.split(" ")[0] }) : "";
      send.disabled = !mine || !reply.value.trim();
      composer.classList.toggle("fc-composer-locked", !mine);
      setTitle(name);
    }
    const stateTicker = setInterval(() => { if (conv().owner === "queued") paintState(); }, 15000);

    // --- messages
    function author(m) {
      const c = conv();
      if (m.sender === "visitor") return convName(c);
      if (m.sender === "bot") return botName(c.bot_id);
      if (m.sender === "agent") return m.agent_id === S.me.id ? T.you : str(m.metadata && m.metadata.agent && m.metadata.agent.name) || agentName(m.agent_id) || T.agent;
      return "";
    }
    function mediaEls(media) {
      if (!Array.isArray(media)) return null;
      return h("div", { class: "fc-media" }, media.map((x) => {
        if (!x || typeof x.url !== "string") return null;
        let u;
        try { u = new URL(x.url, location.href); } catch (e) { return null; }
        if (!/^https?:$/.test(u.protocol)) return null;
        const label = str(x.filename) || T.attachment;
        if (x.type === "image" && u.origin === location.origin) {
          return h("a", { class: "fc-media-img", href: u.href, target: "_blank", rel: "noopener noreferrer" }, h("img", { src: u.href, alt: label, loading: "lazy" }));
        }
        return h("a", { class: "fc-media-file", href: u.href, target: "_blank", rel: "noopener noreferrer" }, icon("file"), label);
      }));
    }
    function extras(m) {
      const md = m.metadata || {};
      const chips = [];
      if (md.interrupted) chips.push(h("span", { class: "fc-chip fc-chip-warn" }, T.interrupted));
      if (md.unanswered) chips.push(h("span", { class: "fc-chip fc-chip-warn" }, T.unanswered));
      if (md.handoff) chips.push(h("span", { class: "fc-chip fc-chip-info" }, T.handoff_chip));
      if (md.model && md.model.fallback) chips.push(h("span", { class: "fc-chip fc-chip-plain", title: str(md.model.reason) }, T.fallback));
      if (Array.isArray(md.quick_replies) && md.quick_replies.length) {
        chips.push(h("span", { class: "fc-offered" }, T.offered + ": " + md.quick_replies.filter((x) => typeof x === "string").slice(0, 8).join(" · ")));
      }
      if (Array.isArray(md.citations) && md.citations.length) {
        chips.push(h("span", { class: "fc-cites" }, T.sources + ": ", md.citations.slice(0, 4).map((ci, i) => {
          const href = ci && ci.url && safeHref(ci.url);
          const t = str(ci && (ci.title || ci.url)) || "#" + (i + 1);
          return [i ? ", " : "", href ? extLink(href, t) : t];
        })));
      }
      return chips.length ? h("div", { class: "fc-msg-extras" }, chips) : null;
    }
    function msgEl(m) {
      const sender = ["visitor", "bot", "agent", "system"].indexOf(m.sender) >= 0 ? m.sender : "system";
      const t = h("time", { datetime: new Date(m.created_at || Date.now()).toISOString(), title: full(m.created_at) }, clock(m.created_at || Date.now()));
      if (sender === "system") {
        return h("div", { class: "fc-msg fc-msg-system", data: { seq: m.seq, sender, at: m.created_at } }, h("div", { class: "fc-text" }, str(m.content)), t);
      }
      const e = h("div", { class: "fc-msg fc-msg-" + sender + (sender === "agent" && m.agent_id === S.me.id ? " fc-msg-mine" : ""), data: { seq: m.seq, sender, at: m.created_at, who: sender === "agent" ? m.agent_id : "" } });
      const text = h("div", { class: "fc-text", dir: "auto" });
      markdown(text, str(m.content));
      add(e, [h("div", { class: "fc-msg-meta" }, h("span", { class: "fc-msg-author" }, sender === "bot" ? icon("bot") : null, author(m)), t),
        h("div", { class: "fc-bubble" }, text, mediaEls(m.media)), extras(m)]);
      return e;
    }
    function insert(m) {
      if (!m || typeof m.seq !== "number" || m.conversation_id !== id) return;
      // The stored reply replaces its stream; my stored message replaces its pending bubble.
      if (m.sender === "bot" && m.reply_to != null && streams.has(m.reply_to)) { streams.get(m.reply_to).remove(); streams.delete(m.reply_to); }
      if (m.client_msg_id && pending.has(m.client_msg_id)) { pending.get(m.client_msg_id).remove(); pending.delete(m.client_msg_id); }
      const old = bySeq.get(m.seq);
      const el = msgEl(m);
      el._m = m;
      if (old) { old.replaceWith(el); bySeq.set(m.seq, el); return relayout(); }
      bySeq.set(m.seq, el);
      if (m.seq > maxSeq) msgs.appendChild(el);
      else {
        let before = null;
        for (const x of msgs.children) { const s = +x.dataset.seq; if (x.dataset.seq && s > m.seq) { before = x; break; } }
        // Events (take-overs, hand-backs) go by time.
        if (before) while (before.previousElementSibling && before.previousElementSibling.classList.contains("fc-event") && +before.previousElementSibling.dataset.at > (m.created_at || 0)) before = before.previousElementSibling;
        msgs.insertBefore(el, before);
      }
      maxSeq = Math.max(maxSeq, m.seq);
      minSeq = Math.min(minSeq, m.seq);
      relayout();
    }
    function eventRow(text, at, kind) {
      const e = h("div", { class: "fc-event fc-event-" + (kind || "info"), data: { at } }, h("span", { class: "fc-event-line" }, text, " · ", h("time", { title: full(at) }, clock(at))));
      let before = null;
      for (const x of msgs.children) if (+x.dataset.at > at) { before = x; break; }
      msgs.insertBefore(e, before);
      relayout();
    }
    function transitionText(t) {
      const by = t.by === "visitor" ? T.by_visitor : t.by === "bot" ? T.by_bot : t.by === "api" ? T.by_api : t.by === "system" ? T.by_system : t.by === "rule" ? T.by_rule : (agentName(t.agent_id) || T.by_agent);
      if (t.to === "queued") return fmt(T.ev_queued, { by }) + (t.reason && t.by !== "visitor" ? " — " + t.reason : "");
      if (t.to === "agent") return fmt(T.ev_agent, { agent: (t.agent && t.agent.name) || agentName(t.agent_id) || T.agent });
      if (t.to === "bot") return T.ev_bot + (t.reason ? " — " + t.reason : "");
      if (t.to === "closed") return T.ev_closed;
      return str(t.to);
    }
    function relayout() {
      if (!relayoutFrame) relayoutFrame = requestAnimationFrame(doRelayout);
    }
    function doRelayout() {
      relayoutFrame = 0;
      if (!alive) return;
      msgs.querySelectorAll(":scope > .fc-day").forEach((d) => d.remove());
      let prev = null, prevDay = "";
      for (const e of Array.from(msgs.children)) {
        const at = +e.dataset.at || 0;
        const day = at ? dayKey(at) : prevDay;
        if (day && day !== prevDay) { msgs.insertBefore(h("div", { class: "fc-day", role: "separator" }, h("span", null, dayLabel(at))), e); prev = null; }
        prevDay = day;
        if (e.classList.contains("fc-msg") && !e.classList.contains("fc-msg-system")) {
          const cont = prev && prev.dataset.sender === e.dataset.sender && prev.dataset.who === e.dataset.who && at - (+prev.dataset.at || 0) < 3 * MIN;
          e.classList.toggle("fc-cont", !!cont);
          prev = e;
        } else prev = null;
      }
      top.hidden = !loaded;
      earlier.hidden = !(minSeq > 1 && minSeq !== Infinity);
      top.classList.toggle("fc-at-start", earlier.hidden);
      top.dataset.label = T.start_of_conv;
      paintSeen();
      stick();
    }
    function paintSeen() {
      let target = null;
      for (const e of msgs.querySelectorAll('.fc-msg[data-sender="agent"]')) if (+e.dataset.seq <= visitorRead) target = e;
      if (target) { if (seenEl.previousElementSibling !== target) target.after(seenEl); }
      else seenEl.remove();
    }
    // Follows the bottom unless the agent scrolled up to read.
    let pinned = true;
    thread.addEventListener("scroll", () => {
      pinned = thread.scrollHeight - thread.scrollTop - thread.clientHeight < 80;
      if (thread.scrollTop < 40 && !earlier.hidden && !earlier.disabled && loaded) loadEarlier();
    }, { passive: true });
    function stick(force) { if (force || pinned) thread.scrollTop = thread.scrollHeight; }

    async function loadEarlier() {
      if (!(minSeq > 1)) return;
      await busy(earlier, async () => {
        const after = Math.max(0, minSeq - 101);
        const before = thread.scrollHeight - thread.scrollTop;
        try {
          const r = await GET("/api/conversations/" + encodeURIComponent(id) + "/messages" + q({ after, limit: 100 }));
          const list = ((r && r.messages) || []).filter((m) => m.seq < minSeq);
          if (!list.length) { minSeq = 1; }
          const wasPinned = pinned;
          pinned = false;
          list.forEach(insert);
          if (after === 0) minSeq = Math.min(minSeq, 1);
          doRelayout();
          thread.scrollTop = thread.scrollHeight - before;
          pinned = wasPinned && false;
        } catch (e) { fail(e); }
      }, T.loading);
    }
    earlier.addEventListener("click", loadEarlier);

    function onDelta(f) {
      const key = f.reply_to == null ? "x" : f.reply_to;
      let e = streams.get(key);
      if (!e) {
        const text = h("div", { class: "fc-text", dir: "auto" });
        e = h("div", { class: "fc-msg fc-msg-bot fc-streaming", data: { sender: "bot", replyTo: f.reply_to } },
          h("div", { class: "fc-msg-meta" }, h("span", { class: "fc-msg-author" }, icon("bot"), botName(conv().bot_id)), h("span", { class: "fc-streaming-label" }, T.typing.replace("{name} ", "").replace("…", "") + "…")),
          h("div", { class: "fc-bubble" }, text));
        e._raw = "";
        e._text = text;
        streams.set(key, e);
        live.appendChild(e);
      }
      e._raw += str(f.text);
      e._text.textContent = e._raw;
      stick();
    }
    function onTyping(f) {
      if (f.sender !== "visitor") return;
      clearTimeout(typingTimer);
      typingLine.hidden = !f.on;
      typingLine.querySelector(".fc-typing-text").textContent = fmt(T.typing, { name: convName(conv()).split(" ")[0] });
      if (f.on) typingTimer = setTimeout(() => { typingLine.hidden = true; }, 8000);
    }

    // --- the socket's frames for this conversation
    function frame(f) {
      switch (f.type) {
        case "history": (f.messages || []).forEach(insert); if (!f.more) markRead(); break;
        case "message": case "done":
          insert(f.message);
          if (f.message && f.message.sender === "visitor") { typingLine.hidden = true; markRead(); }
          break;
        case "delta": onDelta(f); break;
        case "typing": onTyping(f); break;
        case "read": if (f.reader === "visitor") { visitorRead = Math.max(visitorRead, f.seq || 0); paintSeen(); } break;
        case "owner_changed": {
          lockText.dataset.error = "";
          const t = { to: f.owner, agent: f.agent, agent_id: f.agent && f.agent.id, by: f.actor, reason: f.reason };
          if (f.owner === "agent" || f.owner === "bot" || f.owner === "queued") eventRow(transitionText(t), f.at || Date.now(), f.owner);
          paintState();
          sideView.changed();
          break;
        }
        case "closed": eventRow(T.ev_closed, Date.now(), "closed"); paintState(); break;
        case "conversation": paintState(); break;
        default: break;
      }
    }
    function subscribe() {
      if (!Sock.up || !alive) return;
      subscribed = true;
      for (const e of streams.values()) e.remove();
      streams.clear();
      Sock.request({ type: "subscribe", conversation_id: id, last_seq: maxSeq }).catch((e) => { subscribed = false; if (e.status) fail(e); });
    }
    function resubscribe() { subscribed = false; if (loaded) subscribe(); }

    // --- read receipts (what the agents have read)
    function markRead() {
      clearTimeout(readTimer);
      readTimer = setTimeout(() => {
        const c = conv();
        if (!alive || D.hidden || !maxSeq || (c.agent_read_seq || 0) >= maxSeq) return;
        c.agent_read_seq = maxSeq;
        c.unread = 0;
        touch();
        if (!Sock.send({ type: "read", conversation_id: id, seq: maxSeq })) api("POST", "/api/conversations/" + encodeURIComponent(id) + "/read", { seq: maxSeq }).catch(() => {});
      }, 400);
    }
    const onVisible = () => { if (!D.hidden) markRead(); };
    D.addEventListener("visibilitychange", onVisible);

    // --- actions
    const path = "/api/conversations/" + encodeURIComponent(id);
    async function act(frameType, rest, body) {
      if (Sock.up) {
        try { return await Sock.request({ type: frameType, conversation_id: id }); }
        catch (e) { if (e.status !== 0) throw e; }
      }
      return api("POST", path + rest, body);
    }
    takeover.addEventListener("click", () => busy(takeover, async () => {
      lockText.dataset.error = "";
      try {
        await act("take_over", "/takeover", {});
        const c = conv();
        if (c.owner !== "agent") { c.owner = "agent"; c.agent = { id: S.me.id, name: S.me.name }; c.waiting_since = null; touch(); }
        paintState();
        sideView.changed();
        reply.focus();
      } catch (e) {
        const m = /taken over by (.+?) \(agent/.exec(e.message) || /already .*by (.+?)(?:[.(]|$)/.exec(e.message);
        if (m) {
          const msg = fmt(T.taken_by, { name: m[1].trim() });
          lockText.dataset.error = "1";
          lockText.textContent = msg;
          toast(msg);
          api("GET", path + "/detail").then((d) => { upsert(d); touch(); paintState(); }).catch(() => {});
        } else fail(e);
      }
    }, T.taking_over));
    handback.addEventListener("click", () => busy(handback, async () => {
      try {
        stopTyping();
        await act("hand_back", "/handback", {});
        const c = conv();
        if (c.owner === "agent") { c.owner = "bot"; c.agent = null; touch(); }
        paintState();
      } catch (e) { fail(e); }
    }));
    closeBtn.addEventListener("click", async () => {
      if (!(await confirmDialog(T.close_confirm, T.close_confirm_text, T.close_conv, true))) return;
      busy(closeBtn, async () => {
        try {
          await act("close", "/close");
          const c = conv();
          c.status = "closed";
          c.waiting_since = null;
          touch();
          paintState();
        } catch (e) { fail(e); }
      });
    });

    // --- replying
    function stopTyping() {
      clearTimeout(myTypingOff);
      if (myTyping) { myTyping = false; Sock.send({ type: "typing", conversation_id: id, on: false }); }
    }
    reply.addEventListener("input", () => {
      send.disabled = reply.disabled || !reply.value.trim();
      reply.style.height = "auto";
      reply.style.height = Math.min(reply.scrollHeight, 200) + "px";
      if (!isMine(conv())) return;
      if (reply.value.trim()) {
        if (!myTyping || Date.now() - myTypingAt > 4000) { myTyping = true; myTypingAt = Date.now(); Sock.send({ type: "typing", conversation_id: id, on: true }); }
        clearTimeout(myTypingOff);
        myTypingOff = setTimeout(stopTyping, 5000);
      } else stopTyping();
    });
    const picker = CannedPicker(reply, canned);
    reply.addEventListener("keydown", (e) => {
      if (picker.key(e)) return;
      if (e.key === "Enter" && !e.shiftKey && !e.isComposing) { e.preventDefault(); submit(); }
    });
    composer.addEventListener("submit", (e) => { e.preventDefault(); submit(); });
    function pendingEl(text, cid) {
      const t = h("div", { class: "fc-text", dir: "auto" }, text);
      const state = h("span", { class: "fc-pending-state" }, T.sending);
      const e = h("div", { class: "fc-msg fc-msg-agent fc-msg-mine fc-pending", data: { sender: "agent" } },
        h("div", { class: "fc-msg-meta" }, h("span", { class: "fc-msg-author" }, T.you), state), h("div", { class: "fc-bubble" }, t));
      e._state = state;
      pending.set(cid, e);
      live.appendChild(e);
      stick(true);
      return e;
    }
    async function deliver(text, cid, el) {
      try {
        let r;
        if (Sock.up) {
          try { r = (await Sock.request({ type: "send", conversation_id: id, text, client_msg_id: cid })).result; }
          catch (e) { if (e.status !== 0) throw e; }
        }
        if (!r) r = await api("POST", path + "/agent-messages", { text, client_msg_id: cid });
        if (r && r.message) { const c = conv(); onMessage(r.message); insert(r.message); touch(); if (c) paintState(); }
      } catch (e) {
        el.classList.add("fc-failed");
        clear(el._state).append(h("span", null, T.not_sent + ": " + e.message + " "), h("button", {
          type: "button", class: "fc-link-btn", onclick: () => { el.classList.remove("fc-failed"); el._state.textContent = T.sending; deliver(text, cid, el); }
        }, T.retry_send));
      }
    }
    function submit() {
      const text = reply.value.trim();
      if (!text || reply.disabled) return;
      const cid = uuid();
      stopTyping();
      reply.value = "";
      reply.style.height = "auto";
      send.disabled = true;
      deliver(text, cid, pendingEl(text, cid));
    }

    // --- load
    paintState();
    sideView.changed();
    GET(path + "/detail").then((d) => {
      if (!alive) return;
      loading.remove();
      upsert(d);
      visitorRead = d.visitor_read_seq || 0;
      (d.messages || []).forEach(insert);
      if (!(d.messages || []).length) minSeq = 1;
      for (const t of d.transitions || []) eventRow(transitionText(t), t.at, t.to);
      loaded = true;
      touch();
      paintState();
      sideView.detail(d);
      doRelayout();
      stick(true);
      subscribe();
      markRead();
    }).catch((e) => {
      if (!alive || e.status === 401) return;
      loading.remove();
      clear(thread).appendChild(emptyState("alert", e.status === 404 ? T.conv_missing : fmt(T.load_failed, { e: e.message }), null,
        h("a", { class: "fc-btn fc-btn-secondary", href: "/console/inbox" }, T.back_inbox)));
      composeWrap.hidden = true;
    });

    return {
      id, frame, resubscribe,
      destroy() {
        alive = false;
        stopTyping();
        clearTimeout(readTimer);
        clearTimeout(typingTimer);
        clearInterval(stateTicker);
        cancelAnimationFrame(relayoutFrame);
        D.removeEventListener("visibilitychange", onVisible);
        if (subscribed) Sock.send({ type: "unsubscribe", conversation_id: id });
        sideView.destroy();
        picker.destroy();
      }
    };
  }

  // ---------------------------------------------------------------- saved replies ("/" in the reply box)
  function loadCanned(force) {
    if (S.canned && !force && Date.now() - S.cannedAt < 60000) return Promise.resolve(S.canned);
    return GET("/api/canned-replies").then((r) => {
      S.canned = (r && r.canned_replies) || [];
      S.cannedAt = Date.now();
      return S.canned;
    }).catch(() => S.canned || []);
  }
  function CannedPicker(ta, list) {
    let openAt = -1, active = 0, shown = [];
    function token() {
      const before = ta.value.slice(0, ta.selectionStart);
      const m = /(^|\s)\/([\w-]*)$/.exec(before);
      return m ? { at: before.length - m[2].length - 1, q: m[2].toLowerCase() } : null;
    }
    function close() {
      openAt = -1;
      list.hidden = true;
      ta.removeAttribute("aria-activedescendant");
      ta.setAttribute("aria-expanded", "false");
    }
    function paint(tk) {
      clear(list);
      const all = S.canned || [];
      shown = all.filter((c) => str(c.shortcut).toLowerCase().startsWith(tk.q));
      if (!shown.length) shown = all.filter((c) => str(c.shortcut).toLowerCase().includes(tk.q) || str(c.text).toLowerCase().includes(tk.q));
      active = Math.min(active, Math.max(0, shown.length - 1));
      if (!shown.length) {
        list.appendChild(h("li", { class: "fc-canned-empty", role: "presentation" }, all.length ? fmt(T.canned_none, { q: tk.q }) : T.canned_empty));
      }
      shown.slice(0, 8).forEach((c, i) => {
        const li = h("li", { class: "fc-canned-item", role: "option", id: list.id + "-" + i, "aria-selected": String(i === active) },
          h("span", { class: "fc-canned-key" }, "/" + c.shortcut), h("span", { class: "fc-canned-text" }, c.text));
        li.addEventListener("mousedown", (e) => { e.preventDefault(); choose(i); });
        list.appendChild(li);
      });
      list.hidden = false;
      ta.setAttribute("aria-expanded", "true");
      if (shown.length) ta.setAttribute("aria-activedescendant", list.id + "-" + active); else ta.removeAttribute("aria-activedescendant");
      const sel = list.querySelector('[aria-selected="true"]');
      if (sel) sel.scrollIntoView({ block: "nearest" });
    }
    function check() {
      const tk = token();
      if (!tk || ta.disabled) return close();
      openAt = tk.at;
      if (!S.canned) { loadCanned().then(() => { const t = token(); if (t) paint(t); }); return; }
      paint(tk);
      if (Date.now() - S.cannedAt > 60000) loadCanned(true).then(() => { const t = token(); if (t && openAt >= 0) paint(t); });
    }
    function choose(i) {
      const c = shown[i];
      const tk = token();
      if (!c || !tk) return close();
      const end = ta.selectionStart;
      ta.value = ta.value.slice(0, tk.at) + c.text + ta.value.slice(end);
      const caret = tk.at + c.text.length;
      ta.setSelectionRange(caret, caret);
      close();
      ta.dispatchEvent(new Event("input"));
      ta.focus();
    }
    ta.addEventListener("input", check);
    ta.addEventListener("click", check);
    ta.addEventListener("blur", () => setTimeout(close, 150));
    return {
      key(e) {
        if (list.hidden) return false;
        const n = Math.min(shown.length, 8);
        if (e.key === "ArrowDown" || e.key === "ArrowUp") {
          e.preventDefault();
          if (n) { active = (active + (e.key === "ArrowDown" ? 1 : n - 1)) % n; paint(token() || { q: "" }); }
          return true;
        }
        if ((e.key === "Enter" || e.key === "Tab") && !e.shiftKey && n) { e.preventDefault(); choose(active); return true; }
        if (e.key === "Escape") { e.preventDefault(); e.stopPropagation(); close(); return true; }
        return false;
      },
      destroy: close
    };
  }

  // ---------------------------------------------------------------- the contact panel
  const STAGES = ["new", "contacted", "qualified", "converted", "lost"];
  const stageLabel = (s) => T["st_" + s] || str(s);
  function digits(s) { return str(s).replace(/[^\d+]/g, "").replace(/^00/, "+"); }
  function section(key, title, body, o) {
    let openIt = true;
    try { openIt = localStorage.getItem("fc:sec:" + key) !== "closed"; } catch (e) { /* default open */ }
    const count = h("span", { class: "fc-section-count" });
    const d = h("details", { class: "fc-section fc-section-" + key, open: openIt },
      h("summary", { class: "fc-section-head" }, h("span", { class: "fc-section-title" }, title), count, icon("down", "fc-section-caret")),
      h("div", { class: "fc-section-body" }, body));
    d.addEventListener("toggle", () => { try { localStorage.setItem("fc:sec:" + key, d.open ? "open" : "closed"); } catch (e) { /* ignore */ } });
    d._count = count;
    return d;
  }
  function bookingWhen(b) {
    if (b.date && b.time) {
      const d = new Date(b.date + "T00:00:00");
      return (isNaN(d) ? b.date : dfmt.format(d)) + " · " + b.time;
    }
    return b.starts_at ? full(Date.parse(b.starts_at)) : "";
  }
  const bookingStatus = (s) => T["b_" + s] || str(s);
  function statusChip(s) {
    const cls = s === "confirmed" ? "fc-chip-accent" : s === "cancelled" ? "fc-chip-danger" : s === "no_show" ? "fc-chip-warn" : "fc-chip-muted";
    return h("span", { class: "fc-chip " + cls }, bookingStatus(s));
  }
  function tempChip(lead) {
    const t = str(lead.temperature);
    const cls = /scorch|very hot|hot/i.test(t) ? "fc-chip-danger" : /warm/i.test(t) ? "fc-chip-warn" : "fc-chip-info";
    return h("span", { class: "fc-chip " + cls }, /hot|scorch/i.test(t) ? icon("fire") : null, t);
  }

  function SidePanel(side, id, conv) {
    let alive = true, patient = null, lead = null, resolving = null, detail = null, orig = {};
    const path = "/api/conversations/" + encodeURIComponent(id);

    // contact
    const fName = input("name", "", { autocomplete: "off", "data-field": "name contact.name" });
    const fEmail = input("email", "", { type: "email", autocomplete: "off", spellcheck: false, "data-field": "email contact.email" });
    const fPhone = input("phone", "", { type: "tel", autocomplete: "off", "data-field": "phone contact.phone" });
    const saveBtn = button(T.save_contact, { kind: "primary", size: "sm", type: "submit", cls: "fc-save-contact", disabled: true });
    const contact = h("form", { class: "fc-contact", novalidate: true },
      field(T.name, fName), field(T.email, fEmail), field(T.phone, fPhone), h("div", { class: "fc-form-actions" }, saveBtn));
    const vals = () => ({ name: fName.value.trim(), email: fEmail.value.trim(), phone: fPhone.value.trim() });
    const isDirty = () => { const v = vals(); return v.name !== str(orig.name) || v.email !== str(orig.email) || v.phone !== str(orig.phone); };
    contact.addEventListener("input", () => { saveBtn.disabled = !isDirty(); });
    function fillContact(force) {
      if (!force && isDirty()) return;
      const ct = (conv().variables && conv().variables.contact) || {};
      orig = { name: str((patient && patient.name) || ct.name), email: str((patient && patient.email) || ct.email), phone: str((patient && patient.phone) || ct.phone) };
      fName.value = orig.name; fEmail.value = orig.email; fPhone.value = orig.phone;
      saveBtn.disabled = true;
    }
    contact.addEventListener("submit", (e) => {
      e.preventDefault();
      if (!isDirty()) return;
      clearErrors(contact);
      busy(saveBtn, async () => {
        const v = vals(), changed = {};
        for (const k of ["name", "email", "phone"]) if (v[k] !== str(orig[k])) changed[k] = v[k];
        try {
          if (patient) {
            patient = Object.assign(patient, await api("PUT", "/api/patients/" + patient.id, changed));
          }
          // The conversation's own contact (what the inbox shows) follows; a new contact becomes a patient.
          const ct = {};
          for (const k of Object.keys(changed)) ct[k] = changed[k] === "" ? null : changed[k];
          const r = await api("PATCH", path + "/variables", { contact: ct }).catch((x) => { if (!patient) throw x; return null; });
          const c = conv();
          if (r && r.variables) { c.variables = r.variables; touchConv(); }
          fillContact(true);
          toast(T.contact_saved, "ok");
          if (!patient) resolve(true);
        } catch (x) { showError(contact, x); }
      }, T.saving);
    });
    function touchConv() { if (S.inboxView) listeners.forEach((fn) => fn({ type: "conversation" }, id)); }

    // header card
    const idName = h("div", { class: "fc-side-name" });
    const idSub = h("div", { class: "fc-side-sub" });
    const idAvatar = h("span");
    const card = h("div", { class: "fc-side-card" }, idAvatar, h("div", { class: "fc-side-id" }, idName, idSub));

    // lead
    const leadBox = h("div", { class: "fc-lead" }, h("p", { class: "fc-muted" }, T.loading));
    // bookings
    const bookBox = h("div", { class: "fc-bookings" }, h("p", { class: "fc-muted" }, T.loading));
    // notes
    const noteList = h("ul", { class: "fc-notes" });
    const noteText = h("textarea", { class: "fc-input fc-textarea fc-note", name: "note", rows: 2, placeholder: T.note_ph, "aria-label": T.notes, "data-field": "text" });
    const addNote = button(T.add_note, { size: "sm", icon: "note", cls: "fc-add-note", type: "submit" });
    const noteForm = h("form", { class: "fc-note-form", novalidate: true }, noteText, h("div", { class: "fc-form-actions" }, h("span", { class: "fc-hint" }, T.notes_hint), addNote));
    const notesSec = section("notes", T.notes, [noteList, noteForm]);
    // details, previous
    const varsBox = h("div", { class: "fc-vars" });
    const prevBox = h("div", { class: "fc-prev" });
    const leadSec = section("lead", T.lead, leadBox);
    const bookSec = section("bookings", T.bookings, bookBox);
    const prevSec = section("previous", T.previous, prevBox);

    side.append(h("div", { class: "fc-side-scroll" }, card, section("contact", T.contact, contact), leadSec, bookSec, notesSec, prevSec, section("details", T.variables, varsBox)));

    function paintCard() {
      const c = conv();
      const name = convName(c);
      clear(idAvatar).appendChild(avatar(name, c.id, "fc-avatar-lg"));
      idName.textContent = name;
      add(clear(idSub), [h("span", null, T.started + " " + when(c.created_at)), c.channel ? h("span", null, " · " + c.channel) : null]);
    }
    function paintLead() {
      clear(leadBox);
      if (!lead) { leadBox.appendChild(h("p", { class: "fc-muted" }, T.no_lead)); leadSec._count.textContent = ""; return; }
      leadSec._count.textContent = "";
      const stage = isAdmin() ? select("stage", STAGES.map((s) => [s, stageLabel(s)]), lead.stage, { "aria-label": T.stage, class: "fc-input fc-select fc-select-sm" })
        : h("span", { class: "fc-chip fc-chip-plain fc-stage" }, stageLabel(lead.stage));
      if (isAdmin()) stage.addEventListener("change", async () => {
        const was = lead.stage;
        try { Object.assign(lead, await api("PATCH", "/api/leads/" + lead.id + "/stage", { stage: stage.value })); toast(T.saved_ok, "ok"); }
        catch (e) { stage.value = was; fail(e); }
      });
      add(leadBox, [
        h("div", { class: "fc-lead-top" },
          h("div", { class: "fc-score" }, h("span", { class: "fc-score-n" }, String(Math.round(lead.score * 10) / 10)), h("span", { class: "fc-score-l" }, T.score)),
          tempChip(lead), h("div", { class: "fc-lead-stage" }, h("span", { class: "fc-mini-label" }, T.stage), stage)),
        lead.treatment_interest ? h("div", { class: "fc-kv" }, h("span", null, T.interest), h("span", null, lead.treatment_interest)) : null]);
      const why = h("ul", { class: "fc-why" }, h("li", { class: "fc-muted" }, T.loading));
      leadBox.appendChild(h("details", { class: "fc-why-box" }, h("summary", null, T.why_score), why));
      GET("/api/leads/" + lead.id + "/history").then((r) => {
        clear(why);
        const list = (r && r.data) || [];
        if (!list.length) why.appendChild(h("li", { class: "fc-muted" }, T.none));
        for (const x of list) {
          const delta = (x.score_after || 0) - (x.score_before || 0);
          why.appendChild(h("li", null, h("span", { class: "fc-why-pts" + (delta < 0 ? " fc-neg" : "") }, (delta >= 0 ? "+" : "") + Math.round(delta * 10) / 10),
            h("span", { class: "fc-why-text" }, str(x.reason) || str(x.kind))));
        }
      }).catch(() => { clear(why).appendChild(h("li", { class: "fc-muted" }, T.none)); });
    }
    function paintBookings(list) {
      clear(bookBox);
      list = Array.isArray(list) ? list : [];
      bookSec._count.textContent = list.length ? String(list.length) : "";
      if (!list.length) { bookBox.appendChild(h("p", { class: "fc-muted" }, T.no_bookings)); return; }
      const now = Date.now();
      const up = list.filter((b) => Date.parse(b.starts_at || "") >= now && b.status === "confirmed").sort((a, b) => Date.parse(a.starts_at) - Date.parse(b.starts_at));
      const past = list.filter((b) => up.indexOf(b) < 0);
      for (const [label, l] of [[T.upcoming, up], [T.past, past]]) {
        if (!l.length) continue;
        bookBox.appendChild(h("div", { class: "fc-mini-label" }, label));
        bookBox.appendChild(h("ul", { class: "fc-booking-list" }, l.slice(0, 8).map((b) => h("li", { class: "fc-booking-item" },
          h("div", { class: "fc-booking-when" }, bookingWhen(b)), statusChip(b.status),
          h("div", { class: "fc-booking-what" }, [b.service, b.doctor_name].filter(Boolean).join(" · "))))));
      }
    }
    function paintNotes(list) {
      clear(noteList);
      notesSec._count.textContent = list.length ? String(list.length) : "";
      if (!list.length) noteList.appendChild(h("li", { class: "fc-muted fc-notes-empty" }, T.no_notes));
      for (const n of list) {
        const who = str(n.agent && n.agent.name);
        noteList.appendChild(h("li", { class: "fc-note-item", data: { id: n.id } },
          h("div", { class: "fc-note-meta" }, avatar(who, "agent" + (n.agent && n.agent.id), "fc-avatar-xs"), h("span", { class: "fc-note-who" }, who), h("time", { title: full(n.created_at) }, when(n.created_at))),
          h("div", { class: "fc-note-text" }, str(n.text))));
      }
    }
    let notes = [];
    function loadNotes() {
      GET(path + "/notes").then((r) => { if (alive) { notes = (r && r.notes) || []; paintNotes(notes); } }).catch((e) => {
        if (!alive) return;
        clear(noteList).appendChild(h("li", { class: "fc-muted" }, e.status === 404 || e.status === 405 ? T.notes_unavailable : e.message));
      });
    }
    noteForm.addEventListener("submit", (e) => {
      e.preventDefault();
      const text = noteText.value.trim();
      if (!text) { noteText.focus(); return; }
      clearErrors(noteForm);
      busy(addNote, async () => {
        try {
          const n = await api("POST", path + "/notes", { text });
          notes.push(n);
          paintNotes(notes);
          noteText.value = "";
        } catch (x) { showError(noteForm, x); }
      }, T.saving);
    });
    noteText.addEventListener("keydown", (e) => { if (e.key === "Enter" && (e.metaKey || e.ctrlKey)) { e.preventDefault(); noteForm.requestSubmit(); } });

    function flat(obj, prefix, out) {
      for (const k of Object.keys(obj || {})) {
        const v = obj[k], key = prefix ? prefix + "." + k : k;
        if (v && typeof v === "object" && !Array.isArray(v) && Object.keys(v).length && key.split(".").length < 3) flat(v, key, out);
        else out.push([key, typeof v === "string" ? v : JSON.stringify(v)]);
      }
      return out;
    }
    function paintVars() {
      const c = conv();
      const vars = Object.assign({}, c.variables || {});
      delete vars.contact;
      const rows = [[T.channel, str(c.channel)], [T.started, full(c.created_at)], [T.bot, botName(c.bot_id)]];
      if (detail && detail.model_usage && detail.model_usage.total_tokens) rows.push([T.tokens, String(detail.model_usage.total_tokens)]);
      rows.push(["id", c.id]);
      const list = flat(vars, "", []);
      clear(varsBox).appendChild(h("dl", { class: "fc-dl" }, rows.concat(list).map(([k, v]) =>
        [h("dt", null, k), h("dd", { title: v.length > 60 ? v : null }, v.length > 160 ? v.slice(0, 160) + "…" : v)])));
    }
    function paintPrev() {
      const c = conv();
      const ct = (c.variables && c.variables.contact) || {};
      const email = str((patient && patient.email) || ct.email).toLowerCase(), phone = digits((patient && patient.phone) || ct.phone);
      const ids = new Set();
      if (lead && lead.conversation_id) ids.add(lead.conversation_id);
      for (const b of (patient && patient.bookings) || []) if (b.conversation_id) ids.add(b.conversation_id);
      const found = [];
      for (const x of S.convs.values()) {
        if (x.id === id) continue;
        const xc = (x.variables && x.variables.contact) || {};
        if (ids.has(x.id) || (email && str(xc.email).toLowerCase() === email) || (phone && phone.length > 6 && digits(xc.phone) === phone)) found.push(x);
      }
      ids.delete(id);
      for (const f of found) ids.delete(f.id);
      clear(prevBox);
      prevSec._count.textContent = found.length + ids.size ? String(found.length + ids.size) : "";
      if (!found.length && !ids.size) { prevBox.appendChild(h("p", { class: "fc-muted" }, T.no_previous)); return; }
      const ul = h("ul", { class: "fc-prev-list" });
      found.sort((a, b) => lastAt(b) - lastAt(a)).slice(0, 10).forEach((x) => ul.appendChild(h("li", null,
        h("a", { href: "/console/c/" + encodeURIComponent(x.id), class: "fc-prev-link" }, h("span", { class: "fc-prev-when" }, when(lastAt(x))),
          h("span", { class: "fc-prev-text" }, str(x.last_message && x.last_message.content) || T.no_messages), x.status === "closed" ? h("span", { class: "fc-chip fc-chip-muted" }, T.closed) : null))));
      for (const other of ids) ul.appendChild(h("li", null, h("a", { href: "/console/c/" + encodeURIComponent(other), class: "fc-prev-link" }, h("span", { class: "fc-prev-text" }, T.open_conv + " " + other.slice(-6)))));
      prevBox.appendChild(ul);
    }

    // The conversation's CRM contact: named by the detail when the server says, else found by the
    // contact's email or phone.
    function resolve(force) {
      if (resolving && !force) return resolving;
      const c = conv();
      const ct = (c.variables && c.variables.contact) || {};
      const pid = c.contact_id || c.patient_id || (c.contact && c.contact.id) || null;
      resolving = (async () => {
        let p = null;
        if (pid) p = await GET("/api/patients/" + pid).catch(() => null);
        for (const k of [ct.email, ct.phone]) {
          if (p || !k) continue;
          const list = await GET("/api/patients" + q({ search: k, limit: 10 })).catch(() => []);
          const hit = (Array.isArray(list) ? list : []).find((x) => (ct.email && str(x.email).toLowerCase() === str(ct.email).toLowerCase()) || (ct.phone && digits(x.phone) === digits(ct.phone)));
          if (hit) p = await GET("/api/patients/" + hit.id).catch(() => hit);
        }
        if (!alive) return;
        patient = p;
        lead = p && p.lead ? p.lead : null;
        fillContact(false);
        paintLead();
        paintBookings(p && p.bookings);
        if (p) GET("/api/bookings" + q({ patient_id: p.id, limit: 50 })).then((l) => { if (alive && Array.isArray(l)) paintBookings(l); }).catch(() => {});
        paintPrev();
      })().catch(() => {}).finally(() => { resolving = null; });
      return resolving;
    }

    paintCard();
    fillContact(true);
    loadNotes();
    let lastContact = JSON.stringify((conv().variables || {}).contact || {});
    return {
      changed() {
        if (!alive) return;
        paintCard();
        const now = JSON.stringify((conv().variables || {}).contact || {});
        if (now !== lastContact) { lastContact = now; fillContact(false); resolve(true); }
      },
      detail(d) {
        detail = d;
        paintCard();
        fillContact(false);
        paintVars();
        lastContact = JSON.stringify((conv().variables || {}).contact || {});
        resolve(true);
      },
      destroy() { alive = false; }
    };
  }

  // ================================================================ admin pages
  const RENDER = {};
  //@@ADMIN@@

  // ---------------------------------------------------------------- start
  if (D.readyState === "loading") D.addEventListener("DOMContentLoaded", route);
  else route();
})();
