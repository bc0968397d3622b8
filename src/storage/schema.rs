// The one schema both backends share (see diesel.toml): kept in step with migrations/*/ by hand,
// and checked against both backends by tests/api/schema.rs.
// Ids and times are BIGINT on both backends; booleans are BOOLEAN; JSON documents are TEXT.

diesel::table! {
    workspaces (id) {
        id -> BigInt,
        public_id -> Text,
        name -> Text,
        token_hash -> Text,
        external_key_hash -> Text,
        timezone -> Text,
        settings -> Text,
        created_at -> BigInt,
    }
}

diesel::table! {
    api_keys (id) {
        id -> BigInt,
        workspace_id -> BigInt,
        prefix -> Text,
        key_hash -> Text,
        name -> Text,
        created_at -> BigInt,
        last_used_at -> Nullable<BigInt>,
        revoked_at -> Nullable<BigInt>,
    }
}

diesel::table! {
    bots (id) {
        id -> BigInt,
        workspace_id -> BigInt,
        public_id -> Text,
        name -> Text,
        settings -> Text,
        allowed_origins -> Text,
        active -> Bool,
        created_at -> BigInt,
        updated_at -> BigInt,
    }
}

diesel::table! {
    agents (id) {
        id -> BigInt,
        workspace_id -> BigInt,
        name -> Text,
        email -> Text,
        role -> Text,
        token_hash -> Nullable<Text>,
        presence -> Text,
        created_at -> BigInt,
        updated_at -> BigInt,
        last_seen_at -> Nullable<BigInt>,
        last_assigned_at -> Nullable<BigInt>,
        password_hash -> Nullable<Text>,
    }
}

diesel::table! {
    agent_sessions (id) {
        id -> BigInt,
        workspace_id -> BigInt,
        agent_id -> BigInt,
        secret_hash -> Text,
        csrf_token -> Text,
        created_at -> BigInt,
        expires_at -> BigInt,
        last_seen_at -> BigInt,
    }
}

diesel::table! {
    password_links (id) {
        id -> BigInt,
        workspace_id -> BigInt,
        agent_id -> BigInt,
        token_hash -> Text,
        created_at -> BigInt,
        expires_at -> BigInt,
        used_at -> Nullable<BigInt>,
    }
}

diesel::table! {
    conversation_notes (id) {
        id -> BigInt,
        workspace_id -> BigInt,
        conversation_id -> Text,
        agent_id -> Nullable<BigInt>,
        agent_name -> Text,
        text -> Text,
        created_at -> BigInt,
    }
}

diesel::table! {
    canned_replies (id) {
        id -> BigInt,
        workspace_id -> BigInt,
        shortcut -> Text,
        text -> Text,
        created_at -> BigInt,
    }
}

diesel::table! {
    contacts (id) {
        id -> BigInt,
        workspace_id -> BigInt,
        kind -> Text,
        name -> Nullable<Text>,
        email -> Nullable<Text>,
        email_normalized -> Nullable<Text>,
        phone -> Nullable<Text>,
        phone_normalized -> Nullable<Text>,
        date_of_birth -> Nullable<Text>,
        insurance_provider -> Nullable<Text>,
        notes -> Nullable<Text>,
        attributes -> Text,
        created_at -> BigInt,
        updated_at -> BigInt,
    }
}

diesel::table! {
    conversations (id) {
        id -> Text,
        workspace_id -> BigInt,
        bot_id -> BigInt,
        contact_id -> Nullable<BigInt>,
        external_id -> Nullable<Text>,
        channel -> Text,
        status -> Text,
        owner -> Text,
        assigned_agent_id -> Nullable<BigInt>,
        variables -> Text,
        created_at -> BigInt,
        updated_at -> BigInt,
        closed_at -> Nullable<BigInt>,
        owner_changed_at -> Nullable<BigInt>,
        handoff_requested_at -> Nullable<BigInt>,
        agent_active_at -> Nullable<BigInt>,
        agent_read_seq -> BigInt,
        visitor_read_seq -> BigInt,
        fence -> BigInt,
    }
}

diesel::table! {
    model_usage (workspace_id, month) {
        workspace_id -> BigInt,
        month -> Text,
        prompt_tokens -> BigInt,
        completion_tokens -> BigInt,
        replies -> BigInt,
        failures -> BigInt,
    }
}

