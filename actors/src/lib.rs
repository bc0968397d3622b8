//! frontdesk's live runtime, with no HTTP and no SQL in it.
//!
//! One [`session::ConversationSession`] actor per live conversation, found or started by the
//! node's [`registry::SessionRegistry`]; one [`booking::BookingActor`] per workspace that books;
//! one [`leads::LeadScorer`] per node. Everything the actors need from outside (storage, the
//! brain, event fan-out, the clock) comes through the traits in [`ports`], implemented by the
//! `frontdesk` crate; tests implement them in memory.

pub mod booking;
pub mod leads;
pub mod ports;
pub mod registry;
pub mod session;

pub use booking::{BookingDesk, DeskError};
pub use leads::{LeadScorer, Rescore, RescoreNow};
pub use ports::{
    inbox_topic, merge_variables, variables_patch, AgentRef, Appended, Brain, BrainError, BrainOutput, BrainRequest,
    ChangedBy, Clock, ConversationEvent, ConversationId, ConversationSnapshot, ConversationStatus, ConversationStore,
    EventBus, LeadSignals, NewMessage, Owner, OwnershipChange, OwnershipOutcome, Ports, Sender, StateWriter,
    StoreError, StoredMessage, SystemClock, TurnState,
};
pub use registry::{OnStop, SessionRegistry};
pub use session::{
    coalesced_turns, AgentMessage, AgentTyping, CloseConversation, ConversationSession, Drain, HandBack, MarkRead,
    Posted, RequestHandoff, SessionConfig, SessionError, TakeOver, UpdateVariables, VisitorMessage, VisitorTyping,
};
