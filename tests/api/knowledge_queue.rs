//! The knowledge learning queue in the database: one claim per source even with many workers,
//! a lapsed claim taken over, a stale claim unable to hand in, and re-learning that replaces a
//! source's chunks all at once.

use frontdesk::ids::WorkspaceId;
use frontdesk::status::SourceStatus;
use frontdesk::storage::knowledge::{self, NewChunk, NewSource};
use frontdesk::storage::{Db, DbConn};

use crate::helpers::{settings_for, Backend, TestDb};
use crate::on_both_backends;

on_both_backends!(
    each_waiting_source_is_claimed_by_exactly_one_worker,
    a_lapsed_claim_is_taken_over_and_the_stale_one_cannot_hand_in,
    relearning_replaces_the_chunks_at_once,
    the_bot_index_follows_its_sources,
    concurrent_questions_build_a_bot_index_once,
    the_index_cache_keeps_the_most_recently_used_within_its_bounds,
);

async fn database(backend: Backend) -> (TestDb, Db, WorkspaceId) {
    let db = TestDb::new(backend);
    let settings = settings_for(&db, |_| {});
    let store =
        tokio::task::spawn_blocking(move || frontdesk::startup::open_database(&settings).unwrap()).await.unwrap();
    let workspace = {
        let mut conn = store.conn().unwrap();
        frontdesk::storage::workspaces::create(&mut conn, "Knowledge", false).unwrap().workspace_id
    };
    (db, store, workspace)
}

fn text_source(conn: &mut DbConn, workspace: WorkspaceId, text: &str) -> i64 {
    let new =
        NewSource { kind: "text".into(), title: "Notes".into(), content: Some(text.into()), ..NewSource::default() };
    knowledge::create(conn, workspace, &new, 0).unwrap().id
}

fn chunk(text: &str) -> NewChunk {
    NewChunk { title: "Notes".into(), url: None, text: text.into(), embedding: None }
}

async fn each_waiting_source_is_claimed_by_exactly_one_worker(backend: Backend) {
    let (_db, store, workspace) = database(backend).await;
    let ids: Vec<i64> = {
        let mut conn = store.conn().unwrap();
        (0..20).map(|i| text_source(&mut conn, workspace, &format!("fact {i}"))).collect()
    };
    let workers: Vec<_> = (0..6)
        .map(|w| {
            let store = store.clone();
            std::thread::spawn(move || {
                let mut conn = store.conn().unwrap();
                let mut claimed = Vec::new();
                while let Some((row, claim)) =
                    knowledge::claim_next(&mut conn, &format!("node-{w}"), 1_000, 60_000).unwrap()
                {
                    assert_eq!(row.status, SourceStatus::Learning);
                    assert!(knowledge::complete(
                        &mut conn,
                        &claim,
                        &[chunk(row.content.as_deref().unwrap())],
                        None,
                        1,
                        2_000
                    )
                    .unwrap());
                    claimed.push(row.id);
                }
                claimed
            })
        })
        .collect();
    let mut claimed: Vec<i64> = workers.into_iter().flat_map(|w| w.join().unwrap()).collect();
    claimed.sort();
    assert_eq!(claimed, ids, "every source learned once, none twice");
    let mut conn = store.conn().unwrap();
    let rows = knowledge::list(&mut conn, workspace, None).unwrap();
    assert!(rows.iter().all(|r| r.status == SourceStatus::Learned && r.chunk_count == 1 && r.attempts == 1));
}

async fn a_lapsed_claim_is_taken_over_and_the_stale_one_cannot_hand_in(backend: Backend) {
    let (_db, store, workspace) = database(backend).await;
    let mut conn = store.conn().unwrap();
    let id = text_source(&mut conn, workspace, "opening hours");
    let (_, stale) = knowledge::claim_next(&mut conn, "node-a", 1_000, 5_000).unwrap().unwrap();
    assert!(knowledge::claim_next(&mut conn, "node-b", 2_000, 5_000).unwrap().is_none(), "held while the lease runs");
    // node-a dies; after its lease, node-b takes the source over.
    let (row, fresh) = knowledge::claim_next(&mut conn, "node-b", 7_000, 5_000).unwrap().unwrap();
    assert_eq!((row.id, row.attempts), (id, 2));
    assert!(
        !knowledge::complete(&mut conn, &stale, &[chunk("stale")], None, 1, 8_000).unwrap(),
        "the stale claim is refused"
    );
    assert!(!knowledge::fail(&mut conn, &stale, "late", 8_000).unwrap());
    assert!(knowledge::complete(&mut conn, &fresh, &[chunk("fresh")], None, 1, 9_000).unwrap());
    let chunks = knowledge::chunks(&mut conn, workspace, id).unwrap();
    assert_eq!(chunks.iter().map(|c| c.content.as_str()).collect::<Vec<_>>(), ["fresh"]);
    let row = knowledge::get(&mut conn, workspace, id).unwrap().unwrap();
    assert_eq!((row.status.as_str(), row.learned_at, row.claimed_by), ("learned", Some(9_000), None));
}