diesel::table! {
    conversation_transitions (id) {
        id -> BigInt,
        workspace_id -> BigInt,
        conversation_id -> Text,
        from_owner -> Text,
        to_owner -> Text,
        agent_id -> Nullable<BigInt>,
        actor -> Text,
        reason -> Nullable<Text>,
        created_at -> BigInt,
    }
}

diesel::table! {
    messages (id) {
        id -> BigInt,
        workspace_id -> BigInt,
        conversation_id -> Text,
        seq -> BigInt,
        sender -> Text,
        agent_id -> Nullable<BigInt>,
        content -> Text,
        media -> Nullable<Text>,
        client_msg_id -> Nullable<Text>,
        reply_to -> Nullable<BigInt>,
        status -> Text,
        created_at -> BigInt,
        metadata -> Nullable<Text>,
    }
}

diesel::table! {
    knowledge_sources (id) {
        id -> BigInt,
        workspace_id -> BigInt,
        bot_id -> Nullable<BigInt>,
        kind -> Text,
        title -> Text,
        url -> Nullable<Text>,
        content -> Nullable<Text>,
        question -> Nullable<Text>,
        answer -> Nullable<Text>,
        upload_id -> Nullable<Text>,
        status -> Text,
        error -> Nullable<Text>,
        created_at -> BigInt,
        updated_at -> BigInt,
        claimed_by -> Nullable<Text>,
        claimed_until -> Nullable<BigInt>,
        attempts -> Integer,
        chunk_count -> Integer,
        learned_at -> Nullable<BigInt>,
        crawl_max_pages -> Integer,
        crawl_max_depth -> Integer,
        use_sitemap -> Bool,
        pages_learned -> Integer,
        relearn_count -> Integer,
    }
}

diesel::table! {
    unanswered_questions (id) {
        id -> BigInt,
        workspace_id -> BigInt,
        bot_id -> BigInt,
        question -> Text,
        normalized -> Text,
        times_asked -> Integer,
        conversation_id -> Nullable<Text>,
        first_asked_at -> BigInt,
        last_asked_at -> BigInt,
        reason -> Text,
        detail -> Nullable<Text>,
    }
}

diesel::table! {
    knowledge_chunks (id) {
        id -> BigInt,
        workspace_id -> BigInt,
        source_id -> BigInt,
        ordinal -> Integer,
        content -> Text,
        created_at -> BigInt,
        title -> Text,
        url -> Nullable<Text>,
        embedding -> Nullable<Binary>,
        embedding_model -> Nullable<Text>,
    }
}

diesel::table! {
    doctors (id) {
        id -> BigInt,
        workspace_id -> BigInt,
        name -> Text,
        specialty -> Text,
        bio -> Text,
        photo_url -> Text,
        availability -> Text,
        active -> Bool,
        created_at -> BigInt,
    }
}

diesel::table! {
    services (id) {
        id -> BigInt,
        workspace_id -> BigInt,
        name -> Text,
        duration_min -> Integer,
        buffer_min -> Integer,
        price_cents -> Nullable<BigInt>,
        created_at -> BigInt,
    }
}

diesel::table! {
    working_hours (id) {
        id -> BigInt,
        workspace_id -> BigInt,
        doctor_id -> BigInt,
        weekday -> Integer,
        start_minute -> Integer,
        end_minute -> Integer,
    }
}

diesel::table! {
    time_off (id) {
        id -> BigInt,
        workspace_id -> BigInt,
        doctor_id -> BigInt,
        starts_at -> BigInt,
        ends_at -> BigInt,
        reason -> Text,
    }
}

diesel::table! {
    bookings (id) {
        id -> BigInt,
        workspace_id -> BigInt,
        doctor_id -> Nullable<BigInt>,
        service_id -> Nullable<BigInt>,
        contact_id -> Nullable<BigInt>,
        conversation_id -> Nullable<Text>,
        customer_name -> Text,
        customer_email -> Nullable<Text>,
        customer_phone -> Nullable<Text>,
        starts_at -> BigInt,
        ends_at -> BigInt,
        status -> Text,
        notes -> Text,
        source -> Text,
        created_at -> BigInt,
        updated_at -> BigInt,
        occupied_until -> BigInt,
        doctor_name -> Text,
        service_name -> Text,
    }
}

diesel::table! {
    booking_holds (id) {
        id -> BigInt,
        workspace_id -> BigInt,
        doctor_id -> BigInt,
        conversation_id -> Nullable<Text>,
        starts_at -> BigInt,
        ends_at -> BigInt,
        expires_at -> BigInt,
    }
}

