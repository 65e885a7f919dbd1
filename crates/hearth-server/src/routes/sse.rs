//! Server-sent events of streamed chat and text completions.
//!
//! Each choice's tokens go out as they come; a choice's last chunk carries its
//! `finish_reason`; with `stream_options.include_usage` a final chunk with empty
//! `choices` carries the usage; `data: [DONE]` ends the stream. Dropping the response
//! (client gone) drops the engine streams, which cancels the generation.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures_util::stream::{self, BoxStream, SelectAll, StreamExt};
use hearth_api::{
    ChatChunk, ChatChunkChoice, ChatDelta, CompletionChoice, CompletionResponse, Usage,
};
use hearth_engine::EventStream;
use serde::Serialize;

use super::chat::chat_logprobs;
use super::completions::completion_logprobs;
use crate::guard::OutputPolicy;
use crate::run::{merge, ChoiceEvent, UsageGuard};
use crate::state::{AppState, ServedModel};
use hearth_guard::moderation::Category;
use hearth_guard::stream::StreamFilter;

/// Which wire format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flavor {
    /// `chat.completion.chunk`.
    Chat,
    /// `text_completion`.
    Completion,
}

struct Streaming {
    flavor: Flavor,
    id: String,
    created: u64,
    model: Arc<ServedModel>,
    merged: SelectAll<BoxStream<'static, (usize, ChoiceEvent)>>,
    n: usize,
    usage: UsageGuard,
    include_usage: bool,
    pending: VecDeque<Event>,
    /// Text offset per choice (completions' `text_offset`).
    offsets: Vec<usize>,
    finished: bool,
    state: Arc<AppState>,
    /// Output filter per choice (by the caller's output policy).
    filters: Vec<Option<StreamFilter>>,
    /// Choices stopped by their filter: their engine streams end at the next event.
    stopped: Vec<Arc<AtomicBool>>,
    flagged: Vec<Category>,
    blocked: bool,
}