async fn relearning_replaces_the_chunks_at_once(backend: Backend) {
    let (_db, store, workspace) = database(backend).await;
    let mut conn = store.conn().unwrap();
    let id = text_source(&mut conn, workspace, "v1");
    let (_, claim) = knowledge::claim_next(&mut conn, "node", 1_000, 60_000).unwrap().unwrap();
    let first: Vec<NewChunk> = (0..1200).map(|i| chunk(&format!("old {i}"))).collect();
    assert!(knowledge::complete(&mut conn, &claim, &first, None, 1, 2_000).unwrap());
    assert_eq!(knowledge::chunks(&mut conn, workspace, id).unwrap().len(), 1200);

    let row = knowledge::relearn(&mut conn, workspace, id, 3_000).unwrap().unwrap();
    assert_eq!(row.status, SourceStatus::Waiting);
    assert_eq!(knowledge::chunks(&mut conn, workspace, id).unwrap().len(), 1200, "the old chunks answer meanwhile");
    let (_, claim) = knowledge::claim_next(&mut conn, "node", 4_000, 60_000).unwrap().unwrap();
    assert!(knowledge::complete(&mut conn, &claim, &[chunk("new 0"), chunk("new 1")], None, 1, 5_000).unwrap());
    let now: Vec<String> =
        knowledge::chunks(&mut conn, workspace, id).unwrap().into_iter().map(|c| c.content).collect();
    assert_eq!(now, ["new 0", "new 1"]);

    assert!(
        knowledge::relearn(&mut conn, WorkspaceId(workspace.get() + 1), id, 6_000).unwrap().is_none(),
        "another workspace's source"
    );
    assert!(knowledge::delete(&mut conn, workspace, id).unwrap());
    assert!(knowledge::chunks(&mut conn, workspace, id).unwrap().is_empty(), "its chunks go with it");
}

/// A bot's index follows its sources: learned chunks are found, a deleted source's are not,
/// another bot's never, and a Q&A pair answers with its own answer.
async fn the_bot_index_follows_its_sources(backend: Backend) {
    use frontdesk::domain::knowledge::cache::KnowledgeCache;
    let (_db, store, workspace) = database(backend).await;
    let (bot, other_bot) = {
        let mut conn = store.conn().unwrap();
        let settings = frontdesk::storage::BotSettings::default();
        let bot = frontdesk::storage::bots::create(&mut conn, workspace, "Main", &settings, &[]).unwrap().id;
        let other = frontdesk::storage::bots::create(&mut conn, workspace, "Other", &settings, &[]).unwrap().id;
        (bot, other)
    };
    let learn = |bot_id: i64, text: &str| {
        let mut conn = store.conn().unwrap();
        let new =
            NewSource { bot_id: Some(bot_id), kind: "text".into(), content: Some(text.into()), ..NewSource::default() };
        let id = knowledge::create(&mut conn, workspace, &new, 0).unwrap().id;
        let (_, claim) = knowledge::claim_next(&mut conn, "node", 1, 60_000).unwrap().unwrap();
        assert!(knowledge::complete(&mut conn, &claim, &[chunk(text)], None, 1, 2).unwrap());
        id
    };
    let parking = learn(bot, "Free parking is available behind the clinic on Harbour Street.");
    learn(other_bot, "Whitening costs 350 dollars.");
    let cache = KnowledgeCache::new(store.clone(), std::time::Duration::ZERO, None);
    let index = cache.index(workspace, bot).await.unwrap();
    assert_eq!(index.search("where can I park?", 3).unwrap()[0].source_id, parking);
    assert!(index.search("whitening cost", 3).unwrap().is_empty(), "another bot's knowledge stays its own");

    let again = cache.index(workspace, bot).await.unwrap();
    assert!(std::sync::Arc::ptr_eq(&index, &again), "unchanged sources: the same index");

    {
        let mut conn = store.conn().unwrap();
        let qa = NewSource {
            bot_id: Some(bot),
            kind: "qa".into(),
            question: Some("Do you accept Delta Dental insurance?".into()),
            answer: Some("Yes, we accept Delta Dental.".into()),
            ..NewSource::default()
        };
        knowledge::create(&mut conn, workspace, &qa, 3).unwrap();
        let (_, claim) = knowledge::claim_next(&mut conn, "node", 4, 60_000).unwrap().unwrap();
        assert!(knowledge::complete(&mut conn, &claim, &[], None, 1, 5).unwrap());
        assert!(knowledge::delete(&mut conn, workspace, parking).unwrap());
    }
    let index = cache.index(workspace, bot).await.unwrap();
    assert!(index.search("where can I park?", 3).unwrap().is_empty(), "a deleted source's facts are gone");
    let qa = index.best_qa("do you take delta dental insurance", 0.5).expect("the Q&A pair matches");
    assert_eq!(qa.answer, "Yes, we accept Delta Dental.");
}