diesel::table! {
    leads (id) {
        id -> BigInt,
        workspace_id -> BigInt,
        contact_id -> Nullable<BigInt>,
        conversation_id -> Nullable<Text>,
        name -> Nullable<Text>,
        email -> Nullable<Text>,
        phone -> Nullable<Text>,
        stage -> Text,
        score -> Double,
        treatment_interest -> Nullable<Text>,
        source -> Text,
        created_at -> BigInt,
        updated_at -> BigInt,
    }
}

diesel::table! {
    lead_events (id) {
        id -> BigInt,
        workspace_id -> BigInt,
        lead_id -> BigInt,
        kind -> Text,
        score_before -> Nullable<Double>,
        score_after -> Nullable<Double>,
        reason -> Text,
        created_at -> BigInt,
    }
}

diesel::table! {
    forms (id) {
        id -> BigInt,
        workspace_id -> BigInt,
        name -> Text,
        kind -> Text,
        fields -> Text,
        created_at -> BigInt,
    }
}

diesel::table! {
    form_submissions (id) {
        id -> BigInt,
        workspace_id -> BigInt,
        form_id -> BigInt,
        contact_id -> Nullable<BigInt>,
        data -> Text,
        created_at -> BigInt,
    }
}

diesel::table! {
    webhook_endpoints (id) {
        id -> BigInt,
        workspace_id -> BigInt,
        url -> Text,
        events -> Text,
        description -> Text,
        active -> Bool,
        secret -> Text,
        previous_secret -> Nullable<Text>,
        previous_secret_expires_at -> Nullable<BigInt>,
        disabled_reason -> Nullable<Text>,
        failing_since -> Nullable<BigInt>,
        created_at -> BigInt,
        updated_at -> BigInt,
    }
}

diesel::table! {
    webhook_events (id) {
        id -> BigInt,
        workspace_id -> BigInt,
        event_type -> Text,
        payload -> Text,
        created_at -> BigInt,
    }
}

diesel::table! {
    webhook_deliveries (id) {
        id -> BigInt,
        workspace_id -> BigInt,
        endpoint_id -> BigInt,
        event_id -> BigInt,
        status -> Text,
        attempts -> Integer,
        next_attempt_at -> BigInt,
        claimed_by -> Nullable<Text>,
        claimed_until -> Nullable<BigInt>,
        created_at -> BigInt,
        updated_at -> BigInt,
    }
}

diesel::table! {
    webhook_attempts (id) {
        id -> BigInt,
        workspace_id -> BigInt,
        delivery_id -> BigInt,
        attempted_at -> BigInt,
        status_code -> Nullable<Integer>,
        latency_ms -> BigInt,
        response_excerpt -> Nullable<Text>,
        error -> Nullable<Text>,
    }
}

diesel::table! {
    uploads (id) {
        id -> Text,
        workspace_id -> BigInt,
        filename -> Text,
        content_type -> Text,
        size_bytes -> BigInt,
        sha256 -> Text,
        storage_path -> Text,
        created_at -> BigInt,
    }
}

diesel::table! {
    flows (id) {
        id -> BigInt,
        workspace_id -> BigInt,
        bot_id -> Nullable<BigInt>,
        name -> Text,
        channel -> Text,
        definition -> Text,
        active -> Bool,
        created_at -> BigInt,
        updated_at -> BigInt,
    }
}

diesel::table! {
    flow_versions (id) {
        id -> BigInt,
        workspace_id -> BigInt,
        flow_id -> BigInt,
        version -> BigInt,
        definition -> Text,
        created_at -> BigInt,
    }
}

diesel::table! {
    flow_deployments (bot_id, channel) {
        bot_id -> BigInt,
        channel -> Text,
        workspace_id -> BigInt,
        flow_id -> BigInt,
        version_id -> BigInt,
        deployed_at -> BigInt,
    }
}

diesel::table! {
    idempotency_keys (workspace_id, scope, idem_key) {
        workspace_id -> BigInt,
        idem_key -> Text,
        scope -> Text,
        request_hash -> Text,
        status_code -> Integer,
        response_body -> Text,
        created_at -> BigInt,
    }
}