fn event<T: Serialize>(v: &T) -> Event {
    Event::default().data(serde_json::to_string(v).unwrap_or_else(|e| {
        format!(r#"{{"error":{{"message":"serialising a chunk: {e}","type":"server_error"}}}}"#)
    }))
}

impl Streaming {
    /// A chunk with `text` for choice `index` and no finish reason.
    fn text_event(&mut self, index: usize, text: String) -> Event {
        match self.flavor {
            Flavor::Chat => self.chat_chunk(
                vec![ChatChunkChoice {
                    index,
                    delta: ChatDelta {
                        role: None,
                        content: Some(text),
                    },
                    logprobs: None,
                    finish_reason: None,
                }],
                None,
            ),
            Flavor::Completion => {
                self.offsets[index] += text.len();
                self.text_chunk(
                    vec![CompletionChoice {
                        index,
                        text,
                        logprobs: None,
                        finish_reason: None,
                    }],
                    None,
                )
            }
        }
    }

    /// Ends choice `index` by the output policy: its last released text, then
    /// `finish_reason: content_filter`; its generation is cancelled.
    fn stop_choice(&mut self, index: usize, text: String) {
        self.stopped[index].store(true, Ordering::Relaxed);
        self.blocked = true;
        if !text.is_empty() {
            let e = self.text_event(index, text);
            self.pending.push_back(e);
        }
        let reason = Some("content_filter".to_string());
        let e = match self.flavor {
            Flavor::Chat => self.chat_chunk(
                vec![ChatChunkChoice {
                    index,
                    delta: ChatDelta::default(),
                    logprobs: None,
                    finish_reason: reason,
                }],
                None,
            ),
            Flavor::Completion => self.text_chunk(
                vec![CompletionChoice {
                    index,
                    text: String::new(),
                    logprobs: None,
                    finish_reason: reason,
                }],
                None,
            ),
        };
        self.pending.push_back(e);
    }

    fn chat_chunk(&self, choices: Vec<ChatChunkChoice>, usage: Option<Usage>) -> Event {
        event(&ChatChunk {
            id: self.id.clone(),
            object: "chat.completion.chunk".into(),
            created: self.created,
            model: self.model.name.clone(),
            choices,
            usage,
            system_fingerprint: Some(crate::FINGERPRINT.into()),
        })
    }

    fn text_chunk(&self, choices: Vec<CompletionChoice>, usage: Option<Usage>) -> Event {
        event(&CompletionResponse {
            id: self.id.clone(),
            object: "text_completion".into(),
            created: self.created,
            model: self.model.name.clone(),
            choices,
            usage,
            system_fingerprint: Some(crate::FINGERPRINT.into()),
        })
    }

    fn on_event(&mut self, index: usize, ev: ChoiceEvent) {
        let tok = &self.model.tokenizer;
        match ev {
            ChoiceEvent::Token { id, text, logprobs } => {
                self.usage.completion_tokens.fetch_add(1, Ordering::Relaxed);
                if self.stopped[index].load(Ordering::Relaxed) {
                    return;
                }
                let mut text = text;
                let mut cut = false;
                if let Some(f) = self.filters[index].as_mut() {
                    let out = f.push(&text);
                    text = out.text;
                    self.flagged.extend(out.flagged);
                    cut = out.blocked.is_some();
                }
                if cut {
                    self.stop_choice(index, text);
                    return;
                }
                if text.is_empty() && logprobs.is_none() {
                    return;
                }
                let e = match self.flavor {
                    Flavor::Chat => {
                        let lp = logprobs.map(|l| chat_logprobs(tok, &[id], &[l]));
                        self.chat_chunk(
                            vec![ChatChunkChoice {
                                index,
                                delta: ChatDelta {
                                    role: None,
                                    content: Some(text),
                                },
                                logprobs: lp,
                                finish_reason: None,
                            }],
                            None,
                        )
                    }
                    Flavor::Completion => {
                        let start = self.offsets[index];
                        self.offsets[index] += text.len();
                        let lp = logprobs.map(|l| completion_logprobs(tok, &[id], &[l], start));
                        self.text_chunk(
                            vec![CompletionChoice {
                                index,
                                text,
                                logprobs: lp,
                                finish_reason: None,
                            }],
                            None,
                        )
                    }
                };
                self.pending.push_back(e);
            }
            ChoiceEvent::Finished(reason, cached) => {
                self.usage.note_cached(index, self.n, cached);
                if self.stopped[index].load(Ordering::Relaxed) {
                    return;
                }
                if let Some(mut f) = self.filters[index].take() {
                    let out = f.finish();
                    self.flagged.extend(out.flagged);
                    if out.blocked.is_some() {
                        self.stop_choice(index, out.text);
                        return;
                    }
                    if !out.text.is_empty() {
                        let e = self.text_event(index, out.text);
                        self.pending.push_back(e);
                    }
                }
                let reason = Some(reason.as_str().to_string());
                let e = match self.flavor {
                    Flavor::Chat => self.chat_chunk(
                        vec![ChatChunkChoice {
                            index,
                            delta: ChatDelta::default(),
                            logprobs: None,
                            finish_reason: reason,
                        }],
                        None,
                    ),
                    Flavor::Completion => self.text_chunk(
                        vec![CompletionChoice {
                            index,
                            text: String::new(),
                            logprobs: None,
                            finish_reason: reason,
                        }],
                        None,
                    ),
                };
                self.pending.push_back(e);
            }
            ChoiceEvent::Failed(message) => {
                tracing::error!(request_id = %self.id, "generation failed: {message}");
                self.pending.push_back(event(&serde_json::json!({
                    "error": {"message": format!("generation failed: {message}"),
                              "type": "server_error", "param": null, "code": null}
                })));
            }
        }
    }
}

/// Streams `streams` as server-sent events. `prefix` is text sent first in every
/// choice (completions' `echo`).
#[allow(clippy::too_many_arguments)]
pub fn respond(
    state: Arc<AppState>,
    policy: OutputPolicy,
    flavor: Flavor,
    id: String,
    created: u64,
    model: Arc<ServedModel>,
    streams: Vec<EventStream>,
    n: usize,
    usage: UsageGuard,
    include_usage: bool,
    prefix: String,
) -> Response {
    let choices = streams.len();
    let stopped: Vec<Arc<AtomicBool>> = (0..choices).map(|_| Arc::default()).collect();
    let filters = (0..choices)
        .map(|_| state.guard.output_filter(policy))
        .collect();
    let mut st = Streaming {
        flavor,
        id,
        created,
        model,
        merged: merge(streams, &stopped),
        n,
        usage,
        include_usage,
        pending: VecDeque::new(),
        offsets: vec![prefix.len(); choices],
        finished: false,
        state,
        filters,
        stopped,
        flagged: Vec::new(),
        blocked: false,
    };
    for index in 0..choices {
        let e = match flavor {
            Flavor::Chat => st.chat_chunk(
                vec![ChatChunkChoice {
                    index,
                    delta: ChatDelta {
                        role: Some("assistant".into()),
                        content: Some(String::new()),
                    },
                    logprobs: None,
                    finish_reason: None,
                }],
                None,
            ),
            Flavor::Completion if !prefix.is_empty() => st.text_chunk(
                vec![CompletionChoice {
                    index,
                    text: prefix.clone(),
                    logprobs: None,
                    finish_reason: None,
                }],
                None,
            ),
            Flavor::Completion => continue,
        };
        st.pending.push_back(e);
    }
    let body = stream::unfold(Some(st), |st| async move {
        let mut st = st?;
        loop {
            if let Some(e) = st.pending.pop_front() {
                return Some((Ok::<_, Infallible>(e), Some(st)));
            }
            if st.finished {
                return Some((Ok(Event::default().data("[DONE]")), None));
            }
            match st.merged.next().await {
                Some((i, ev)) => st.on_event(i, ev),
                None => {
                    st.finished = true;
                    let (flagged, blocked) = (std::mem::take(&mut st.flagged), st.blocked);
                    st.state.guard.note_output(&st.id, &flagged, blocked);
                    if st.include_usage {
                        let u = Some(st.usage.usage());
                        let e = match st.flavor {
                            Flavor::Chat => st.chat_chunk(Vec::new(), u),
                            Flavor::Completion => st.text_chunk(Vec::new(), u),
                        };
                        st.pending.push_back(e);
                    }
                }
            }
        }
    });
    Sse::new(body)
        .keep_alive(KeepAlive::default())
        .into_response()
}