/// Learns `text` as a source of `bot`; answers the source's id.
fn learn_for(store: &Db, workspace: WorkspaceId, bot_id: i64, text: &str) -> i64 {
    let mut conn = store.conn().unwrap();
    let new =
        NewSource { bot_id: Some(bot_id), kind: "text".into(), content: Some(text.into()), ..NewSource::default() };
    let id = knowledge::create(&mut conn, workspace, &new, 0).unwrap().id;
    let (_, claim) = knowledge::claim_next(&mut conn, "node", 1, 60_000).unwrap().unwrap();
    assert!(knowledge::complete(&mut conn, &claim, &[chunk(text)], None, 1, 2).unwrap());
    id
}

fn bot(store: &Db, workspace: WorkspaceId, name: &str) -> i64 {
    let mut conn = store.conn().unwrap();
    frontdesk::storage::bots::create(&mut conn, workspace, name, &frontdesk::storage::BotSettings::default(), &[])
        .unwrap()
        .id
}

/// Many questions for a bot whose index is not built yet: one build, and all get that index.
async fn concurrent_questions_build_a_bot_index_once(backend: Backend) {
    use frontdesk::domain::knowledge::cache::KnowledgeCache;
    let (_db, store, workspace) = database(backend).await;
    let bot = bot(&store, workspace, "Main");
    learn_for(&store, workspace, bot, "Free parking is available behind the clinic on Harbour Street.");
    // Checked on every question: only the single flight keeps the waiting callers from building.
    let cache = std::sync::Arc::new(KnowledgeCache::new(store.clone(), std::time::Duration::ZERO, None));
    let callers: Vec<_> = (0..16)
        .map(|_| {
            let cache = cache.clone();
            tokio::spawn(async move { cache.index(workspace, bot).await.unwrap() })
        })
        .collect();
    let indexes: Vec<_> = futures::future::join_all(callers).await.into_iter().map(Result::unwrap).collect();
    assert_eq!(cache.stats().builds, 1, "one build for 16 concurrent callers");
    assert!(indexes.iter().all(|index| std::sync::Arc::ptr_eq(index, &indexes[0])), "all got the one index");
    assert!(!indexes[0].search("where can I park?", 3).unwrap().is_empty());
}

/// With room for two indexes, a third bot's evicts the least recently used one, which is
/// built again when asked for; an index larger than the memory budget is not kept at all.
async fn the_index_cache_keeps_the_most_recently_used_within_its_bounds(backend: Backend) {
    use frontdesk::domain::knowledge::cache::KnowledgeCache;
    let (_db, store, workspace) = database(backend).await;
    let bots: Vec<i64> = ["A", "B", "C"].iter().map(|name| bot(&store, workspace, name)).collect();
    for (bot, text) in bots.iter().zip(["Parking is free.", "Whitening costs 350 dollars.", "We open at 8."]) {
        learn_for(&store, workspace, *bot, text);
    }
    let (a, b, c) = (bots[0], bots[1], bots[2]);
    let cache = KnowledgeCache::new(store.clone(), std::time::Duration::ZERO, None).with_limits(2, 64 << 20);
    cache.index(workspace, a).await.unwrap();
    cache.index(workspace, b).await.unwrap();
    cache.index(workspace, a).await.unwrap(); // A is now the more recently used
    cache.index(workspace, c).await.unwrap();
    let stats = cache.stats();
    assert_eq!((stats.entries, stats.builds, stats.evictions), (2, 3, 1), "{stats:?}");
    cache.index(workspace, a).await.unwrap();
    assert_eq!(cache.stats().builds, 3, "A was kept");
    cache.index(workspace, b).await.unwrap();
    assert_eq!(cache.stats().builds, 4, "B was evicted, so it is built again");
    assert!(cache.stats().bytes > 0);

    let tiny = KnowledgeCache::new(store.clone(), std::time::Duration::ZERO, None).with_limits(10, 1);
    tiny.index(workspace, a).await.unwrap();
    tiny.index(workspace, a).await.unwrap();
    let stats = tiny.stats();
    assert_eq!((stats.entries, stats.bytes, stats.builds), (0, 0, 2), "over the memory budget: not kept {stats:?}");
}