diesel::joinable!(api_keys -> workspaces (workspace_id));
diesel::joinable!(bots -> workspaces (workspace_id));
diesel::joinable!(agents -> workspaces (workspace_id));
diesel::joinable!(contacts -> workspaces (workspace_id));
diesel::joinable!(conversations -> workspaces (workspace_id));
diesel::joinable!(conversations -> bots (bot_id));
diesel::joinable!(conversations -> contacts (contact_id));
diesel::joinable!(conversations -> agents (assigned_agent_id));
diesel::joinable!(messages -> workspaces (workspace_id));
diesel::joinable!(messages -> conversations (conversation_id));
diesel::joinable!(messages -> agents (agent_id));
diesel::joinable!(knowledge_sources -> workspaces (workspace_id));
diesel::joinable!(knowledge_sources -> bots (bot_id));
diesel::joinable!(knowledge_chunks -> workspaces (workspace_id));
diesel::joinable!(knowledge_chunks -> knowledge_sources (source_id));
diesel::joinable!(unanswered_questions -> workspaces (workspace_id));
diesel::joinable!(unanswered_questions -> bots (bot_id));
diesel::joinable!(doctors -> workspaces (workspace_id));
diesel::joinable!(services -> workspaces (workspace_id));
diesel::joinable!(working_hours -> workspaces (workspace_id));
diesel::joinable!(working_hours -> doctors (doctor_id));
diesel::joinable!(time_off -> workspaces (workspace_id));
diesel::joinable!(time_off -> doctors (doctor_id));
diesel::joinable!(bookings -> workspaces (workspace_id));
diesel::joinable!(bookings -> doctors (doctor_id));
diesel::joinable!(bookings -> services (service_id));
diesel::joinable!(bookings -> contacts (contact_id));
diesel::joinable!(bookings -> conversations (conversation_id));
diesel::joinable!(booking_holds -> workspaces (workspace_id));
diesel::joinable!(booking_holds -> doctors (doctor_id));
diesel::joinable!(booking_holds -> conversations (conversation_id));
diesel::joinable!(leads -> workspaces (workspace_id));
diesel::joinable!(leads -> contacts (contact_id));
diesel::joinable!(leads -> conversations (conversation_id));
diesel::joinable!(lead_events -> workspaces (workspace_id));
diesel::joinable!(lead_events -> leads (lead_id));
diesel::joinable!(forms -> workspaces (workspace_id));
diesel::joinable!(form_submissions -> workspaces (workspace_id));
diesel::joinable!(form_submissions -> forms (form_id));
diesel::joinable!(form_submissions -> contacts (contact_id));
diesel::joinable!(webhook_endpoints -> workspaces (workspace_id));
diesel::joinable!(webhook_events -> workspaces (workspace_id));
diesel::joinable!(webhook_deliveries -> workspaces (workspace_id));
diesel::joinable!(webhook_deliveries -> webhook_endpoints (endpoint_id));
diesel::joinable!(webhook_deliveries -> webhook_events (event_id));
diesel::joinable!(webhook_attempts -> workspaces (workspace_id));
diesel::joinable!(webhook_attempts -> webhook_deliveries (delivery_id));
diesel::joinable!(uploads -> workspaces (workspace_id));
diesel::joinable!(flows -> workspaces (workspace_id));
diesel::joinable!(flows -> bots (bot_id));
diesel::joinable!(flow_versions -> flows (flow_id));
diesel::joinable!(flow_deployments -> flow_versions (version_id));
diesel::joinable!(idempotency_keys -> workspaces (workspace_id));
diesel::joinable!(conversation_transitions -> conversations (conversation_id));
diesel::joinable!(model_usage -> workspaces (workspace_id));

diesel::allow_tables_to_appear_in_same_query!(
    workspaces,
    api_keys,
    bots,
    agents,
    contacts,
    conversations,
    messages,
    knowledge_sources,
    knowledge_chunks,
    unanswered_questions,
    doctors,
    services,
    working_hours,
    time_off,
    bookings,
    booking_holds,
    leads,
    lead_events,
    forms,
    form_submissions,
    webhook_endpoints,
    webhook_events,
    webhook_deliveries,
    webhook_attempts,
    uploads,
    flows,
    flow_versions,
    flow_deployments,
    idempotency_keys,
    conversation_transitions,
    model_usage,
    agent_sessions,
    password_links,
    conversation_notes,
    canned_replies,
);
diesel::joinable!(agent_sessions -> agents (agent_id));
