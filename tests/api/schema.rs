//! The hand-kept schema (`src/storage/schema.rs`) against what each backend's migrations build: every
//! migration runs on a fresh database, which is then read back (SQLite's `pragma_table_info`,
//! PostgreSQL's `information_schema`) and compared, table by table and column by column (type,
//! nullability, primary key), with the `diesel::table!` definitions as compiled. Any table or
//! column one side has and the other has not, or any type, nullability or key they disagree on,
//! fails the test and is named in its message.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use diesel::sql_types::{BigInt, Binary, Bool, Double, Integer, Nullable, Text};
use diesel::{Column, Expression, QueryDsl, QueryableByName, RunQueryDsl, Table};
use frontdesk::storage::{schema, DbConn};

use crate::helpers::{settings_for, Backend, TestDb};
use crate::on_both_backends;

on_both_backends!(the_migrations_build_exactly_the_schema);

/// A column as the schema or a database describes it: the diesel type it reads as, and whether
/// it may hold NULL.
#[derive(Debug, Clone, PartialEq, Eq)]
struct ColumnType {
    sql_type: String,
    nullable: bool,
}

impl std::fmt::Display for ColumnType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.nullable {
            write!(f, "Nullable<{}>", self.sql_type)
        } else {
            write!(f, "{}", self.sql_type)
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct TableShape {
    columns: BTreeMap<String, ColumnType>,
    primary_key: Vec<String>,
}

type Shapes = BTreeMap<String, TableShape>;

/// The name of a diesel SQL type, as `schema.rs` spells it.
trait SqlName {
    const NAME: &'static str;
    const NULLABLE: bool = false;
}

macro_rules! sql_names {
    ($($ty:ident),*) => {
        $(impl SqlName for $ty {
            const NAME: &'static str = stringify!($ty);
        })*
    };
}

sql_names!(BigInt, Integer, Text, Bool, Double, Binary);

impl<T: SqlName> SqlName for Nullable<T> {
    const NAME: &'static str = T::NAME;
    const NULLABLE: bool = true;
}

/// A table's `AllColumns` tuple, described column by column from the compiled types.
trait Columns {
    fn describe(out: &mut BTreeMap<String, ColumnType>);
}

macro_rules! tuple_columns {
    () => {};
    ($first:ident $($rest:ident)*) => {
        impl<$first, $($rest),*> Columns for ($first, $($rest,)*)
        where
            $first: Column,
            <$first as Expression>::SqlType: SqlName,
            $($rest: Column, <$rest as Expression>::SqlType: SqlName,)*
        {
            fn describe(out: &mut BTreeMap<String, ColumnType>) {
                out.insert(
                    <$first as Column>::NAME.to_owned(),
                    ColumnType {
                        sql_type: <<$first as Expression>::SqlType as SqlName>::NAME.to_owned(),
                        nullable: <<$first as Expression>::SqlType as SqlName>::NULLABLE,
                    },
                );
                $(out.insert(
                    <$rest as Column>::NAME.to_owned(),
                    ColumnType {
                        sql_type: <<$rest as Expression>::SqlType as SqlName>::NAME.to_owned(),
                        nullable: <<$rest as Expression>::SqlType as SqlName>::NULLABLE,
                    },
                );)*
            }
        }
        tuple_columns!($($rest)*);
    };
}

// Diesel's widest table without its `64-column-tables` feature.
tuple_columns!(C1 C2 C3 C4 C5 C6 C7 C8 C9 C10 C11 C12 C13 C14 C15 C16 C17 C18 C19 C20 C21 C22 C23 C24 C25 C26 C27 C28 C29 C30 C31 C32);

/// One compiled table: its SQL name and primary key as diesel writes them in a query, its
/// columns from their types.
macro_rules! shape_of {
    ($table:ident) => {{
        let mut columns = BTreeMap::new();
        <<schema::$table::table as Table>::AllColumns as Columns>::describe(&mut columns);
        let table = schema::$table::table;
        let query = diesel::debug_query::<diesel::pg::Pg, _>(&table.select(table.primary_key())).to_string();
        let (name, primary_key) = parse_select(&query);
        (name, TableShape { columns, primary_key })
    }};
}

/// Every table `schema.rs` defines; [`every_table_of_schema_rs_is_compared`] keeps this list
/// complete.
fn schema_shapes() -> Shapes {
    let tables = [
        shape_of!(workspaces),
        shape_of!(api_keys),
        shape_of!(bots),
        shape_of!(agents),
        shape_of!(agent_sessions),
        shape_of!(password_links),
        shape_of!(conversation_notes),
        shape_of!(canned_replies),
        shape_of!(contacts),
        shape_of!(conversations),
        shape_of!(model_usage),
        shape_of!(conversation_transitions),
        shape_of!(messages),
        shape_of!(knowledge_sources),
        shape_of!(unanswered_questions),
        shape_of!(knowledge_chunks),
        shape_of!(doctors),
        shape_of!(services),
        shape_of!(working_hours),
        shape_of!(time_off),
        shape_of!(bookings),
        shape_of!(booking_holds),
        shape_of!(leads),
        shape_of!(lead_events),
        shape_of!(forms),
        shape_of!(form_submissions),
        shape_of!(webhook_endpoints),
        shape_of!(webhook_events),
        shape_of!(webhook_deliveries),
        shape_of!(webhook_attempts),
        shape_of!(uploads),
        shape_of!(flows),
        shape_of!(flow_versions),
        shape_of!(flow_deployments),
        shape_of!(idempotency_keys),
    ];
    let count = tables.len();
    let shapes: Shapes = tables.into_iter().collect();
    assert_eq!(shapes.len(), count, "a table is listed twice");
    shapes
}

/// The table and the selected columns of `SELECT "t"."a", "t"."b" FROM "t" -- binds: []`.
fn parse_select(query: &str) -> (String, Vec<String>) {
    let unquote = |s: &str| s.trim().trim_matches('"').to_owned();
    let rest = query.strip_prefix("SELECT ").unwrap_or_else(|| panic!("not a SELECT: {query}"));
    let (columns, rest) = rest.split_once(" FROM ").unwrap_or_else(|| panic!("no FROM: {query}"));
    let table = unquote(rest.split(" -- ").next().unwrap_or(rest));
    let columns =
        columns.split(", ").map(|c| unquote(c.rsplit_once("\".\"").map_or(c, |(_, column)| column))).collect();
    (table, columns)
}

/// The tables `schema.rs` declares, read from its text (to check that none is left out above).
fn tables_in_schema_rs() -> BTreeSet<String> {
    let text = include_str!("../../src/storage/schema.rs");
    let mut tables = BTreeSet::new();
    let mut lines = text.lines();
    while let Some(line) = lines.next() {
        if line.trim() == "diesel::table! {" {
            let declaration = lines.next().expect("a table after `diesel::table! {`");
            let name = declaration.split_whitespace().next().expect("the table's name");
            tables.insert(name.to_owned());
        }
    }
    tables
}

#[derive(QueryableByName)]
struct SqliteTable {
    #[diesel(sql_type = Text)]
    name: String,
}

#[derive(QueryableByName)]
struct SqliteColumn {
    #[diesel(sql_type = Text)]
    name: String,
    #[diesel(sql_type = Text)]
    declared: String,
    #[diesel(sql_type = Integer)]
    notnull: i32,
    #[diesel(sql_type = Integer)]
    pk: i32,
}

#[derive(QueryableByName)]
struct PgColumn {
    #[diesel(sql_type = Text)]
    table_name: String,
    #[diesel(sql_type = Text)]
    column_name: String,
    #[diesel(sql_type = Text)]
    data_type: String,
    #[diesel(sql_type = Text)]
    is_nullable: String,
}

#[derive(QueryableByName)]
struct PgKey {
    #[diesel(sql_type = Text)]
    table_name: String,
    #[diesel(sql_type = Text)]
    column_name: String,
}

/// Diesel's bookkeeping, not part of the schema.
const MIGRATIONS_TABLE: &str = "__diesel_schema_migrations";

/// What SQLite says it built. `INTEGER PRIMARY KEY` is the 64-bit rowid (`BigInt`, never NULL);
/// any other declared `INTEGER` reads as `Integer`. A primary key column counts as NOT NULL: the
/// code never writes a NULL key, though SQLite (unlike PostgreSQL) would let a non-integer one
/// be NULL unless the column says NOT NULL.
fn sqlite_shapes(conn: &mut diesel::SqliteConnection) -> Shapes {
    let tables: Vec<SqliteTable> = diesel::sql_query(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name",
    )
    .load(conn)
    .expect("sqlite tables");
    let mut shapes = Shapes::new();
    for table in tables.into_iter().filter(|t| t.name != MIGRATIONS_TABLE) {
        let mut columns: Vec<SqliteColumn> = diesel::sql_query(format!(
            "SELECT name, type AS declared, \"notnull\", pk FROM pragma_table_info('{}') ORDER BY cid",
            table.name
        ))
        .load(conn)
        .expect("sqlite columns");
        let rowid = columns.iter().filter(|c| c.pk > 0).count() == 1;
        let mut shape = TableShape::default();
        for column in &columns {
            let declared = column.declared.to_uppercase();
            let sql_type = match declared.as_str() {
                "INTEGER" if rowid && column.pk > 0 => "BigInt",
                "BIGINT" => "BigInt",
                "INTEGER" => "Integer",
                "TEXT" => "Text",
                "BOOLEAN" => "Bool",
                "DOUBLE PRECISION" | "REAL" => "Double",
                "BLOB" => "Binary",
                _ => declared.as_str(),
            };
            let nullable = column.notnull == 0 && column.pk == 0;
            shape.columns.insert(column.name.clone(), ColumnType { sql_type: sql_type.to_owned(), nullable });
        }
        columns.retain(|c| c.pk > 0);
        columns.sort_by_key(|c| c.pk);
        shape.primary_key = columns.into_iter().map(|c| c.name).collect();
        shapes.insert(table.name, shape);
    }
    shapes
}

/// What PostgreSQL says it built, in the database's current schema.
fn postgres_shapes(conn: &mut diesel::PgConnection) -> Shapes {
    let columns: Vec<PgColumn> = diesel::sql_query(
        "SELECT table_name::text AS table_name, column_name::text AS column_name, data_type::text AS data_type, \
         is_nullable::text AS is_nullable \
         FROM information_schema.columns WHERE table_schema = current_schema() ORDER BY table_name, ordinal_position",
    )
    .load(conn)
    .expect("postgres columns");
    let keys: Vec<PgKey> = diesel::sql_query(
        "SELECT k.table_name::text AS table_name, k.column_name::text AS column_name \
         FROM information_schema.table_constraints c \
         JOIN information_schema.key_column_usage k \
           ON k.constraint_schema = c.constraint_schema AND k.constraint_name = c.constraint_name \
          AND k.table_name = c.table_name \
         WHERE c.constraint_type = 'PRIMARY KEY' AND c.table_schema = current_schema() \
         ORDER BY k.table_name, k.ordinal_position",
    )
    .load(conn)
    .expect("postgres primary keys");
    let mut shapes = Shapes::new();
    for column in columns.into_iter().filter(|c| c.table_name != MIGRATIONS_TABLE) {
        let sql_type = match column.data_type.as_str() {
            "bigint" => "BigInt",
            "integer" => "Integer",
            "text" => "Text",
            "boolean" => "Bool",
            "double precision" => "Double",
            "bytea" => "Binary",
            other => other,
        };
        let nullable = column.is_nullable == "YES";
        shapes
            .entry(column.table_name)
            .or_default()
            .columns
            .insert(column.column_name, ColumnType { sql_type: sql_type.to_owned(), nullable });
    }
    for key in keys.into_iter().filter(|k| k.table_name != MIGRATIONS_TABLE) {
        shapes.entry(key.table_name).or_default().primary_key.push(key.column_name);
    }
    shapes
}

/// Every way `built` (a database) differs from `declared` (schema.rs), one line each.
fn differences(declared: &Shapes, built: &Shapes) -> Vec<String> {
    let mut out = Vec::new();
    for (table, wanted) in declared {
        let Some(found) = built.get(table) else {
            out.push(format!("table {table}: in schema.rs, not built by the migrations"));
            continue;
        };
        for (column, want) in &wanted.columns {
            match found.columns.get(column) {
                None => out.push(format!("{table}.{column}: in schema.rs ({want}), not in the database")),
                Some(got) if got != want => {
                    out.push(format!("{table}.{column}: schema.rs says {want}, the database has {got}"))
                }
                Some(_) => {}
            }
        }
        for (column, got) in &found.columns {
            if !wanted.columns.contains_key(column) {
                out.push(format!("{table}.{column}: in the database ({got}), not in schema.rs"));
            }
        }
        if wanted.primary_key != found.primary_key {
            out.push(format!(
                "{table}: schema.rs's primary key is ({}), the database's is ({})",
                wanted.primary_key.join(", "),
                found.primary_key.join(", ")
            ));
        }
    }
    for table in built.keys().filter(|t| !declared.contains_key(*t)) {
        out.push(format!("table {table}: built by the migrations, not in schema.rs"));
    }
    out
}

async fn the_migrations_build_exactly_the_schema(backend: Backend) {
    let db = TestDb::new(backend);
    let settings = settings_for(&db, |_| {});
    let built = tokio::task::spawn_blocking(move || {
        let store = frontdesk::startup::open_database(&settings).expect("migrated database");
        let mut conn = store.conn().expect("connection");
        match &mut *conn {
            DbConn::Sqlite(c) => sqlite_shapes(c),
            DbConn::Postgres(c) => postgres_shapes(c),
        }
    })
    .await
    .unwrap();
    let declared = schema_shapes();
    let differences = differences(&declared, &built);
    assert!(
        differences.is_empty(),
        "src/storage/schema.rs and the {backend:?} migrations disagree:\n  {}",
        differences.join("\n  ")
    );
}

#[test]
fn every_table_of_schema_rs_is_compared() {
    let compared: BTreeSet<String> = schema_shapes().into_keys().collect();
    assert_eq!(compared, tables_in_schema_rs(), "add the table to schema_shapes() in tests/api/schema.rs");
}

/// The comparison itself can fail: each kind of disagreement is reported.
#[test]
fn every_kind_of_disagreement_is_reported() {
    let declared = schema_shapes();
    assert!(differences(&declared, &declared).is_empty());
    let mut built = declared.clone();
    let bookings = built.get_mut("bookings").unwrap();
    bookings.columns.get_mut("starts_at").unwrap().sql_type = "Text".into();
    bookings.columns.get_mut("notes").unwrap().nullable = true;
    bookings.columns.remove("source");
    bookings.columns.insert("colour".into(), ColumnType { sql_type: "Text".into(), nullable: true });
    built.get_mut("model_usage").unwrap().primary_key.reverse();
    built.remove("uploads");
    built.insert("extra".into(), TableShape::default());
    let found = differences(&declared, &built);
    for expected in [
        "bookings.starts_at: schema.rs says BigInt, the database has Text",
        "bookings.notes: schema.rs says Text, the database has Nullable<Text>",
        "bookings.source: in schema.rs (Text), not in the database",
        "bookings.colour: in the database (Nullable<Text>), not in schema.rs",
        "model_usage: schema.rs's primary key is (workspace_id, month), the database's is (month, workspace_id)",
        "table uploads: in schema.rs, not built by the migrations",
        "table extra: built by the migrations, not in schema.rs",
    ] {
        assert!(found.iter().any(|f| f == expected), "{expected:?} not reported in {found:#?}");
    }
    assert_eq!(found.len(), 7, "{found:#?}");
}

/// The two backends' migrations go in step: the same names, each with an up and a down.
#[test]
fn both_backends_have_the_same_migrations() {
    let names = |backend: &str| -> BTreeSet<String> {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations").join(backend);
        std::fs::read_dir(&dir)
            .unwrap_or_else(|err| panic!("{}: {err}", dir.display()))
            .map(|entry| {
                let path = entry.unwrap().path();
                for file in ["up.sql", "down.sql"] {
                    assert!(path.join(file).is_file(), "{} has no {file}", path.display());
                }
                path.file_name().unwrap().to_string_lossy().into_owned()
            })
            .collect()
    };
    let sqlite = names("sqlite");
    assert!(!sqlite.is_empty());
    assert_eq!(sqlite, names("postgres"));
}
