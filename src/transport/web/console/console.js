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
    skip: "Skip to content", optional: "optional", save: "Save changes", saving: "Saving…",
    cancel: "Cancel", close: "Close", delete: "Delete", discard: "Discard", remove: "Remove",
    copy: "Copy", copied: "Copied to the clipboard", copy_failed: "Copy it by hand: the browser refused",
    unsaved: "You have unsaved changes", leave_unsaved: "You have unsaved changes. Leave this page and lose them?",
    edit: "Edit", yes: "Yes", no: "No", none: "None", all: "All", default_: "Server default", confirm: "Confirm",
    // sign-in
    signin_title: "Sign in to your front desk", signin_sub: "Answer your patients' chats and run your assistant.",
    email: "Email", password: "Password", signin: "Sign in", signing_in: "Signing in…",
    signin_rate: "Too many attempts. Try again in {s} s.", signin_empty: "Enter your email and password.",
    session_ended: "Your session has ended. Please sign in again.", signed_out: "You have signed out.",
    setpw_title: "Choose your password", setpw_sub: "You'll use it with your email to sign in.",
    new_password: "New password", repeat_password: "Repeat the password", setpw_button: "Set password and sign in",
    setpw_hint: "At least 10 characters.", setpw_mismatch: "The two passwords are not the same",
    setpw_short: "Use at least 10 characters", setpw_notoken: "This link has no token. Ask your admin for a new invite link.",
    // shell
    nav_main: "Main", nav_admin: "Settings", signout: "Sign out", me_role_admin: "Admin", me_role_agent: "Agent",
    live: "Live", connecting: "Connecting…", reconnecting: "Reconnecting…", reconnect_in: "Reconnecting in {s} s",
    offline: "Offline", alerts_on: "Turn on desktop alerts", alerts_turn_on: "Turn on alerts", alerts_blocked: "Alerts blocked",
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
    search: "Search name, email, text", filters: "Filters", owner: "Owner", status: "Status", agent: "Agent", bot: "Bot",
    unread_only: "Unread only", any: "Any", f_all: "Everyone", f_queued: "Waiting for a person", f_mine: "Mine",
    f_agent: "With a person", f_bot: "With the bot", s_open: "Open", s_closed: "Closed", s_all: "Open and closed",
    g_queued: "Waiting for a person", g_mine: "Mine", g_open: "All open", g_results: "Conversations",
    inbox_empty: "No conversations match.", inbox_empty_all: "No open conversations. New chats appear here as they start.",
    load_more: "Load older conversations", loading_more: "Loading…", visitor: "Visitor", you: "You", bot_name: "Bot",
    waiting: "Waiting {d}", awaiting: "Awaiting reply {d}", unread: "{n} unread", conv_count: "{n} open",
    no_messages: "No messages yet", attachment: "Attachment",
    pick_conv: "Pick a conversation", pick_conv_sub: "Conversations waiting for a person come first, with how long they've waited.",
    handoff_notif: "{name} is asking for a person",
    // conversation
    take_over: "Take over", taking_over: "Taking over…", hand_back: "Hand back to bot", close_conv: "Close",
    close_confirm: "Close this conversation?", close_confirm_text: "The visitor will see that the conversation has ended. This can't be undone.",
    owner_bot: "Bot", owner_you: "You", closed: "Closed",
    lock_bot: "The bot is answering. Take over to reply yourself.",
    lock_queued: "{name} asked for a person {d} ago.", lock_other: "{agent} is handling this conversation.",
    lock_closed: "This conversation is closed.", taken_by: "{name} already has this conversation",
    reply_ph: "Reply to {name}…  Type / for saved replies", reply_label: "Reply", send: "Send",
    reply_hint: "Enter to send · Shift+Enter for a new line · / for saved replies",
    typing: "{name} is typing…", streaming: "typing…", seen: "Seen", sending: "Sending…", not_sent: "Not sent", retry_send: "Retry",
    earlier: "Load earlier messages", start_of_conv: "Start of the conversation",
    interrupted: "Cut off by take-over", unanswered: "Couldn't answer", handoff_chip: "Asked for a person",
    fallback: "Built-in answer", sources: "Sources", offered: "Offered",
    ev_queued: "{by} asked for a person", ev_agent: "{agent} took over", ev_bot: "Handed back to the bot",
    ev_closed: "Conversation closed", by_visitor: "The visitor", by_bot: "The bot", by_api: "The API", by_system: "The system",
    by_agent: "An agent", by_rule: "The bot's hand-off rule",
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
    variables: "Conversation details", channel: "Channel", started: "Started",
    previous: "Previous conversations", no_previous: "None found.", tokens: "Model tokens",
    interest: "Interest", source: "Source",
    // stages
    st_new: "New", st_contacted: "Contacted", st_qualified: "Qualified", st_converted: "Converted", st_lost: "Lost",
    // admin common
    bot_pick: "Bot", saved_ok: "Changes saved", discard_ok: "Changes discarded",
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
    reload_preview: "Reload preview",
    // knowledge
    kn_title: "Knowledge", kn_sub: "What the bot answers from, and the questions to review: those it couldn't answer and those where its facts and documents disagree.",
    sources_tab: "Sources", unanswered_tab: "To review", add_source: "Add source",
    k_url: "Website", k_file: "File", k_text: "Text", k_qa: "Q&A", k_type: "Type",
    url: "Address", crawl: "Follow links on the site", max_pages: "Pages at most", max_depth: "Link depth",
    sitemap: "Read the sitemap", title: "Title", content: "Text", question: "Question", answer: "Answer",
    file_pick: "File", file_hint: "PDF, HTML, Markdown, plain text or CSV.", all_bots: "Every bot", applies_to: "Used by",
    st_waiting: "Waiting", st_learning: "Learning", st_learned: "Learned", st_failed: "Failed",
    chunks: "{n} passages", chunk_one: "1 passage", pages: "{n} pages", page_one: "1 page", relearn: "Learn again", relearning: "Learning again",
    del_source: "Delete this source?", del_source_text: "The bot stops answering from it at once.",
    sources_empty: "No sources yet. Add your website, a document or Q&A pairs.",
    unanswered_empty: "Nothing to review. Questions the bot can't answer, or answers where its facts and documents disagree, show up here.",
    asked: "Asked {n}×", last_asked: "last {t}", conflict_chip: "Facts and knowledge disagree",
    conflict_hint: "The bot answered with its facts. Correct the fact or the document that is wrong, then dismiss this.", answer_ph: "Write the answer the bot should give…",
    add_answer: "Save as Q&A", dismiss: "Dismiss", answered: "Added to the knowledge base as a Q&A",
    try_q: "Try a question", try_ph: "e.g. Is there parking?", ask: "Ask", would_answer: "The bot would answer",
    no_answer: "The bot has no answer from its knowledge.", col_key: "Key", col_http: "HTTP", conv_id: "Conversation id",
    ic_chat: "Chat", ic_help: "Help", ic_calendar: "Calendar", ic_tooth: "Tooth", col_event: "Event", col_attempts: "Attempts", col_source: "Source", col_learned: "Learned", col_when: "Last learned", open_conv: "Open conversation",
    // bookings
    bk_title: "Bookings", bk_sub: "The practice's appointments per doctor.", day: "Day", week: "Week",
    prev: "Previous", next: "Next", today_btn: "Today", doctor: "Doctor", all_doctors: "All doctors",
    bk_empty: "No appointments on this day.", bk_week_empty: "No appointments this week.",
    b_confirmed: "Confirmed", b_cancelled: "Cancelled", b_completed: "Completed", b_no_show: "No-show",
    cancel_booking: "Cancel booking", complete: "Mark completed", no_show: "Mark no-show", cancel_reason: "Reason for cancelling",
    src_api: "the API", src_external: "the website's booking form", src_chat: "chat",
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
    redeliver: "Redeliver", redelivered: "Queued for delivery again", secret: "Signing secret",
    reveal: "Reveal secret", rotate: "Rotate secret", rotated: "Secret rotated; the old one keeps signing for 24 hours.",
    del_endpoint: "Delete this endpoint?", wh_empty: "No endpoints yet.", wh_empty_text: "Add an HTTPS address to receive events such as new bookings, new leads and hand-off requests.", del_empty: "No deliveries yet.",
    d_pending: "Pending", d_delivered: "Delivered", d_dead: "Failed", failing_since: "Failing since {t}",
    older: "Older", enable: "Enable", disable: "Disable", secret_once: "Shown now; you can reveal it again later.",
    // flows
    flows_title: "Flows", flows_sub: "Scripted conversations: qualify, collect details, book, route to a person.",
    new_flow: "New flow", flow_name: "Name", definition: "Definition (JSON)", validate: "Validate", valid: "The flow is valid",
    format: "Format", save_draft: "Save draft", dry_run: "Dry run", run: "Run", dry_messages: "Visitor messages, one per line",
    deploy: "Deploy", undeploy: "Stop", undeploy_on: "Stop the flow on {c}", deployed: "Deployed version {v} to {c}",
    ch_widget: "Website widget", ch_api: "API channel", ch_rest: "REST", version: "v{v}", draft: "Draft",
    flows_empty: "No flows yet.", del_flow: "Delete this flow?",
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
  // The server's messages start in lower case, to read well inside a sentence; shown alone they
  // start with a capital.
  const sentence = (s) => (s ? s.charAt(0).toUpperCase() + s.slice(1) : s);
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
  // localStorage may be missing or throw (privacy modes): preferences then last for the page only.
  function store(k) { try { return W.localStorage.getItem(k); } catch (e) { return null; } }

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
      btn.disabled = false;
      btn.removeAttribute("aria-busy");
      if (label && lab) lab.textContent = was;
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
    sound: store("fc:sound") !== "off", presence: "online"
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
    let msg = sentence(str(b.error) || r.statusText || "HTTP " + r.status);
    if (b.code === "rate_limited" || r.status === 429) msg = fmt(T.rate_limited, { s: b.retry_after || r.headers.get("Retry-After") || 1 });
    else if (b.code === "csrf") msg = T.csrf;
    const err = new ApiError(r.status, msg, b);
    if (r.status === 401 && !opt.auth) signedOut(T.session_ended);
    if (r.status === 403 && !opt.auth && S.me) {
      // A refused token may have been replaced: take the session's current one and try once more.
      if (b.code === "csrf" && !opt.retried && (await checkSession())) return api(method, path, body, Object.assign({}, opt, { retried: true }));
      // Otherwise the role may have changed: the session says, and the shell follows.
      if (b.code !== "csrf") recheckRole();
    }
    throw err;
  }
  let roleCheck = 0;
  function recheckRole() {
    if (Date.now() - roleCheck < 3000) return;
    roleCheck = Date.now();
    checkSession();
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
        if (new RegExp("(^|[\\s`'\"(])" + esc(p) + "($|[\\s`'\".,:;)\\[])", "i").test(msg)) { best = f; len = p.length; }
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
      if (s && s.agent && S.me && s.agent.role !== S.me.role) {
        S.me = s.agent;
        S.role = s.agent.role === "admin" ? "admin" : "agent";
        if (S.cleanup) { try { S.cleanup(); } catch (e) { /* rebuilding anyway */ } }
        S.cleanup = null;
        S.page = null;
        S.inboxView = null;
        S.dirty = null;
        closeDialogs();
        buildShell();
        route();
      }
      if (s && s.expires_at) { S.expires = s.expires_at; clearTimeout(expiryTimer); expiryTimer = setTimeout(checkSession, Math.min(Math.max(S.expires - Date.now() + 1000, 5000), 2147000000)); }
      return true;
    }).catch(() => false);
  }
  function closeDialogs() { D.querySelectorAll("dialog.fc-dialog").forEach((x) => { if (x.open) x.close(); x.remove(); }); }
  function signedOut(msg) {
    if (!S.me) return;
    closeDialogs();
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
        err.textContent = T.signin_empty;
        err.hidden = false;
        (email.value.trim() ? pw : email).focus();
        return;
      }
      let retry = 0;
      await busy(submit, async () => {
        try {
          const s = await api("POST", "/api/auth/sign-in", { email: email.value.trim(), password: pw.value }, { auth: true });
          signedIn(s);
        } catch (x) {
          err.textContent = x.message;
          err.hidden = false;
          pw.value = "";
          pw.focus();
          if (x.status === 429) retry = Number(x.body && x.body.retry_after) || 1;
        }
      }, T.signing_in);
      // After `busy` has re-enabled the button, so that the countdown keeps it disabled.
      if (retry) countdown(retry);
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
          err.textContent = x.message;
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
    a.appendChild(h("span", { class: "fc-btn-label" }, perm === "denied" ? T.alerts_blocked : T.alerts_turn_on));
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
    // Only while the person is using the page, else the browser refuses (and says so in the console).
    if (navigator.userActivation && !navigator.userActivation.isActive) {
      D.addEventListener("pointerdown", unlockAudio, { once: true, capture: true });
      D.addEventListener("keydown", unlockAudio, { once: true, capture: true });
      return;
    }
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
        // User Timing marks for benchmarks: the snapshot arrived (then fc:inbox-painted).
        if (W.performance && performance.mark) performance.mark("fc:inbox");
        S.markPaint = true;
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
        // The server searched every message (q); what is loaded is matched here at once.
        if (hits.q === F.search && hits.ids.has(c.id)) return true;
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
      if (S.markPaint && S.synced) { S.markPaint = false; if (W.performance && performance.mark) performance.mark("fc:inbox-painted"); }
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
    const hits = { q: "", ids: new Set() };
    let searchSeq = 0;
    const serverSearch = debounce(async () => {
      const text = F.search, n = ++searchSeq;
      if (text.length < 2) { hits.q = ""; hits.ids = new Set(); return; }
      const o = { q: text.slice(0, 100), limit: 100, bot_id: F.bot };
      if (F.status !== "all") o.status = F.status;
      try {
        const r = await GET("/api/conversations" + q(o));
        if (n !== searchSeq) return;
        hits.q = text;
        hits.ids = new Set();
        for (const it of (r && r.conversations) || []) { upsert(it); hits.ids.add(it.id); }
        schedule();
      } catch (e) { /* the local match stands */ }
    }, 300);
    function restQuery(cursor) {
      const o = { limit: 100, cursor };
      if (F.status !== "all") o.status = F.status;
      if (F.owner === "mine") { o.owner = "agent"; o.agent_id = S.me.id; }
      else if (F.owner) o.owner = F.owner;
      if (F.agent) o.agent_id = F.agent;
      if (F.bot) o.bot_id = F.bot;
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
      if (F.search) serverSearch();
    }
    [owner, status, agentSel, botSel, unread].forEach((e) => e.addEventListener("change", refilter));
    search.addEventListener("input", debounce(() => { F.search = search.value.trim(); schedule(); serverSearch(); }, 120));
    search.addEventListener("keydown", (e) => {
      if (e.key === "ArrowDown") { const f = inbox.querySelector(".fc-conv"); if (f) { e.preventDefault(); f.focus(); } }
      if (e.key === "Escape" && search.value) { search.value = ""; F.search = ""; schedule(); serverSearch(); }
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
    // On a tablet the panel is a drawer over the thread: its own close button, Escape, or a click beside it.
    const sideClose = button(null, { kind: "ghost", icon: "x", aria: T.close, cls: "fc-side-close", onclick: () => { setPanel(false); panelBtn.focus(); } });
    side.prepend(sideClose);
    const outside = (e) => { if (narrow.matches && layout.classList.contains("fc-side-open") && !side.contains(e.target) && !panelBtn.contains(e.target)) setPanel(false); };
    pane.addEventListener("pointerdown", outside);
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
      lock.dataset.kind = lockText.dataset.error ? "taken" : !open ? "closed" : c.owner === "queued" ? "queued" : c.owner === "agent" ? "other" : "bot";
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
          // Older messages go above what the agent is reading, which stays where it is on screen.
          pinned = false;
          list.forEach(insert);
          if (after === 0) minSeq = Math.min(minSeq, 1);
          doRelayout();
          thread.scrollTop = thread.scrollHeight - before;
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
          h("div", { class: "fc-msg-meta" }, h("span", { class: "fc-msg-author" }, icon("bot"), botName(conv().bot_id)), h("span", { class: "fc-streaming-label" }, T.streaming)),
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
        const m = /taken over by (.+?) \(agent/i.exec(e.message) || /already .*by (.+?)(?:[.(]|$)/i.exec(e.message);
        if (m) {
          const msg = fmt(T.taken_by, { name: m[1].trim() });
          lockText.dataset.error = "1";
          lockText.textContent = msg;
          lock.dataset.kind = "taken";
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
        pane.removeEventListener("pointerdown", outside);
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
      rows.push([T.conv_id, c.id]);
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
  function ensureBots() {
    if (S.bots.length) return Promise.resolve(S.bots);
    return GET("/api/bots").then((r) => { S.bots = (r && r.data) || []; onBots(); return S.bots; });
  }
  function currentBot() {
    let id = null;
    try { id = localStorage.getItem("fc:bot"); } catch (e) { /* none */ }
    return S.bots.find((b) => b.id === id) || S.bots[0] || null;
  }
  function botSwitch(onchange) {
    if (S.bots.length < 2) return null;
    const s = select("bot_pick", S.bots.map((b) => [b.id, b.name]), currentBot().id, { "aria-label": T.bot_pick, class: "fc-input fc-select fc-select-sm fc-bot-switch" });
    s.addEventListener("change", () => {
      if (S.dirty && !W.confirm(T.leave_unsaved)) { s.value = currentBot().id; return; }
      S.dirty = null;
      try { localStorage.setItem("fc:bot", s.value); } catch (e) { /* memory only */ }
      onchange();
    });
    return s;
  }
  function card(title, sub, body, o) {
    o = o || {};
    return h("section", { class: "fc-card" + (o.cls ? " " + o.cls : ""), "aria-label": title || null },
      title ? h("div", { class: "fc-card-head" }, h("div", { class: "fc-card-titles" }, h("h2", { class: "fc-card-title" }, title), sub && h("p", { class: "fc-card-sub" }, sub)), o.actions && h("div", { class: "fc-card-actions" }, o.actions)) : null,
      h("div", { class: "fc-card-body" + (o.flush ? " fc-card-flush" : "") }, body));
  }
  // A form's save bar: appears when something changed; Save submits the form.
  function saveBar(onDiscard) {
    const save = button(T.save, { kind: "primary", type: "submit", icon: "check" });
    const discard = button(T.discard, { kind: "ghost", onclick: onDiscard });
    const el = h("div", { class: "fc-savebar", hidden: true, role: "region", "aria-label": T.unsaved },
      h("div", { class: "fc-savebar-inner" }, h("span", { class: "fc-savebar-text" }, icon("info"), T.unsaved), discard, save));
    return { el, save, set(d) { el.hidden = !d; } };
  }
  // Rows the owner adds, removes and orders (facts, quick prompts, wording).
  function repeater(o) {
    const list = h("div", { class: "fc-rep-list" });
    const addBtn = button(o.addLabel, { icon: "plus", size: "sm", kind: "secondary", cls: "fc-rep-add" });
    const empty = h("p", { class: "fc-muted fc-rep-empty" }, o.empty || "");
    function renumber() {
      const rows = Array.from(list.children);
      rows.forEach((row, i) => {
        row.querySelectorAll("[data-field-tpl]").forEach((e) => { e.dataset.field = e.dataset.fieldTpl.replace(/#/g, i); });
        row._up.disabled = i === 0;
        row._down.disabled = i === rows.length - 1;
      });
      empty.hidden = rows.length > 0 || !o.empty;
      addBtn.disabled = !!o.max && rows.length >= o.max;
    }
    function addRow(item) {
      const body = o.make(item || o.blank());
      const up = button(null, { kind: "ghost", size: "sm", icon: "up", aria: T.move_up });
      const down = button(null, { kind: "ghost", size: "sm", icon: "down", aria: T.move_down });
      const rm = button(null, { kind: "ghost", size: "sm", icon: "trash", aria: T.remove });
      const row = h("div", { class: "fc-rep-row" + (o.inline ? " fc-rep-inline" : "") }, h("div", { class: "fc-rep-body" }, body.el), h("div", { class: "fc-rep-tools" }, up, down, rm));
      Object.assign(row, { _get: body.get, _up: up, _down: down });
      up.addEventListener("click", () => { if (row.previousElementSibling) { list.insertBefore(row, row.previousElementSibling); renumber(); o.onchange(); up.focus(); } });
      down.addEventListener("click", () => { if (row.nextElementSibling) { list.insertBefore(row.nextElementSibling, row); renumber(); o.onchange(); down.focus(); } });
      rm.addEventListener("click", () => {
        const next = row.nextElementSibling || row.previousElementSibling;
        row.remove();
        renumber();
        o.onchange();
        (next ? next.querySelector("input, textarea, select") : addBtn).focus();
      });
      list.appendChild(row);
      renumber();
      return row;
    }
    addBtn.addEventListener("click", () => {
      const row = addRow(null);
      const f = row.querySelector("input, textarea, select");
      if (f) f.focus();
      o.onchange();
    });
    (o.items || []).forEach(addRow);
    renumber();
    return { el: h("div", { class: "fc-rep" }, list, empty, addBtn), value: () => Array.from(list.children).map((r) => r._get()) };
  }
  // Tracks whether a form differs from what was loaded; drives the save bar and the leave guard.
  function dirtyWatch(form, collect, bar) {
    let base = JSON.stringify(collect());
    const check = () => {
      const d = JSON.stringify(collect()) !== base;
      bar.set(d);
      S.dirty = d ? form : null;
      S.dirtyPath = location.pathname;
      return d;
    };
    form.addEventListener("input", check);
    form.addEventListener("change", check);
    return { check, reset() { base = JSON.stringify(collect()); check(); } };
  }
  const num = (v) => (v === "" || v == null ? null : Number(v));
  function valueOf(form, name) {
    const e = form.elements[name];
    if (!e) return "";
    if (e.type === "checkbox") return e.checked;
    return e.value;
  }

  // ---------------------------------------------------------------- the bot
  const TOOLS = ["search_knowledge", "check_availability", "book_appointment", "cancel_booking", "capture_contact", "request_human"];
  RENDER.bot = (main) => {
    const wrap = h("div", { class: "fc-page fc-page-form" });
    main.appendChild(wrap);
    const load = () => loadInto(wrap, () => ensureBots().then(() => { const b = currentBot(); return b ? GET("/api/bots/" + encodeURIComponent(b.id)) : null; }), render);
    load();
    function render(bot) {
      if (!bot) { wrap.appendChild(emptyState("bot", T.bot_title, T.none)); return; }
      const s = bot.settings || {};
      const m = s.model || {};
      const F = (name, value, o) => input(name, value, Object.assign({ "data-field": "settings." + name }, o || {}));
      const A = (name, value, rows) => textarea(name, value, { rows: rows || 2, "data-field": "settings." + name });
      const facts = (key, items, add, empty) => repeater({
        items: items || [], addLabel: add, empty, blank: () => ({ title: "", content: "" }), onchange: () => watch.check(),
        make(item) {
          const t = input("", item.title, { placeholder: T.fact_title, "aria-label": T.fact_title, "data-field-tpl": "settings." + key + "[#].title" });
          const c = textarea("", item.content, { rows: 2, placeholder: T.fact_content, "aria-label": T.fact_content, "data-field-tpl": "settings." + key + "[#].content" });
          return { el: h("div", { class: "fc-fact" }, t, c), get: () => ({ title: t.value.trim(), content: c.value.trim() }) };
        }
      });
      const factsRep = facts("company_facts", s.company_facts, T.add_fact, T.facts_empty);
      const policyRep = facts("policies", s.policies, T.add_policy, T.policies_empty);
      const tri = (name, value, on, off) => select(name, [["", T.default_], ["true", on], ["false", off]], value == null ? "" : String(value), { "data-field": "settings.model." + name });
      const bar = saveBar(() => { S.dirty = null; clear(wrap); render(bot); toast(T.discard_ok, "info"); });
      const active = toggle("active", bot.active !== false, T.bot_active);
      const form = h("form", { class: "fc-form fc-bot-settings", novalidate: true },
        pageHead(T.bot_title, T.bot_sub, botSwitch(load)),
        card(T.p_bot, null, [
          h("div", { class: "fc-grid-2" },
            field(T.bot_name_l, input("name", bot.name, { "data-field": "name", maxLength: 200 })),
            field(T.tone, F("tone", s.tone, { list: "fc-tones" }), { hint: T.tone_hint })),
          h("datalist", { id: "fc-tones" }, ["friendly", "warm and reassuring", "professional", "concise", "cheerful"].map((t) => h("option", { value: t }))),
          h("div", { class: "fc-field" }, active, h("div", { class: "fc-hint" }, T.bot_active_hint))]),
        card(T.sec_messages, null, [
          field(T.welcome, A("welcome_message", s.welcome_message, 3), { hint: T.welcome_hint }),
          h("div", { class: "fc-grid-2" },
            field(T.greeting_reply, A("greeting_reply", s.greeting_reply)),
            field(T.thanks_reply, A("thanks_reply", s.thanks_reply)),
            field(T.reply_unknown, A("reply_unknown", s.reply_unknown)),
            field(T.handoff_offer, A("handoff_offer", s.handoff_offer))),
          field(T.attachment_reply, A("attachment_reply", s.attachment_reply))]),
        card(T.sec_facts, null, factsRep.el),
        card(T.sec_policies, null, policyRep.el),
        card(T.sec_handoff, null, [
          h("div", { class: "fc-grid-2" },
            field(T.handoff_waiting, A("handoff_waiting", s.handoff_waiting, 3)),
            field(T.handoff_offline, A("handoff_offline", s.handoff_offline, 3)),
            field(T.handoff_after, F("handoff_after_unanswered", s.handoff_after_unanswered || 0, { type: "number", min: 0, max: 20, step: 1 }), { hint: T.handoff_after_hint }),
            field(T.stream_delay, F("stream_delay_ms", s.stream_delay_ms || 0, { type: "number", min: 0, max: 2000, step: 10 }), { hint: T.stream_delay_hint }))]),
        card(T.sec_model, null, [
          h("div", { class: "fc-grid-3" },
            field(T.model_enabled, tri("enabled", m.enabled, T.model_on, T.model_off)),
            field(T.model_name, input("model", m.model, { "data-field": "settings.model.model", placeholder: "gpt-4o-mini" }), { optional: true }),
            field(T.model_profile, input("profile", m.profile, { "data-field": "settings.model.profile" }), { optional: true }),
            field(T.temperature, input("temperature", m.temperature, { type: "number", min: 0, max: 2, step: 0.1, "data-field": "settings.model.temperature" }), { optional: true }),
            field(T.max_tokens, input("max_tokens", m.max_tokens, { type: "number", min: 1, step: 1, "data-field": "settings.model.max_tokens" }), { optional: true }),
            field(T.timeout, input("timeout_secs", m.timeout_secs, { type: "number", min: 1, max: 120, step: 1, "data-field": "settings.model.timeout_secs" }), { optional: true }),
            field(T.redact, tri("redact_pii", m.redact_pii, T.yes, T.no)),
            field(T.first_tool, select("first_tool", [["", T.none]].concat(TOOLS.map((t) => [t, t])), m.first_tool || "", { "data-field": "settings.model.first_tool" }))),
          h("p", { class: "fc-hint" }, T.model_profile_hint)]),
        card(T.sec_sites, null, field(T.origins, textarea("allowed_origins", (bot.allowed_origins || []).join("\n"), { rows: 3, "data-field": "allowed_origins", placeholder: "https://www.example.com", spellcheck: false }), { hint: T.origins_hint })),
        bar.el);
      wrap.appendChild(form);
      function collect() {
        const st = clone(s);
        for (const k of ["welcome_message", "greeting_reply", "thanks_reply", "reply_unknown", "handoff_offer", "attachment_reply", "tone", "handoff_waiting", "handoff_offline"]) st[k] = valueOf(form, k);
        st.handoff_after_unanswered = Math.max(0, parseInt(valueOf(form, "handoff_after_unanswered"), 10) || 0);
        st.stream_delay_ms = Math.max(0, parseInt(valueOf(form, "stream_delay_ms"), 10) || 0);
        st.company_facts = factsRep.value().filter((f) => f.title || f.content);
        st.policies = policyRep.value().filter((f) => f.title || f.content);
        const mm = Object.assign({}, s.model || {});
        const setOr = (k, v) => { if (v === "" || v == null || (typeof v === "number" && isNaN(v))) delete mm[k]; else mm[k] = v; };
        const tb = (v) => (v === "" ? null : v === "true");
        setOr("enabled", tb(valueOf(form, "enabled")));
        setOr("model", valueOf(form, "model").trim());
        setOr("profile", valueOf(form, "profile").trim());
        setOr("temperature", num(valueOf(form, "temperature")));
        setOr("max_tokens", num(valueOf(form, "max_tokens")));
        setOr("timeout_secs", num(valueOf(form, "timeout_secs")));
        setOr("redact_pii", tb(valueOf(form, "redact_pii")));
        setOr("first_tool", valueOf(form, "first_tool"));
        st.model = Object.keys(mm).length ? mm : null;
        return {
          name: valueOf(form, "name").trim(), active: valueOf(form, "active"), settings: st,
          allowed_origins: valueOf(form, "allowed_origins").split(/\s+/).map((x) => x.trim()).filter(Boolean)
        };
      }
      const watch = dirtyWatch(form, collect, bar);
      form.addEventListener("submit", (e) => {
        e.preventDefault();
        clearErrors(form);
        busy(bar.save, async () => {
          try {
            const saved = await api("PATCH", "/api/bots/" + encodeURIComponent(bot.id), collect());
            Object.assign(bot, saved);
            const i = S.bots.findIndex((b) => b.id === bot.id);
            if (i >= 0) S.bots[i] = Object.assign(S.bots[i], saved);
            watch.reset();
            toast(T.saved_ok, "ok");
          } catch (x) { showError(form, x); }
        }, T.saving);
      });
    }
  };

  // ---------------------------------------------------------------- the widget (with its live preview)
  const WIDGET_STRINGS = ["launcher", "close", "placeholder", "input_label", "send", "attach", "messages", "connecting", "reconnecting",
    "offline", "pending", "queued", "failed", "retry_in", "agent_joined", "agent_left", "ended", "new_conversation", "lead_message",
    "name", "email", "phone", "optional", "submit", "lead_thanks", "err_required", "err_email", "err_phone", "away", "away_known",
    "seen", "too_big", "bad_type", "upload_failed", "uploading", "typing", "unread", "file"];
  const LANGS = [["auto", T.lang_auto], ["en", "English"], ["es", "Español"], ["fr", "Français"], ["de", "Deutsch"], ["pt", "Português"]];
  RENDER.widget = (main) => {
    const wrap = h("div", { class: "fc-page fc-page-wide" });
    main.appendChild(wrap);
    const load = () => loadInto(wrap, () => ensureBots().then(() => { const b = currentBot(); return b ? GET("/api/bots/" + encodeURIComponent(b.id)) : null; }), render);
    load();
    let cleanup = null;
    function render(bot) {
      if (!bot) { wrap.appendChild(emptyState("widget", T.widget_title, T.none)); return; }
      const st = bot.settings || {};
      const w = Object.assign({}, st.widget || {});
      const W_ = (name, value, o) => input(name, value, Object.assign({ "data-field": "settings.widget." + name }, o || {}));
      // colour
      const colorText = W_("primary_color", w.primary_color || "#0F766E", { maxLength: 7, spellcheck: false, class: "fc-input fc-color-text" });
      const colorPick = h("input", { type: "color", class: "fc-color-pick", value: /^#[0-9a-f]{6}$/i.test(w.primary_color || "") ? w.primary_color : "#0f766e", "aria-label": T.colour });
      colorPick.addEventListener("input", () => { colorText.value = colorPick.value.toUpperCase(); colorText.dispatchEvent(new Event("input", { bubbles: true })); });
      colorText.addEventListener("input", () => { if (/^#[0-9a-f]{6}$/i.test(colorText.value.trim())) colorPick.value = colorText.value.trim().toLowerCase(); });
      const swatches = h("div", { class: "fc-swatches" }, ["#0F766E", "#2563EB", "#7C3AED", "#DB2777", "#EA580C", "#0E7490", "#15803D", "#111827"].map((c) => {
        const b = h("button", { type: "button", class: "fc-swatch", "aria-label": c, title: c });
        b.style.background = c;
        b.addEventListener("click", () => { colorText.value = c; colorPick.value = c.toLowerCase(); colorText.dispatchEvent(new Event("input", { bubbles: true })); });
        return b;
      }));
      const radios = (name, options, value, withIcons) => h("div", { class: "fc-seg" + (withIcons ? " fc-seg-icons" : ""), role: "radiogroup" }, options.map(([v, l]) => {
        const id = uid("r");
        return h("span", { class: "fc-seg-item" },
          h("input", { type: "radio", name, value: v, id, checked: v === value, "data-field": "settings.widget." + name }),
          h("label", { for: id, title: l }, withIcons ? icon(v) : null, h("span", { class: withIcons ? "fc-sr" : null }, l)));
      }));
      const prompts = repeater({
        items: (w.quick_prompts || []).map((p) => ({ text: p })), max: 6, inline: true, addLabel: T.add_prompt, blank: () => ({ text: "" }), onchange: () => changed(),
        make(item) {
          const i = input("", item.text, { maxLength: 80, "aria-label": T.quick_prompts, "data-field-tpl": "settings.widget.quick_prompts[#]" });
          return { el: i, get: () => i.value.trim() };
        }
      });
      const strings = repeater({
        items: Object.keys(w.strings || {}).map((k) => ({ key: k, value: w.strings[k] })), inline: true, addLabel: T.add_string, blank: () => ({ key: "", value: "" }), onchange: () => changed(),
        make(item) {
          const k = select("", [["", "…"]].concat(WIDGET_STRINGS.map((x) => [x, x])), item.key, { "aria-label": T.string_key, "data-field-tpl": "settings.widget.strings" });
          const v = input("", item.value, { "aria-label": T.string_value, placeholder: T.string_value });
          return { el: h("div", { class: "fc-string-row" }, k, v), get: () => [k.value, v.value] };
        }
      });
      const lc = w.lead_capture || { enabled: false, when: "before", message: "", fields: [] };
      const lcField = (n) => (lc.fields || []).find((f) => f.name === n);
      const leadFields = h("div", { class: "fc-lead-fields" }, ["name", "email", "phone"].map((n) => {
        const f = lcField(n);
        return h("div", { class: "fc-lead-field" },
          h("label", { class: "fc-check" }, h("input", { type: "checkbox", name: "lc_" + n, checked: !!f }), h("span", null, T[n] || n)),
          h("label", { class: "fc-check fc-check-sub" }, h("input", { type: "checkbox", name: "lcr_" + n, checked: !!(f && f.required) }), h("span", null, T.required)));
      }));
      const bar = saveBar(() => { S.dirty = null; if (cleanup) cleanup(); clear(wrap); render(bot); toast(T.discard_ok, "info"); });
      const form = h("form", { class: "fc-form fc-widget-settings", novalidate: true },
        card(T.sec_look, null, [
          field(T.colour, colorText, { hint: T.colour_hint, wrap: (c) => h("div", { class: "fc-color" }, colorPick, c, swatches) }),
          h("div", { class: "fc-grid-2" },
            h("div", { class: "fc-field" }, h("span", { class: "fc-label" }, T.position), radios("position", [["bottom-right", T.pos_right], ["bottom-left", T.pos_left]], w.position || "bottom-right")),
            h("div", { class: "fc-field" }, h("span", { class: "fc-label" }, T.launcher_icon), radios("launcher_icon", [["chat", T.ic_chat], ["help", T.ic_help], ["calendar", T.ic_calendar], ["tooth", T.ic_tooth]], w.launcher_icon || "chat", true))),
          field(T.launcher_text, W_("launcher_text", w.launcher_text, { maxLength: 40 }), { hint: T.launcher_text_hint }),
          h("div", { class: "fc-grid-2" },
            field(T.w_title, W_("title", w.title, { placeholder: bot.name }), { hint: T.w_title_hint }),
            field(T.w_subtitle, W_("subtitle", w.subtitle), { optional: true })),
          h("div", { class: "fc-grid-2" },
            field(T.avatar_url, W_("avatar_url", w.avatar_url || "", { placeholder: "https://…", spellcheck: false }), { hint: T.avatar_hint }),
            field(T.hours, W_("business_hours_message", w.business_hours_message), { hint: T.hours_hint }))]),
        card(T.sec_words, null, [
          field(T.welcome, textarea("welcome_message", st.welcome_message, { rows: 3, "data-field": "settings.welcome_message" }), { hint: T.welcome_hint }),
          h("div", { class: "fc-field" }, h("span", { class: "fc-label" }, T.quick_prompts), h("span", { class: "fc-hint" }, T.quick_prompts_hint), prompts.el),
          field(T.language, select("language", LANGS, w.language || "auto", { "data-field": "settings.widget.language" })),
          h("details", { class: "fc-more" }, h("summary", null, T.strings), h("p", { class: "fc-hint" }, T.strings_hint), strings.el)]),
        card(T.sec_behaviour, null, [
          h("div", { class: "fc-stack" }, toggle("sound", w.sound !== false, T.sound), toggle("uploads", w.uploads !== false, T.uploads)),
          h("div", { class: "fc-subsection" }, h("h3", { class: "fc-subtitle" }, T.lead_capture),
            toggle("lc_enabled", !!lc.enabled, T.lead_enabled),
            h("div", { class: "fc-grid-2 fc-lc-details" },
              field(T.lead_when, select("lc_when", [["before", T.lead_before], ["during", T.lead_during]], lc.when || "before", { "data-field": "settings.widget.lead_capture.when" })),
              field(T.lead_message, input("lc_message", lc.message, { "data-field": "settings.widget.lead_capture.message" }), { optional: true })),
            h("div", { class: "fc-field", "data-field": "settings.widget.lead_capture.fields" }, h("span", { class: "fc-label" }, T.lead_fields), leadFields))]),
        bar.el);

      // the preview: the real widget in a frame, told about unsaved changes
      const frame = h("iframe", { class: "fc-preview", title: T.preview, src: "/console/preview/" + encodeURIComponent(bot.id), loading: "eager" });
      const snippet = '<script src="' + location.origin + '/widget.js" data-bot="' + bot.id + '" async></script>';
      const previewCol = h("div", { class: "fc-preview-col" },
        h("div", { class: "fc-preview-card" },
          h("div", { class: "fc-preview-head" }, h("span", { class: "fc-preview-title" }, h("span", { class: "fc-live-dot" }), T.preview),
            button(null, { kind: "ghost", size: "sm", icon: "refresh", aria: T.reload_preview, onclick: () => { frame.src = frame.src; } })),
          h("div", { class: "fc-preview-stage" }, h("div", { class: "fc-fake-site", "aria-hidden": "true" }, h("i"), h("i"), h("i"), h("i"), h("i")), frame),
          h("p", { class: "fc-hint fc-preview-note" }, T.preview_note)));
      form.insertBefore(card(T.embed, T.embed_hint, secretBox(snippet, "fc-code")), bar.el);
      wrap.appendChild(h("div", { class: "fc-widget-page" },
        pageHead(T.widget_title, T.widget_sub, botSwitch(() => { if (cleanup) cleanup(); load(); })),
        h("div", { class: "fc-split" }, form, previewCol)));

      function collect() {
        const nw = clone(w);
        nw.primary_color = valueOf(form, "primary_color").trim();
        nw.position = (form.querySelector("input[name=position]:checked") || {}).value || "bottom-right";
        nw.launcher_icon = (form.querySelector("input[name=launcher_icon]:checked") || {}).value || "chat";
        for (const k of ["launcher_text", "title", "subtitle", "business_hours_message"]) nw[k] = valueOf(form, k).trim();
        nw.avatar_url = valueOf(form, "avatar_url").trim() || null;
        nw.quick_prompts = prompts.value().filter(Boolean);
        nw.language = valueOf(form, "language");
        nw.sound = valueOf(form, "sound");
        nw.uploads = valueOf(form, "uploads");
        const strs = {};
        for (const [k, v] of strings.value()) if (k && v.trim()) strs[k] = v;
        nw.strings = strs;
        nw.lead_capture = {
          enabled: valueOf(form, "lc_enabled"), when: valueOf(form, "lc_when"), message: valueOf(form, "lc_message").trim(),
          fields: ["name", "email", "phone"].filter((n) => valueOf(form, "lc_" + n)).map((n) => ({ name: n, required: !!valueOf(form, "lcr_" + n) }))
        };
        const ns = clone(st);
        ns.widget = nw;
        ns.welcome_message = valueOf(form, "welcome_message");
        return { settings: ns };
      }
      function previewConfig() {
        const c = collect().settings, x = c.widget;
        return {
          primary_color: /^#[0-9a-f]{6}$/i.test(x.primary_color) ? x.primary_color : w.primary_color, position: x.position,
          title: x.title || bot.name, subtitle: x.subtitle, launcher_text: x.launcher_text, launcher_icon: x.launcher_icon,
          welcome_message: c.welcome_message, quick_prompts: x.quick_prompts, language: x.language
        };
      }
      const post = () => { try { frame.contentWindow.postMessage({ type: "frontdesk:configure", config: previewConfig() }, location.origin); } catch (e) { /* not loaded yet */ } };
      const postSoon = debounce(post, 120);
      let timers = [];
      frame.addEventListener("load", () => { post(); timers.push(setTimeout(post, 400), setTimeout(post, 1500)); });
      const watch = dirtyWatch(form, collect, bar);
      function changed() { watch.check(); postSoon(); }
      form.addEventListener("input", postSoon);
      form.addEventListener("change", postSoon);
      const paintLc = () => form.querySelector(".fc-lc-details").classList.toggle("fc-dim", !valueOf(form, "lc_enabled"));
      form.addEventListener("change", paintLc);
      paintLc();
      form.addEventListener("submit", (e) => {
        e.preventDefault();
        clearErrors(form);
        busy(bar.save, async () => {
          try {
            const saved = await api("PATCH", "/api/bots/" + encodeURIComponent(bot.id), collect());
            Object.assign(bot, saved);
            watch.reset();
            toast(T.saved_ok, "ok");
          } catch (x) { showError(form, x); }
        }, T.saving);
      });
      cleanup = () => { timers.forEach(clearTimeout); };
    }
    return () => { if (cleanup) cleanup(); };
  };

  // ---------------------------------------------------------------- knowledge
  const SOURCE_ICON = { url: "globe", file: "file", text: "text", qa: "help" };
  const srcStatus = (s) => {
    const cls = s === "learned" ? "fc-chip-ok" : s === "failed" ? "fc-chip-danger" : "fc-chip-info";
    return h("span", { class: "fc-chip " + cls }, s === "learning" || s === "waiting" ? h("span", { class: "fc-spinner fc-spinner-xs" }) : null, T["st_" + s] || s);
  };
  function tabs(items, onpick, current) {
    const list = h("div", { class: "fc-tabs", role: "tablist" });
    const btns = items.map(([key, label]) => {
      const b = h("button", { type: "button", role: "tab", class: "fc-tab", id: "tab-" + key, "aria-selected": String(key === current), tabIndex: key === current ? 0 : -1 }, h("span", null, label), h("span", { class: "fc-tab-count" }));
      b.addEventListener("click", () => pick(key));
      b.addEventListener("keydown", (e) => {
        if (e.key !== "ArrowRight" && e.key !== "ArrowLeft") return;
        const i = items.findIndex((x) => x[0] === key), n = items[(i + (e.key === "ArrowRight" ? 1 : items.length - 1)) % items.length][0];
        pick(n);
        list.querySelector("#tab-" + n).focus();
      });
      list.appendChild(b);
      return b;
    });
    function pick(key) {
      btns.forEach((b) => { const on = b.id === "tab-" + key; b.setAttribute("aria-selected", String(on)); b.tabIndex = on ? 0 : -1; });
      onpick(key);
    }
    return { el: list, count(key, n) { const b = list.querySelector("#tab-" + key + " .fc-tab-count"); if (b) b.textContent = n ? String(n) : ""; } };
  }
  RENDER.knowledge = (main) => {
    const wrap = h("div", { class: "fc-page" });
    main.appendChild(wrap);
    let tab = "sources", poll = 0, alive = true, sources = [], questions = [];
    const addBtn = button(T.add_source, { kind: "primary", icon: "plus", onclick: () => addSource() });
    const t = tabs([["sources", T.sources_tab], ["unanswered", T.unanswered_tab]], (k) => { tab = k; paint(); }, tab);
    const body = h("div", { class: "fc-tab-panel", role: "tabpanel" });
    // try a question
    const tq = input("q", "", { type: "search", placeholder: T.try_ph, "aria-label": T.try_q });
    const tqOut = h("div", { class: "fc-try-out", "aria-live": "polite" });
    const tqBtn = button(T.ask, { icon: "search", type: "submit" });
    const tryForm = h("form", { class: "fc-try", role: "search" }, h("div", { class: "fc-inline" }, tq, tqBtn), tqOut);
    tryForm.addEventListener("submit", (e) => {
      e.preventDefault();
      const qq = tq.value.trim();
      if (!qq) return;
      busy(tqBtn, async () => {
        try {
          const r = await GET("/api/knowledge/search" + q({ q: qq, limit: 4, bot_id: (currentBot() || {}).id }));
          clear(tqOut);
          const a = r && r.answer;
          if (a && a.text) {
            const txt = h("div", { class: "fc-text" });
            markdown(txt, a.text);
            tqOut.appendChild(h("div", { class: "fc-try-answer" }, h("div", { class: "fc-mini-label" }, T.would_answer), txt));
          } else tqOut.appendChild(h("p", { class: "fc-muted" }, T.no_answer));
        } catch (x) { fail(x); }
      });
    });
    wrap.append(pageHead(T.kn_title, T.kn_sub, addBtn), card(T.try_q, null, tryForm, { cls: "fc-card-compact" }), t.el, body);
    function paint() {
      clear(body);
      if (tab === "sources") paintSources(); else paintQuestions();
    }
    function fetchAll() {
      clearTimeout(poll);
      return Promise.all([GET("/api/knowledge/sources"), GET("/api/knowledge/unanswered" + q({ limit: 100 }))]).then(([s, u]) => {
        sources = (s && s.sources) || [];
        questions = (u && u.questions) || [];
        t.count("sources", sources.length);
        t.count("unanswered", questions.length);
        // Learning shows its progress: ask again until every source is learned or failed.
        if (alive && sources.some((x) => x.status === "waiting" || x.status === "learning")) poll = setTimeout(load, 2500);
      });
    }
    function load() { return fetchAll().then(() => { if (alive) paint(); }).catch(fail); }
    loadInto(body, fetchAll, paint);
    function paintSources() {
      if (!sources.length) { body.appendChild(emptyState("knowledge", T.sources_tab, T.sources_empty, button(T.add_source, { kind: "primary", icon: "plus", onclick: () => addSource() }))); return; }
      const rows = sources.map((s) => {
        const sub = s.type === "url" ? s.url : s.type === "qa" ? s.answer : s.type === "text" ? str(s.content).slice(0, 120) : s.upload_id;
        const relearn = button(null, { kind: "ghost", size: "sm", icon: "refresh", aria: T.relearn + ": " + (s.title || s.url), disabled: s.status === "waiting" || s.status === "learning" });
        const del = button(null, { kind: "ghost", size: "sm", icon: "trash", aria: T.delete + ": " + (s.title || s.url), cls: "fc-btn-danger-ghost" });
        relearn.addEventListener("click", () => busy(relearn, async () => { try { await api("POST", "/api/knowledge/sources/" + s.id + "/relearn"); toast(T.relearning, "ok"); load(); } catch (x) { fail(x); } }));
        del.addEventListener("click", async () => {
          if (!(await confirmDialog(T.del_source, T.del_source_text, T.delete, true))) return;
          try { await api("DELETE", "/api/knowledge/sources/" + s.id); load(); } catch (x) { fail(x); }
        });
        const botLabel = s.bot_id ? botName(s.bot_id) : T.all_bots;
        return h("tr", { data: { id: s.id } },
          h("td", null, h("div", { class: "fc-src" }, h("span", { class: "fc-src-icon fc-src-" + s.type }, icon(SOURCE_ICON[s.type] || "file")),
            h("div", { class: "fc-src-info" }, h("div", { class: "fc-src-title" }, str(s.title || s.url || s.question) || "#" + s.id),
              sub ? h("div", { class: "fc-src-sub", title: str(sub) }, str(sub)) : null))),
          h("td", null, srcStatus(s.status), s.error ? h("div", { class: "fc-src-error" }, s.error) : null),
          h("td", { class: "fc-num" }, s.chunk_count ? fmt(s.chunk_count === 1 ? T.chunk_one : T.chunks, { n: s.chunk_count }) : "—", s.type === "url" && s.pages_learned ? h("div", { class: "fc-muted" }, fmt(s.pages_learned === 1 ? T.page_one : T.pages, { n: s.pages_learned })) : null),
          h("td", { class: "fc-nowrap" }, s.learned_at ? h("span", { title: full(s.learned_at) }, when(s.learned_at)) : "—", S.bots.length > 1 ? h("div", { class: "fc-muted" }, botLabel) : null),
          h("td", { class: "fc-actions" }, relearn, del));
      });
      body.appendChild(h("div", { class: "fc-card fc-table-card" }, h("table", { class: "fc-table" },
        h("thead", null, h("tr", null, h("th", null, T.col_source), h("th", null, T.status), h("th", null, T.col_learned), h("th", null, T.col_when), h("th", { class: "fc-actions" }, h("span", { class: "fc-sr" }, T.edit)))),
        h("tbody", null, rows))));
    }
    function paintQuestions() {
      if (!questions.length) { body.appendChild(emptyState("check", T.unanswered_tab, T.unanswered_empty)); return; }
      const list = h("div", { class: "fc-unanswered" });
      for (const qn of questions) {
        const ans = textarea("answer", "", { rows: 2, placeholder: T.answer_ph, "aria-label": T.answer + ": " + qn.question });
        const save = button(T.add_answer, { kind: "primary", size: "sm", icon: "check", type: "submit" });
        const dismiss = button(T.dismiss, { kind: "ghost", size: "sm" });
        const f = h("form", { class: "fc-card fc-uq", novalidate: true, data: { id: qn.id } },
          h("div", { class: "fc-uq-q" }, icon("help"), h("span", null, qn.question)),
          h("div", { class: "fc-uq-meta" }, h("span", { class: "fc-chip fc-chip-warn" }, fmt(T.asked, { n: qn.times_asked || 1 })),
            qn.reason === "conflict" ? h("span", { class: "fc-chip fc-chip-danger" }, T.conflict_chip) : null,
            h("span", { title: full(qn.last_asked_at) }, fmt(T.last_asked, { t: ago(qn.last_asked_at) })),
            qn.conversation_id ? h("a", { href: "/console/c/" + encodeURIComponent(qn.conversation_id) }, T.open_conv) : null),
          qn.reason === "conflict" && qn.detail ? h("div", { class: "fc-uq-conflict" }, h("p", { class: "fc-uq-hint" }, T.conflict_hint), h("pre", null, qn.detail)) : null,
          h("div", { class: "fc-field" }, ans), h("div", { class: "fc-form-actions" }, dismiss, save));
        f.addEventListener("submit", (e) => {
          e.preventDefault();
          if (!ans.value.trim()) { ans.focus(); return; }
          clearErrors(f);
          busy(save, async () => {
            try {
              await api("POST", "/api/knowledge/unanswered/" + qn.id + "/answer", { answer: ans.value.trim() });
              toast(T.answered, "ok");
              f.remove();
              load();
            } catch (x) { showError(f, x); }
          }, T.saving);
        });
        dismiss.addEventListener("click", () => busy(dismiss, async () => {
          try { await api("DELETE", "/api/knowledge/unanswered/" + qn.id); f.remove(); load(); } catch (x) { fail(x); }
        }));
        list.appendChild(f);
      }
      body.appendChild(list);
    }
    function addSource() {
      let kind = "url";
      const typeSeg = h("div", { class: "fc-seg fc-seg-icons fc-seg-wide", role: "radiogroup", "aria-label": T.k_type }, [["url", T.k_url], ["file", T.k_file], ["text", T.k_text], ["qa", T.k_qa]].map(([v, l]) => {
        const id = uid("k");
        return h("span", { class: "fc-seg-item" }, h("input", { type: "radio", name: "type", value: v, id, checked: v === kind }), h("label", { for: id }, icon(SOURCE_ICON[v]), h("span", { class: "fc-seg-label" }, l)));
      }));
      const crawl = h("input", { type: "checkbox", name: "crawl", checked: true });
      const parts = {
        url: h("div", null, field(T.url, input("url", "", { type: "url", placeholder: "https://www.example.com/", spellcheck: false })),
          h("label", { class: "fc-check" }, crawl, h("span", null, T.crawl)),
          h("div", { class: "fc-grid-3 fc-crawl" }, field(T.max_pages, input("max_pages", 30, { type: "number", min: 1, max: 500, "data-field": "crawl.max_pages" })),
            field(T.max_depth, input("max_depth", 2, { type: "number", min: 0, max: 5, "data-field": "crawl.max_depth" })),
            h("div", { class: "fc-field fc-field-check" }, h("label", { class: "fc-check" }, h("input", { type: "checkbox", name: "sitemap", checked: true }), h("span", null, T.sitemap))))),
        file: h("div", null, field(T.file_pick, h("input", { type: "file", name: "file", class: "fc-file", accept: ".pdf,.html,.htm,.md,.txt,.csv,text/*,application/pdf" }), { hint: T.file_hint })),
        text: h("div", null, field(T.content, textarea("content", "", { rows: 8 }))),
        qa: h("div", null, field(T.question, input("question", "")), field(T.answer, textarea("answer", "", { rows: 4 })))
      };
      const titleF = field(T.title, input("title", ""), { optional: true });
      const scope = S.bots.length > 1 ? field(T.applies_to, select("bot_id", [["", T.all_bots]].concat(S.bots.map((b) => [b.id, b.name])), "")) : null;
      const holder = h("div", { class: "fc-kind" });
      const submit = button(T.add_source, { kind: "primary", type: "submit" });
      const dlg = dialog({ title: T.add_source, form: true, wide: true, body: [typeSeg, holder, titleF, scope], actions: [button(T.cancel, { onclick: () => dlg.close() }), submit], onsubmit: send });
      const form = dlg.form;
      function show() {
        kind = (form.querySelector("input[name=type]:checked") || {}).value || "url";
        clear(holder).appendChild(parts[kind]);
        titleF.hidden = kind === "qa";
        form.querySelector(".fc-crawl").classList.toggle("fc-dim", !crawl.checked);
        const f = holder.querySelector("input, textarea");
        if (f) f.focus();
      }
      typeSeg.addEventListener("change", show);
      crawl.addEventListener("change", show);
      show();
      async function send() {
        clearErrors(form);
        await busy(submit, async () => {
          const bot = valueOf(form, "bot_id") || undefined;
          const title = valueOf(form, "title").trim() || undefined;
          let body;
          try {
            if (kind === "url") {
              body = { type: "url", url: valueOf(form, "url").trim(), title, bot_id: bot };
              if (crawl.checked) body.crawl = { max_pages: num(valueOf(form, "max_pages")) || 30, max_depth: num(valueOf(form, "max_depth")) || 0, sitemap: !!valueOf(form, "sitemap") };
            } else if (kind === "text") body = { type: "text", content: valueOf(form, "content"), title, bot_id: bot };
            else if (kind === "qa") body = { type: "qa", question: valueOf(form, "question").trim(), answer: valueOf(form, "answer").trim(), bot_id: bot };
            else {
              const fi = form.elements.file;
              if (!fi.files || !fi.files[0]) { markField(fi, T.file_hint); fi.focus(); return; }
              const fd = new FormData();
              fd.append("files", fi.files[0], fi.files[0].name);
              const up = await api("POST", "/api/files", fd);
              const u = up && up.data && up.data[0];
              body = { type: "file", upload_id: u && u.id, title: title || (u && u.name), bot_id: bot };
            }
            await api("POST", "/api/knowledge/sources", body);
            dlg.close();
            tab = "sources";
            load();
          } catch (x) { showError(form, x); }
        }, T.saving);
      }
    }
    return () => { alive = false; clearTimeout(poll); };
  };

  // ---------------------------------------------------------------- bookings: a day or week per doctor
  const DOC_COLORS = ["#0f766e", "#2563eb", "#9333ea", "#c2410c", "#be185d", "#0e7490", "#4d7c0f", "#b45309"];
  function ymd(d) { return d.toISOString().slice(0, 10); }
  function addDays(s, n) { const d = new Date(s + "T00:00:00Z"); d.setUTCDate(d.getUTCDate() + n); return ymd(d); }
  function weekStart(s) { const d = new Date(s + "T00:00:00Z"); const wd = (d.getUTCDay() + 6) % 7; return addDays(s, -wd); }
  function todayIn(tz) {
    try { return new Intl.DateTimeFormat("en-CA", { timeZone: tz || "UTC", year: "numeric", month: "2-digit", day: "2-digit" }).format(new Date()); }
    catch (e) { return ymd(new Date()); }
  }
  const minutes = (hhmm) => { const m = /^(\d{1,2}):(\d{2})/.exec(str(hhmm)); return m ? +m[1] * 60 + +m[2] : 0; };
  const hhmm = (m) => String(Math.floor(m / 60)).padStart(2, "0") + ":" + String(m % 60).padStart(2, "0");
  function dateLabel(s, o) { return new Intl.DateTimeFormat(undefined, Object.assign({ timeZone: "UTC" }, o)).format(new Date(s + "T00:00:00Z")); }
  RENDER.bookings = (main) => {
    const wrap = h("div", { class: "fc-page fc-page-wide" });
    main.appendChild(wrap);
    let tz = "UTC", doctors = [], mode = store("fc:bk-mode") || "day", day = null, doctor = "", list = [], alive = true;
    const body = h("div", { class: "fc-bk-body" });
    const label = h("h2", { class: "fc-bk-label", "aria-live": "polite" });
    const modeSeg = h("div", { class: "fc-seg fc-seg-sm", role: "radiogroup", "aria-label": T.day + " / " + T.week }, [["day", T.day], ["week", T.week]].map(([v, l]) => {
      const id = uid("m");
      return h("span", { class: "fc-seg-item" }, h("input", { type: "radio", name: "bk_mode", value: v, id, checked: v === mode }), h("label", { for: id }, l));
    }));
    modeSeg.addEventListener("change", (e) => { mode = e.target.value; try { localStorage.setItem("fc:bk-mode", mode); } catch (x) { /* memory */ } refresh(); });
    const docSel = select("doctor", [["", T.all_doctors]], "", { "aria-label": T.doctor, class: "fc-input fc-select fc-select-sm" });
    docSel.addEventListener("change", () => { doctor = docSel.value; refresh(); });
    const step = (n) => { day = addDays(day, mode === "week" ? 7 * n : n); refresh(); };
    const tzNote = h("span", { class: "fc-muted fc-bk-tz" });
    const bar = h("div", { class: "fc-toolbar" },
      h("div", { class: "fc-toolbar-group" }, button(T.today_btn, { size: "sm", onclick: () => { day = todayIn(tz); refresh(); } }),
        button(null, { kind: "ghost", size: "sm", icon: "left", aria: T.prev, onclick: () => step(-1) }),
        button(null, { kind: "ghost", size: "sm", icon: "right", aria: T.next, onclick: () => step(1) }), label),
      h("div", { class: "fc-toolbar-group" }, tzNote, docSel, modeSeg));
    wrap.append(pageHead(T.bk_title, T.bk_sub), bar, body);
    loadInto(body, () => Promise.all([GET("/api/workspace"), GET("/api/doctors")]).then(([ws, ds]) => {
      tz = (ws && ws.timezone) || "UTC";
      doctors = ((ds && ds.data) || (Array.isArray(ds) ? ds : [])).filter((d) => d.active !== false);
      doctors.forEach((d, i) => { d._color = DOC_COLORS[i % DOC_COLORS.length]; docSel.appendChild(h("option", { value: String(d.id) }, d.name)); });
      day = todayIn(tz);
      tzNote.textContent = fmt(T.timezone, { tz });
    }), () => refresh());
    async function refresh() {
      if (!day) return;
      const from = mode === "week" ? weekStart(day) : day, to = mode === "week" ? addDays(from, 6) : day;
      label.textContent = mode === "week" ? dateLabel(from, { day: "numeric", month: "short" }) + " – " + dateLabel(to, { day: "numeric", month: "short", year: "numeric" })
        : dateLabel(day, { weekday: "long", day: "numeric", month: "long", year: "numeric" });
      try {
        const r = await GET("/api/bookings" + q({ from, to, limit: 500, doctor_id: doctor }));
        if (!alive) return;
        list = Array.isArray(r) ? r : (r && r.data) || [];
        paint(from);
      } catch (e) { fail(e); }
    }
    function paint(from) {
      clear(body);
      const docs = doctor ? doctors.filter((d) => String(d.id) === doctor) : doctors;
      const cols = mode === "week"
        ? Array.from({ length: 7 }, (_, i) => { const d = addDays(from, i); return { key: d, label: dateLabel(d, { weekday: "short" }), sub: dateLabel(d, { day: "numeric", month: "short" }), today: d === todayIn(tz), items: list.filter((b) => b.date === d) }; })
        : docs.map((d) => ({ key: d.id, label: d.name, sub: d.specialty, color: d._color, items: list.filter((b) => b.doctor_id === d.id || (!b.doctor_id && b.doctor_name === d.name)) }));
      const shown = list.filter((b) => b.status !== "cancelled");
      let start = 8 * 60, end = 18 * 60;
      for (const b of list) { const s = minutes(b.time), dd = durOf(b); start = Math.min(start, Math.floor(s / 60) * 60); end = Math.max(end, Math.ceil((s + dd) / 60) * 60); }
      const PX = 1.3; // pixels per minute
      const summary = h("div", { class: "fc-bk-summary" }, h("span", { class: "fc-chip fc-chip-accent" }, shown.length + " " + T.bookings.toLowerCase()),
        mode === "day" ? null : h("span", { class: "fc-muted" }, doctor ? (docs[0] || {}).name : T.all_doctors));
      body.appendChild(summary);
      if (!cols.length) { body.appendChild(emptyState("bookings", T.bk_empty)); return; }
      const grid = h("div", { class: "fc-cal", role: "grid", "aria-label": label.textContent });
      grid.style.setProperty("--cols", cols.length);
      const head = h("div", { class: "fc-cal-head", role: "row" }, h("div", { class: "fc-cal-corner" }),
        cols.map((c) => h("div", { class: "fc-cal-colhead" + (c.today ? " fc-today" : ""), role: "columnheader" },
          c.color ? h("span", { class: "fc-doc-dot" }) : null, h("span", { class: "fc-cal-colname" }, c.label), c.sub ? h("span", { class: "fc-cal-colsub" }, c.sub) : null)));
      head.querySelectorAll(".fc-doc-dot").forEach((e, i) => { e.style.background = cols[i].color; });
      const times = h("div", { class: "fc-cal-times", "aria-hidden": "true" });
      for (let m = start; m < end; m += 60) { const t = h("div", { class: "fc-cal-time" }, hhmm(m)); t.style.height = 60 * PX + "px"; times.appendChild(t); }
      const rowsEl = h("div", { class: "fc-cal-body" }, times);
      rowsEl.style.height = (end - start) * PX + "px";
      for (const c of cols) {
        const col = h("div", { class: "fc-cal-col" + (c.today ? " fc-today" : ""), role: "gridcell" });
        for (let m = start; m < end; m += 60) { const l = h("div", { class: "fc-cal-line" }); l.style.top = (m - start) * PX + "px"; col.appendChild(l); }
        // Overlapping appointments share the column side by side.
        const items = c.items.slice().sort((a, b) => minutes(a.time) - minutes(b.time));
        const lanes = [];
        for (const b of items) {
          const s = minutes(b.time);
          let lane = lanes.findIndex((endAt) => endAt <= s);
          if (lane < 0) { lane = lanes.length; lanes.push(0); }
          lanes[lane] = s + durOf(b);
          b._lane = lane;
        }
        for (const b of items) {
          const s = minutes(b.time), dd = durOf(b);
          const doc = doctors.find((d) => d.id === b.doctor_id);
          const ev = h("button", { type: "button", class: "fc-cal-ev fc-ev-" + b.status, data: { id: b.id },
            "aria-label": [b.time, b.customer_name, b.service, b.doctor_name, bookingStatus(b.status)].filter(Boolean).join(", ") },
          h("span", { class: "fc-ev-time" }, b.time + "–" + hhmm(s + dd)), h("span", { class: "fc-ev-name" }, str(b.customer_name)), h("span", { class: "fc-ev-what" }, str(b.service) + (mode === "week" && !doctor && b.doctor_name ? " · " + b.doctor_name : "")));
          ev.style.top = (s - start) * PX + 1 + "px";
          ev.style.height = Math.max(22, dd * PX - 3) + "px";
          if (dd * PX < 52) ev.classList.add("fc-ev-short");
          ev.style.left = "calc(" + (b._lane * 100 / lanes.length) + "% + 3px)";
          ev.style.width = "calc(" + (100 / lanes.length) + "% - 6px)";
          ev.style.setProperty("--ev", (doc && doc._color) || c.color || "#0f766e");
          ev.addEventListener("click", () => openBooking(b));
          col.appendChild(ev);
        }
        rowsEl.appendChild(col);
      }
      grid.append(head, rowsEl);
      body.appendChild(h("div", { class: "fc-card fc-cal-card" }, grid));
      if (!list.length) body.appendChild(h("p", { class: "fc-muted fc-bk-none" }, mode === "week" ? T.bk_week_empty : T.bk_empty));
    }
    function durOf(b) { const a = Date.parse(b.starts_at || ""), e = Date.parse(b.ends_at || ""); return a && e && e > a ? Math.round((e - a) / MIN) : 30; }
    function openBooking(b) {
      const reason = input("reason", "");
      const act = (path, label, kind) => button(label, { kind: kind || "secondary", onclick: async (e) => {
        const btn = e.currentTarget;
        if (path === "cancel" && !(await confirmDialog(T.cancel_confirm, [b.customer_name, b.date, b.time].join(" · "), T.cancel_booking, true))) return;
        busy(btn, async () => {
          try {
            const r = await api("POST", "/api/bookings/" + b.id + "/" + path, path === "cancel" && reason.value.trim() ? { reason: reason.value.trim() } : undefined);
            Object.assign(b, r || {});
            dlg.close();
            refresh();
          } catch (x) { fail(x); }
        });
      } });
      const rows = [[T.patient, [b.customer_name, b.customer_email, b.customer_phone].filter(Boolean).join(" · ")], [T.when, dateLabel(b.date, { weekday: "long", day: "numeric", month: "long" }) + " · " + b.time + "–" + hhmm(minutes(b.time) + durOf(b))],
        [T.service, b.service], [T.doctor, b.doctor_name], [T.status_l, bookingStatus(b.status)], [T.notes_l, b.notes], [T.source, b.source ? fmt(T.via, { s: T["src_" + b.source] || b.source }) : ""]].filter((r) => r[1]);
      const open = b.status === "confirmed";
      const dlg = dialog({
        title: fmt(T.booking_n, { id: b.id }),
        body: [h("dl", { class: "fc-dl fc-dl-wide" }, rows.map(([k, v]) => [h("dt", null, k), h("dd", null, v)])),
          b.conversation_id ? h("p", null, h("a", { href: "/console/c/" + encodeURIComponent(b.conversation_id), onclick: () => dlg.close() }, T.open_conv)) : null,
          open ? field(T.cancel_reason, reason, { optional: true }) : null],
        actions: open ? [act("no-show", T.no_show), act("complete", T.complete), act("cancel", T.cancel_booking, "danger")] : [button(T.close, { onclick: () => dlg.close() })]
      });
    }
    return () => { alive = false; };
  };

  // ---------------------------------------------------------------- leads by stage
  RENDER.leads = (main) => {
    const wrap = h("div", { class: "fc-page fc-page-full" });
    main.appendChild(wrap);
    const body = h("div");
    const search = input("lead_search", "", { type: "search", placeholder: T.search, "aria-label": T.search, class: "fc-input fc-input-sm" });
    wrap.append(pageHead(T.leads_title, T.leads_sub, search), body);
    let leads = [];
    const load = () => GET("/api/leads" + q({ limit: 500 })).then((r) => { leads = Array.isArray(r) ? r : (r && r.data) || []; });
    loadInto(body, load, paint);
    search.addEventListener("input", debounce(paint, 120));
    function paint() {
      clear(body);
      const words = search.value.toLowerCase().split(/\s+/).filter(Boolean);
      const shown = leads.filter((l) => { const hay = [l.name, l.email, l.phone, l.treatment_interest].join(" ").toLowerCase(); return words.every((w) => hay.includes(w)); });
      if (!leads.length) { body.appendChild(emptyState("leads", T.leads_empty)); return; }
      const board = h("div", { class: "fc-board" });
      for (const st of STAGES) {
        const items = shown.filter((l) => l.stage === st).sort((a, b) => b.score - a.score);
        const col = h("section", { class: "fc-board-col fc-stage-" + st, "aria-label": stageLabel(st) },
          h("h2", { class: "fc-board-head" }, h("span", null, stageLabel(st)), h("span", { class: "fc-board-count" }, String(items.length))));
        const ul = h("div", { class: "fc-board-list" });
        for (const l of items) ul.appendChild(leadCard(l));
        if (!items.length) ul.appendChild(h("p", { class: "fc-board-empty" }, "—"));
        col.appendChild(ul);
        board.appendChild(col);
      }
      body.appendChild(board);
    }
    function leadCard(l) {
      const sel = select("stage", STAGES.map((s) => [s, stageLabel(s)]), l.stage, { "aria-label": T.move_to + " (" + l.name + ")", class: "fc-input fc-select fc-select-sm" });
      sel.addEventListener("change", async () => {
        const was = l.stage;
        try { Object.assign(l, await api("PATCH", "/api/leads/" + l.id + "/stage", { stage: sel.value })); toast(stageLabel(l.stage) + ": " + l.name, "ok"); paint(); }
        catch (e) { sel.value = was; fail(e); }
      });
      const open = h("button", { type: "button", class: "fc-lead-name" }, str(l.name) || "#" + l.id);
      open.addEventListener("click", () => leadDialog(l));
      return h("article", { class: "fc-lead-card", data: { id: l.id } },
        h("div", { class: "fc-lead-card-top" }, avatar(l.name, "lead" + l.id, "fc-avatar-sm"), h("div", { class: "fc-lead-id" }, open,
          h("div", { class: "fc-lead-contact" }, [l.email, l.phone].filter(Boolean).join(" · "))),
        h("div", { class: "fc-lead-score", title: T.score }, String(Math.round(l.score * 10) / 10))),
        h("div", { class: "fc-lead-tags" }, tempChip(l), l.treatment_interest ? h("span", { class: "fc-chip fc-chip-plain" }, l.treatment_interest) : null,
          h("span", { class: "fc-lead-age", title: full(l.created_at) }, when(l.created_at))),
        sel);
    }
    function leadDialog(l) {
      const hist = h("ul", { class: "fc-why" }, h("li", { class: "fc-muted" }, T.loading));
      dialog({
        title: str(l.name) || T.lead_details,
        body: [h("dl", { class: "fc-dl fc-dl-wide" }, [[T.email, l.email], [T.phone, l.phone], [T.stage, stageLabel(l.stage)], [T.score, String(l.score) + " · " + str(l.temperature)],
          [T.interest, l.treatment_interest], [T.source, l.source]].filter((r) => r[1]).map(([k, v]) => [h("dt", null, k), h("dd", null, v)])),
        l.conversation_id ? h("p", null, h("a", { href: "/console/c/" + encodeURIComponent(l.conversation_id), onclick: () => D.querySelector("dialog[open]") && D.querySelector("dialog[open]").close() }, T.open_conv)) : null,
        h("h3", { class: "fc-subtitle" }, T.score_history), hist]
      });
      GET("/api/leads/" + l.id + "/history").then((r) => {
        clear(hist);
        for (const x of (r && r.data) || []) {
          const dlt = (x.score_after || 0) - (x.score_before || 0);
          hist.appendChild(h("li", null, h("span", { class: "fc-why-pts" + (dlt < 0 ? " fc-neg" : "") }, (dlt >= 0 ? "+" : "") + Math.round(dlt * 10) / 10),
            h("span", { class: "fc-why-text" }, str(x.reason) || str(x.kind)), h("span", { class: "fc-muted fc-why-when" }, when(x.created_at))));
        }
        if (!hist.children.length) hist.appendChild(h("li", { class: "fc-muted" }, T.none));
      }).catch(() => { clear(hist); });
    }
  };

  // ---------------------------------------------------------------- team: agents and saved replies
  function inviteLinkDialog(agent, r) {
    const link = location.origin + r.link;
    dialog({
      title: T.invite_link,
      body: [h("p", { class: "fc-dialog-text" }, fmt(T.invite_link_hint, { name: agent.name, t: r.expires_at ? dyfmt.format(new Date(r.expires_at)) : "" })), secretBox(link, "fc-code fc-invite-link")]
    });
  }
  RENDER.agents = (main) => {
    const wrap = h("div", { class: "fc-page" });
    main.appendChild(wrap);
    const inviteBtn = button(T.invite, { kind: "primary", icon: "plus", onclick: () => invite() });
    const teamBody = h("div");
    const cannedBody = h("div");
    wrap.append(pageHead(T.team_title, T.team_sub, inviteBtn), teamBody, h("div", { class: "fc-subhead" }, h("h2", { class: "fc-section-title-lg" }, T.canned_title), h("p", { class: "fc-page-sub" }, T.canned_sub)), cannedBody);
    const loadTeam = () => loadInto(teamBody, () => GET("/api/agents").then((r) => { S.agents = (r && r.agents) || []; onAgents(); }), paintTeam);
    loadTeam();
    function paintTeam() {
      clear(teamBody);
      if (!S.agents.length) { teamBody.appendChild(emptyState("agents", T.agents_empty)); return; }
      const rows = S.agents.map((a) => {
        const me = a.id === S.me.id;
        const role = select("role", [["agent", T.me_role_agent], ["admin", T.me_role_admin]], a.role, { "aria-label": T.role + ": " + a.name, class: "fc-input fc-select fc-select-sm", disabled: me });
        role.addEventListener("change", async () => {
          const was = a.role;
          try { Object.assign(a, await api("PATCH", "/api/agents/" + a.id, { role: role.value })); toast(T.saved_ok, "ok"); }
          catch (e) { role.value = was; fail(e); }
        });
        const link = button(T.new_link, { size: "sm", icon: "mail" });
        link.addEventListener("click", () => busy(link, async () => {
          try { inviteLinkDialog(a, await api("POST", "/api/agents/" + a.id + "/invite")); } catch (e) { fail(e); }
        }));
        const off = button(null, { kind: "ghost", size: "sm", icon: "trash", aria: T.deactivate + ": " + a.name, cls: "fc-btn-danger-ghost", disabled: me });
        off.addEventListener("click", async () => {
          if (!(await confirmDialog(fmt(T.deactivate_confirm, { name: a.name }), T.deactivate_text, T.deactivate, true))) return;
          try { await api("DELETE", "/api/agents/" + a.id); loadTeam(); } catch (e) { fail(e); }
        });
        const pres = a.presence || "offline";
        return h("tr", { data: { id: a.id } },
          h("td", null, h("div", { class: "fc-person" }, avatar(a.name, "agent" + a.id, "fc-avatar-sm"),
            h("div", null, h("div", { class: "fc-person-name" }, a.name, me ? h("span", { class: "fc-chip fc-chip-plain fc-you" }, T.you_tag) : null), h("div", { class: "fc-muted" }, a.email || "")))),
          h("td", null, role),
          h("td", null, h("span", { class: "fc-presence-inline", data: { presence: pres } }, h("span", { class: "fc-presence-dot" }), pres.charAt(0).toUpperCase() + pres.slice(1))),
          h("td", { class: "fc-muted fc-nowrap" }, a.last_seen_at ? h("span", { title: full(a.last_seen_at) }, ago(a.last_seen_at)) : T.never),
          h("td", { class: "fc-actions" }, link, off));
      });
      teamBody.appendChild(h("div", { class: "fc-card fc-table-card" }, h("table", { class: "fc-table" },
        h("thead", null, h("tr", null, h("th", null, T.name), h("th", null, T.role), h("th", null, T.status), h("th", null, T.last_seen.replace(" {t}", "")), h("th", { class: "fc-actions" }, h("span", { class: "fc-sr" }, T.edit)))),
        h("tbody", null, rows))));
    }
    function invite() {
      const submit = button(T.invite, { kind: "primary", type: "submit" });
      const dlg = dialog({
        title: T.invite_title, form: true,
        body: [field(T.name, input("name", "", { autocomplete: "off" })), field(T.email, input("email", "", { type: "email", autocomplete: "off" })),
          field(T.role, select("role", [["agent", T.role_agent], ["admin", T.role_admin]], "agent"))],
        actions: [button(T.cancel, { onclick: () => dlg.close() }), submit],
        onsubmit: () => busy(submit, async () => {
          const f = dlg.form;
          clearErrors(f);
          try {
            const r = await api("POST", "/api/agents", { name: valueOf(f, "name").trim(), email: valueOf(f, "email").trim(), role: valueOf(f, "role") });
            const a = (r && r.agent) || r;
            const link = await api("POST", "/api/agents/" + a.id + "/invite");
            dlg.close();
            loadTeam();
            inviteLinkDialog(a, link);
          } catch (x) { showError(f, x); }
        }, T.saving)
      });
    }
    // saved replies
    const loadCannedPage = () => loadInto(cannedBody, () => loadCanned(true), paintCanned);
    loadCannedPage();
    function paintCanned() {
      clear(cannedBody);
      const sc = input("shortcut", "", { placeholder: "hours", "aria-label": T.shortcut, maxLength: 40, spellcheck: false, class: "fc-input fc-shortcut-input" });
      const tx = textarea("text", "", { rows: 2, placeholder: T.canned_text, "aria-label": T.canned_text });
      const addBtn = button(T.add_canned, { kind: "primary", icon: "plus", type: "submit", size: "sm" });
      const form = h("form", { class: "fc-canned-form", novalidate: true },
        h("div", { class: "fc-canned-add" }, h("div", { class: "fc-field fc-shortcut-field" }, h("span", { class: "fc-slash", "aria-hidden": "true" }, "/"), sc), h("div", { class: "fc-field fc-grow" }, tx)),
        h("div", { class: "fc-form-actions" }, addBtn));
      form.addEventListener("submit", (e) => {
        e.preventDefault();
        clearErrors(form);
        busy(addBtn, async () => {
          try {
            const c = await api("POST", "/api/canned-replies", { shortcut: sc.value.trim().replace(/^\//, ""), text: tx.value.trim() });
            S.canned = (S.canned || []).concat([c]);
            paintCanned();
            cannedBody.querySelector("input[name=shortcut]").focus();
          } catch (x) { showError(form, x); }
        }, T.saving);
      });
      const list = S.canned || [];
      const rows = list.map((c) => {
        const del = button(null, { kind: "ghost", size: "sm", icon: "trash", aria: fmt(T.del_canned, { s: c.shortcut }), cls: "fc-btn-danger-ghost" });
        del.addEventListener("click", async () => {
          if (!(await confirmDialog(fmt(T.del_canned, { s: c.shortcut }), c.text, T.delete, true))) return;
          try { await api("DELETE", "/api/canned-replies/" + c.id); S.canned = S.canned.filter((x) => x.id !== c.id); paintCanned(); } catch (x) { fail(x); }
        });
        return h("tr", { data: { id: c.id } }, h("td", { class: "fc-nowrap" }, h("code", { class: "fc-canned-key" }, "/" + c.shortcut)), h("td", { class: "fc-canned-cell" }, c.text), h("td", { class: "fc-actions" }, del));
      });
      cannedBody.appendChild(h("div", { class: "fc-card fc-table-card" },
        list.length ? h("table", { class: "fc-table" }, h("thead", null, h("tr", null, h("th", null, T.shortcut), h("th", null, T.canned_text), h("th", { class: "fc-actions" }, h("span", { class: "fc-sr" }, T.delete)))), h("tbody", null, rows)) : null,
        h("div", { class: "fc-card-body" }, form)));
    }
  };

  // ---------------------------------------------------------------- API keys
  RENDER.keys = (main) => {
    const wrap = h("div", { class: "fc-page" });
    main.appendChild(wrap);
    const newBtn = button(T.new_key, { kind: "primary", icon: "plus", cls: "fc-new-key", onclick: () => create() });
    const body = h("div");
    wrap.append(pageHead(T.keys_title, T.keys_sub, newBtn), body);
    let keys = [];
    const load = () => loadInto(body, () => GET("/api/keys").then((r) => { keys = (r && r.keys) || []; }), paint);
    load();
    function paint() {
      clear(body);
      if (!keys.length) { body.appendChild(emptyState("keys", T.keys_empty)); return; }
      const sorted = keys.slice().sort((a, b) => (!!a.revoked_at - !!b.revoked_at) || b.created_at - a.created_at);
      const rows = sorted.map((k) => {
        const revoke = button(T.revoke, { size: "sm", cls: "fc-revoke fc-btn-danger-ghost", kind: "ghost", hidden: !!k.revoked_at });
        revoke.hidden = !!k.revoked_at;
        revoke.addEventListener("click", async () => {
          if (!(await confirmDialog(fmt(T.revoke_confirm, { name: k.name || k.prefix }), T.revoke_text, T.revoke, true))) return;
          busy(revoke, async () => { try { await api("DELETE", "/api/keys/" + k.id); k.revoked_at = Date.now(); paint(); } catch (x) { fail(x); } });
        });
        return h("tr", { class: "fc-key" + (k.revoked_at ? " fc-revoked" : ""), data: { id: k.id } },
          h("td", null, h("div", { class: "fc-key-name" }, str(k.name) || "—")),
          h("td", null, h("code", { class: "fc-key-prefix" }, k.prefix + "…")),
          h("td", { class: "fc-muted fc-nowrap", title: full(k.created_at) }, when(k.created_at)),
          h("td", { class: "fc-muted fc-nowrap" }, k.last_used_at ? h("span", { title: full(k.last_used_at) }, ago(k.last_used_at)) : T.never),
          h("td", null, k.revoked_at ? h("span", { class: "fc-chip fc-chip-muted", title: full(k.revoked_at) }, fmt(T.revoked, { t: when(k.revoked_at) })) : h("span", { class: "fc-chip fc-chip-ok" }, T.active)),
          h("td", { class: "fc-actions" }, revoke));
      });
      body.appendChild(h("div", { class: "fc-card fc-table-card" }, h("table", { class: "fc-table" },
        h("thead", null, h("tr", null, h("th", null, T.key_name), h("th", null, T.col_key), h("th", null, T.created.replace(" {t}", "")), h("th", null, T.last_used.replace(" {t}", "")), h("th", null, T.status), h("th", { class: "fc-actions" }, h("span", { class: "fc-sr" }, T.revoke)))),
        h("tbody", null, rows))));
    }
    function create() {
      const submit = button(T.new_key, { kind: "primary", type: "submit" });
      const dlg = dialog({
        title: T.new_key, form: true,
        body: field(T.key_name, input("name", "", { autocomplete: "off", maxLength: 100 }), { hint: T.key_name_hint }),
        actions: [button(T.cancel, { onclick: () => dlg.close() }), submit],
        onsubmit: () => busy(submit, async () => {
          clearErrors(dlg.form);
          try {
            const k = await api("POST", "/api/keys", { name: valueOf(dlg.form, "name").trim() });
            keys.unshift(Object.assign({}, k, { key: undefined }));
            paint();
            const secret = str(k.key || k.secret || k.token || k.api_key);
            clear(dlg.body).append(h("div", { class: "fc-once" }, icon("alert"), h("span", null, T.key_once)), secretBox(secret, "fc-key-secret"));
            clear(dlg.el.querySelector(".fc-dialog-foot")).appendChild(button(T.close, { kind: "primary", onclick: () => dlg.close() }));
            dlg.el.querySelector(".fc-dialog-title").textContent = T.key_created;
          } catch (x) { showError(dlg.form, x); }
        }, T.saving)
      });
    }
  };

  // ---------------------------------------------------------------- webhooks
  const EVENTS = ["new_booking", "booking_rescheduled", "booking_cancelled", "booking_completed", "no_show", "new_patient", "new_lead",
    "lead_stage_changed", "form_submitted", "conversation_started", "message_created", "handoff_requested", "agent_assigned",
    "conversation_closed", "webhook_endpoint_disabled"];
  RENDER.webhooks = (main) => {
    const wrap = h("div", { class: "fc-page fc-page-wide" });
    main.appendChild(wrap);
    const addBtn = button(T.add_endpoint, { kind: "primary", icon: "plus", onclick: () => edit(null) });
    const body = h("div", { class: "fc-wh" });
    wrap.append(pageHead(T.wh_title, T.wh_sub, addBtn), body);
    let hooks = [], current = null;
    const load = () => loadInto(body, () => GET("/api/webhooks").then((r) => { hooks = (r && r.data) || (Array.isArray(r) ? r : []); }), paint);
    load();
    function paint() {
      clear(body);
      if (!hooks.length) { body.appendChild(emptyState("webhooks", T.wh_empty, T.wh_empty_text, button(T.add_endpoint, { kind: "primary", icon: "plus", onclick: () => edit(null) }))); return; }
      if (!current || !hooks.find((x) => x.id === current)) current = hooks[0].id;
      const list = h("nav", { class: "fc-wh-list", "aria-label": T.wh_title }, hooks.map((w) => {
        const a = h("button", { type: "button", class: "fc-wh-item", "aria-current": w.id === current ? "true" : null, data: { id: w.id } },
          h("span", { class: "fc-wh-url" }, w.url), h("span", { class: "fc-wh-meta" }, w.active ? h("span", { class: "fc-chip fc-chip-ok" }, T.wh_enabled) : h("span", { class: "fc-chip fc-chip-danger" }, T.wh_disabled),
            h("span", { class: "fc-muted" }, (w.events || []).indexOf("*") >= 0 || !(w.events || []).length ? T.all_events : (w.events || []).length + " " + T.events.toLowerCase())));
        a.addEventListener("click", () => { current = w.id; paint(); });
        return a;
      }));
      const w = hooks.find((x) => x.id === current);
      body.append(list, detail(w));
    }
    function detail(w) {
      const pane = h("div", { class: "fc-wh-detail" });
      const toggleBtn = button(w.active ? T.disable : T.enable, { size: "sm" });
      toggleBtn.addEventListener("click", () => busy(toggleBtn, async () => {
        try { Object.assign(w, await api("PATCH", "/api/webhooks/" + w.id, { active: !w.active })); paint(); } catch (x) { fail(x); }
      }));
      const reveal = button(T.reveal, { size: "sm", icon: "eye" });
      reveal.addEventListener("click", () => busy(reveal, async () => {
        try { const r = await api("POST", "/api/webhooks/" + w.id + "/secret/reveal"); dialog({ title: T.secret, body: secretBox(str(r.secret), "fc-code") }); } catch (x) { fail(x); }
      }));
      const rotate = button(T.rotate, { size: "sm", icon: "refresh" });
      rotate.addEventListener("click", async () => {
        if (!(await confirmDialog(T.rotate, T.rotated, T.rotate))) return;
        busy(rotate, async () => { try { const r = await api("POST", "/api/webhooks/" + w.id + "/secret/rotate"); dialog({ title: T.secret, body: [h("p", { class: "fc-dialog-text" }, T.rotated), secretBox(str(r.secret), "fc-code")] }); } catch (x) { fail(x); } });
      });
      const del = button(null, { kind: "ghost", size: "sm", icon: "trash", aria: T.delete, cls: "fc-btn-danger-ghost" });
      del.addEventListener("click", async () => {
        if (!(await confirmDialog(T.del_endpoint, w.url, T.delete, true))) return;
        try { await api("DELETE", "/api/webhooks/" + w.id); current = null; load(); } catch (x) { fail(x); }
      });
      const evs = (w.events || []).indexOf("*") >= 0 || !(w.events || []).length ? [T.all_events] : w.events;
      pane.appendChild(card(null, null, [
        h("div", { class: "fc-wh-head" }, h("div", { class: "fc-wh-title" }, h("div", { class: "fc-wh-url-lg" }, w.url), w.description ? h("div", { class: "fc-muted" }, w.description) : null),
          h("div", { class: "fc-toolbar-group" }, button(T.edit, { size: "sm", onclick: () => edit(w) }), toggleBtn, reveal, rotate, del)),
        !w.active && (w.disabled_reason || w.failing_since) ? h("div", { class: "fc-banner fc-banner-danger" }, icon("alert"), h("span", null, str(w.disabled_reason) || fmt(T.failing_since, { t: full(w.failing_since) }))) : null,
        w.active && w.failing_since ? h("div", { class: "fc-banner fc-banner-warn" }, icon("alert"), h("span", null, fmt(T.failing_since, { t: full(w.failing_since) }))) : null,
        h("div", { class: "fc-chips-wrap" }, evs.map((e) => h("span", { class: "fc-chip fc-chip-plain" }, e)))]));
      // delivery log
      const filt = select("dl_status", [["", T.all], ["pending", T.d_pending], ["delivered", T.d_delivered], ["dead", T.d_dead]], "", { "aria-label": T.status, class: "fc-input fc-select fc-select-sm" });
      const tbody = h("tbody");
      const more = button(T.older, { size: "sm", kind: "ghost", hidden: true });
      let before = null;
      const table = h("table", { class: "fc-table fc-deliveries" }, h("thead", null, h("tr", null, h("th", null, T.col_event), h("th", null, T.status), h("th", null, T.col_attempts), h("th", null, T.col_http), h("th", null, T.when), h("th", { class: "fc-actions" }, h("span", { class: "fc-sr" }, T.redeliver)))), tbody);
      pane.appendChild(card(T.deliveries, null, [table, h("div", { class: "fc-table-foot" }, more)], { flush: true, actions: filt }));
      async function loadDel(reset) {
        if (reset) { clear(tbody); before = null; }
        try {
          const r = await GET("/api/webhooks/" + w.id + "/deliveries" + q({ status: filt.value, before, limit: 25 }));
          const list = (r && r.data) || [];
          before = r && r.next_before;
          more.hidden = !before;
          if (reset && !list.length) tbody.appendChild(h("tr", null, h("td", { colspan: 6, class: "fc-muted fc-empty-cell" }, T.del_empty)));
          for (const d of list) deliveryRow(d).forEach((r2) => tbody.appendChild(r2));
        } catch (x) { fail(x); }
      }
      function deliveryRow(d) {
        const log = d.log || d.attempts || [];
        const last = log[log.length - 1] || {};
        const st = d.status;
        const chip = h("span", { class: "fc-chip " + (st === "delivered" ? "fc-chip-ok" : st === "dead" ? "fc-chip-danger" : "fc-chip-info") }, T["d_" + st] || st);
        const redo = button(T.redeliver, { size: "sm", kind: "ghost", icon: "refresh" });
        redo.addEventListener("click", () => busy(redo, async () => {
          try { await api("POST", "/api/webhooks/" + w.id + "/deliveries/" + d.id + "/redeliver"); toast(T.redelivered, "ok"); loadDel(true); } catch (x) { fail(x); }
        }));
        const toggleRow = h("button", { type: "button", class: "fc-link-btn fc-del-event", "aria-expanded": "false" }, str(d.event || d.event_type));
        const detailRow = h("tr", { class: "fc-del-detail", hidden: true }, h("td", { colspan: 6 }, h("ol", { class: "fc-attempts" }, log.map((a) => h("li", null,
          h("span", { class: "fc-nowrap" }, full(a.at || a.attempted_at || a.time)), h("span", { class: "fc-chip " + (a.status_code >= 200 && a.status_code < 300 ? "fc-chip-ok" : "fc-chip-danger") }, a.status_code ? String(a.status_code) : "—"),
          a.latency_ms != null ? h("span", { class: "fc-muted" }, a.latency_ms + " ms") : null, a.error ? h("span", { class: "fc-src-error" }, str(a.error)) : null,
          a.response ? h("code", { class: "fc-attempt-body" }, str(a.response).slice(0, 300)) : null)))));
        toggleRow.addEventListener("click", () => { detailRow.hidden = !detailRow.hidden; toggleRow.setAttribute("aria-expanded", String(!detailRow.hidden)); });
        return [h("tr", null, h("td", null, toggleRow), h("td", null, chip), h("td", { class: "fc-num" }, String(log.length || d.attempts_count || 0)),
          h("td", { class: "fc-num" }, last.status_code ? String(last.status_code) : "—"), h("td", { class: "fc-muted fc-nowrap", title: full(d.created_at) }, when(d.created_at)), h("td", { class: "fc-actions" }, redo)), detailRow];
      }
      filt.addEventListener("change", () => loadDel(true));
      more.addEventListener("click", () => busy(more, () => loadDel(false)));
      loadDel(true);
      return pane;
    }
    function edit(w) {
      const all = !w || !(w.events || []).length || (w.events || []).indexOf("*") >= 0;
      const allBox = h("input", { type: "checkbox", name: "all_events", checked: all });
      const evBoxes = h("div", { class: "fc-event-grid", "data-field": "events" }, EVENTS.map((e) => h("label", { class: "fc-check" },
        h("input", { type: "checkbox", name: "ev", value: e, checked: !all && (w.events || []).indexOf(e) >= 0 }), h("span", null, e))));
      const paintEv = () => evBoxes.classList.toggle("fc-dim", allBox.checked);
      allBox.addEventListener("change", paintEv);
      const submit = button(w ? T.save : T.add_endpoint, { kind: "primary", type: "submit" });
      const dlg = dialog({
        title: w ? T.endpoint : T.add_endpoint, form: true, wide: true,
        body: [field(T.url, input("url", w ? w.url : "", { type: "url", placeholder: "https://example.com/hooks/frontdesk", spellcheck: false })),
          field(T.description, input("description", w ? w.description : ""), { optional: true }),
          h("div", { class: "fc-field" }, h("span", { class: "fc-label" }, T.events), h("label", { class: "fc-check" }, allBox, h("span", null, T.all_events)), evBoxes)],
        actions: [button(T.cancel, { onclick: () => dlg.close() }), submit],
        onsubmit: () => busy(submit, async () => {
          const f = dlg.form;
          clearErrors(f);
          const events = allBox.checked ? ["*"] : Array.from(f.querySelectorAll("input[name=ev]:checked")).map((x) => x.value);
          const body = { url: valueOf(f, "url").trim(), description: valueOf(f, "description").trim() || undefined, events };
          try {
            if (w) { Object.assign(w, await api("PATCH", "/api/webhooks/" + w.id, body)); dlg.close(); paint(); }
            else {
              const r = await api("POST", "/api/webhooks", body);
              dlg.close();
              current = r.id;
              await load();
              if (r.secret) dialog({ title: T.secret, body: [h("p", { class: "fc-dialog-text" }, T.secret_once), secretBox(r.secret, "fc-code")] });
            }
          } catch (x) { showError(f, x); }
        }, T.saving)
      });
      paintEv();
    }
  };

  // ---------------------------------------------------------------- flows
  const FLOW_TEMPLATE = {
    start: "hello",
    blocks: [
      { id: "hello", type: "message", text: "Hi! I'm the practice's assistant.", next: "name" },
      { id: "name", type: "question", text: "What's your name?", variable: "contact.name", next: "email" },
      { id: "email", type: "question", text: "Thanks {{contact.name}}! Your email?", variable: "contact.email", validate: "email", retry: "Hmm, that doesn't look like an email address.", next: "lead" },
      { id: "lead", type: "lead", fields: { name: "{{contact.name}}", email: "{{contact.email}}" }, next: "bye" },
      { id: "bye", type: "end", text: "Thanks! We'll be in touch." }
    ]
  };
  const CHANNELS = [["widget", T.ch_widget], ["api", T.ch_api], ["rest", T.ch_rest]];
  RENDER.flows = (main) => {
    const wrap = h("div", { class: "fc-page fc-page-wide" });
    main.appendChild(wrap);
    const newBtn = button(T.new_flow, { kind: "primary", icon: "plus", onclick: () => open(null) });
    const body = h("div", { class: "fc-flows" });
    wrap.append(pageHead(T.flows_title, T.flows_sub, newBtn), body);
    let flows = [], current = undefined;
    const list = h("nav", { class: "fc-flow-list", "aria-label": T.flows_title });
    const editor = h("div", { class: "fc-flow-editor" });
    const load = () => GET("/api/flows").then((r) => { flows = (r && r.data) || (r && r.flows) || (Array.isArray(r) ? r : []); });
    loadInto(body, load, () => { body.append(list, editor); paintList(); open(flows[0] || null); });
    function deployChips(f) {
      return (f.deployments || []).map((d) => h("span", { class: "fc-chip fc-chip-accent" }, d.channel + " · " + fmt(T.version, { v: d.version })));
    }
    function paintList() {
      clear(list);
      if (!flows.length) list.appendChild(h("p", { class: "fc-muted fc-pad" }, T.flows_empty));
      for (const f of flows) {
        const b = h("button", { type: "button", class: "fc-flow-item", "aria-current": current && current.id === f.id ? "true" : null },
          h("span", { class: "fc-flow-name" }, f.name), h("span", { class: "fc-flow-meta" }, (f.deployments || []).length ? deployChips(f) : h("span", { class: "fc-muted" }, T.not_deployed)));
        b.addEventListener("click", () => { if (S.dirty && !W.confirm(T.leave_unsaved)) return; S.dirty = null; open(f); });
        list.appendChild(b);
      }
    }
    function open(f) {
      current = f;
      paintList();
      clear(editor);
      const def = f ? (f.definition || (f.draft && f.draft.definition) || f.draft) : FLOW_TEMPLATE;
      const name = input("name", f ? f.name : "", { placeholder: "Lead qualification", "aria-label": T.flow_name });
      const json = textarea("definition", JSON.stringify(def, null, 2), { rows: 22, spellcheck: false, class: "fc-input fc-textarea fc-code-area", "aria-label": T.definition });
      json.addEventListener("keydown", (e) => {
        if (e.key === "Tab" && !e.shiftKey) { e.preventDefault(); const s = json.selectionStart; json.setRangeText("  ", s, json.selectionEnd, "end"); json.dispatchEvent(new Event("input", { bubbles: true })); }
      });
      const errs = h("div", { class: "fc-flow-errors", "aria-live": "polite" });
      const botSel = !f && S.bots.length > 1 ? select("bot_id", S.bots.map((b) => [b.id, b.name]), (currentBot() || {}).id, { "aria-label": T.bot, class: "fc-input fc-select fc-select-sm" }) : null;
      const parse = () => {
        try { return JSON.parse(json.value); } catch (e) { showErrs([{ message: fmt(T.json_bad, { e: e.message }) }]); return undefined; }
      };
      function showErrs(list2, ok) {
        clear(errs);
        if (ok) errs.appendChild(h("div", { class: "fc-banner fc-banner-ok" }, icon("check"), h("span", null, T.valid)));
        if (list2 && list2.length) errs.appendChild(h("div", { class: "fc-banner fc-banner-danger" }, icon("alert"),
          h("ul", { class: "fc-err-list" }, list2.map((e) => h("li", null, e.block ? h("code", null, e.block + (e.field ? "." + e.field : "")) : null, e.block ? " " : null, str(e.message || e.error || e))))));
      }
      const fmtBtn = button(T.format, { size: "sm", kind: "ghost", onclick: () => { const d = parse(); if (d !== undefined) { json.value = JSON.stringify(d, null, 2); clear(errs); } } });
      const valBtn = button(T.validate, { size: "sm", icon: "check" });
      valBtn.addEventListener("click", () => busy(valBtn, async () => {
        const d = parse();
        if (d === undefined) return;
        try { const r = await api("POST", "/api/flows/validate", { definition: d }); showErrs(r.errors || [], r.valid); } catch (x) { showErrs((x.body && x.body.errors) || [{ message: x.message }]); }
      }));
      const saveBtn = button(T.save_draft, { kind: "primary", size: "sm", icon: "check" });
      saveBtn.addEventListener("click", () => busy(saveBtn, async () => {
        const d = parse();
        if (d === undefined) return;
        clear(errs);
        try {
          const body2 = { name: name.value.trim(), definition: d };
          let saved;
          if (f) saved = await api("PUT", "/api/flows/" + f.id, body2);
          else saved = await api("POST", "/api/flows", Object.assign(body2, { bot_id: botSel ? botSel.value : (currentBot() || {}).id }));
          S.dirty = null;
          await load();
          toast(T.saved_ok, "ok");
          open(flows.find((x) => x.id === saved.id) || saved);
        } catch (x) { if (x.body && x.body.errors) showErrs(x.body.errors); else if (/name/i.test(x.message)) { showError(editor, x); } else showErrs([{ message: x.message }]); }
      }, T.saving));
      json.addEventListener("input", () => { S.dirty = editor; S.dirtyPath = location.pathname; });
      name.addEventListener("input", () => { S.dirty = editor; S.dirtyPath = location.pathname; });
      // deploy
      const deployBox = h("div", { class: "fc-deploy" });
      if (f) {
        const deps = f.deployments || [];
        const checks = CHANNELS.map(([c, l]) => {
          const dep = deps.find((d) => d.channel === c);
          const undeploy = dep ? button(T.undeploy, { size: "sm", kind: "ghost", cls: "fc-btn-danger-ghost", aria: fmt(T.undeploy_on, { c: l }), title: fmt(T.undeploy_on, { c: l }) }) : null;
          if (undeploy) undeploy.addEventListener("click", () => busy(undeploy, async () => {
            try { await api("POST", "/api/flows/" + f.id + "/undeploy", { channels: [c] }); await load(); open(flows.find((x) => x.id === f.id)); } catch (x) { fail(x); }
          }));
          return h("div", { class: "fc-deploy-row" }, h("label", { class: "fc-check" }, h("input", { type: "checkbox", name: "ch", value: c, checked: !dep }), h("span", null, l)),
            dep ? h("span", { class: "fc-chip fc-chip-accent" }, fmt(T.version, { v: dep.version })) : h("span", { class: "fc-muted" }, T.not_deployed), undeploy);
        });
        const deployBtn = button(T.deploy, { kind: "primary", size: "sm", icon: "play" });
        deployBtn.addEventListener("click", () => busy(deployBtn, async () => {
          const chs = Array.from(deployBox.querySelectorAll("input[name=ch]:checked")).map((x) => x.value);
          if (!chs.length) return;
          try {
            const r = await api("POST", "/api/flows/" + f.id + "/deploy", { channels: chs });
            await load();
            const nf = flows.find((x) => x.id === f.id);
            const v = (r && ((r.deployed && r.deployed.version) || r.version)) || (nf && nf.latest_version) || "";
            toast(fmt(T.deployed, { v, c: chs.join(", ") }), "ok");
            open(nf);
          } catch (x) { if (x.body && x.body.errors) showErrs(x.body.errors); else fail(x); }
        }));
        deployBox.append(h("div", { class: "fc-deploy-rows" }, checks), h("div", { class: "fc-form-actions" }, deployBtn));
      }
      // dry run
      const msgs = textarea("dry", "Hi\nJane Doe\njane@example.com", { rows: 4, "aria-label": T.dry_messages });
      const out = h("div", { class: "fc-dry-out", "aria-live": "polite" });
      const runBtn = button(T.run, { size: "sm", icon: "play" });
      runBtn.addEventListener("click", () => busy(runBtn, async () => {
        const d = parse();
        if (d === undefined) return;
        try {
          const r = await api("POST", f ? "/api/flows/" + f.id + "/dry-run" : "/api/flows/validate", f ? { messages: msgs.value.split("\n").filter((x) => x.trim()), definition: d } : { definition: d });
          clear(out);
          if (!f) { showErrs(r.errors || [], r.valid); return; }
          const tr = r.transcript || [];
          out.appendChild(h("div", { class: "fc-mini-label" }, T.transcript));
          out.appendChild(h("div", { class: "fc-dry-transcript" }, tr.map((m) => {
            const who = m.sender || m.role || (m.from === "visitor" ? "visitor" : "bot");
            return h("div", { class: "fc-dry-msg fc-dry-" + (who === "visitor" ? "visitor" : "bot") }, str(m.text || m.content || (typeof m === "string" ? m : JSON.stringify(m))));
          })));
          if (r.effects && r.effects.length) out.append(h("div", { class: "fc-mini-label" }, T.effects), h("pre", { class: "fc-pre" }, JSON.stringify(r.effects, null, 2)));
          if (r.variables) out.append(h("div", { class: "fc-mini-label" }, T.flow_vars), h("pre", { class: "fc-pre" }, JSON.stringify(r.variables, null, 2)));
        } catch (x) { if (x.body && x.body.errors) showErrs(x.body.errors); else fail(x); }
      }));
      add(editor, [
        card(null, null, [
          h("div", { class: "fc-flow-top" }, h("div", { class: "fc-field fc-grow" }, h("label", { class: "fc-label", for: name.id = uid("fn") }, T.flow_name), name), botSel ? h("div", { class: "fc-field" }, h("span", { class: "fc-label" }, T.bot), botSel) : null,
            f ? h("div", { class: "fc-flow-ver" }, h("span", { class: "fc-mini-label" }, T.draft), h("span", null, f.latest_version ? fmt(T.version, { v: f.latest_version }) : "—")) : null),
          h("div", { class: "fc-field" }, h("div", { class: "fc-label-row" }, h("label", { class: "fc-label", for: json.id = uid("fj") }, T.definition), h("div", { class: "fc-toolbar-group" }, fmtBtn, valBtn, saveBtn)), json),
          errs,
          f ? h("div", { class: "fc-form-actions" }, button(T.delete, { size: "sm", kind: "ghost", icon: "trash", cls: "fc-btn-danger-ghost", onclick: async () => {
            if (!(await confirmDialog(T.del_flow, f.name, T.delete, true))) return;
            try { await api("DELETE", "/api/flows/" + f.id); await load(); S.dirty = null; open(flows[0] || null); } catch (x) { fail(x); }
          } })) : null]),
        f ? h("div", { class: "fc-grid-2 fc-flow-cards" }, card(T.deploy, null, deployBox), card(T.dry_run, null, [field(T.dry_messages, msgs), h("div", { class: "fc-form-actions" }, runBtn), out])) : null]);
    }
    return () => { S.dirty = null; };
  };

  // ---------------------------------------------------------------- start
  if (D.readyState === "loading") D.addEventListener("DOMContentLoaded", route);
  else route();
})();
