//! The optional integrations, with their features on: `tracing` (a span per call, the
//! caller's span entered on the threads that work on it), `serde` (reports and events as
//! JSON) and `progress` (bars, or lines into a log).
//!
//! Built only with all three features: `cargo test --all-features --test features`.

use std::cell::RefCell;
use std::collections::HashMap;
use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Metadata, Subscriber};
use tracing_core::span::Current;

mod support;
use support::{poll_here, spin_from as spin};

/// A span as the recording subscriber saw it.
#[derive(Clone, Debug)]
struct SpanSeen {
    metadata: &'static Metadata<'static>,
    fields: HashMap<&'static str, String>,
    parent: Option<u64>,
}

/// A subscriber that keeps every span, its fields and parent, and tracks which span each
/// thread is in.
#[derive(Default)]
struct Spans {
    next: AtomicU64,
    spans: Mutex<HashMap<u64, SpanSeen>>,
}

thread_local! {
    static STACK: RefCell<Vec<u64>> = const { RefCell::new(Vec::new()) };
}

struct Fields<'a>(&'a mut HashMap<&'static str, String>);

impl tracing::field::Visit for Fields<'_> {
    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        self.0.insert(field.name(), format!("{value:?}"));
    }
    fn record_str(&mut self, field: &tracing::field::Field, value: &str) {
        self.0.insert(field.name(), value.to_owned());
    }
}

impl Subscriber for Spans {
    fn enabled(&self, _: &Metadata<'_>) -> bool {
        true
    }
    fn new_span(&self, attrs: &Attributes<'_>) -> Id {
        let id = self.next.fetch_add(1, Ordering::Relaxed) + 1;
        let mut seen = SpanSeen {
            metadata: attrs.metadata(),
            fields: HashMap::new(),
            parent: attrs
                .parent()
                .map(Id::into_u64)
                .or_else(|| STACK.with(|s| s.borrow().last().copied())),
        };
        attrs.record(&mut Fields(&mut seen.fields));
        self.spans.lock().unwrap().insert(id, seen);
        Id::from_u64(id)
    }
    fn record(&self, span: &Id, values: &Record<'_>) {
        if let Some(seen) = self.spans.lock().unwrap().get_mut(&span.into_u64()) {
            values.record(&mut Fields(&mut seen.fields));
        }
    }
    fn record_follows_from(&self, _: &Id, _: &Id) {}
    fn event(&self, _: &Event<'_>) {}
    fn enter(&self, span: &Id) {
        STACK.with(|s| s.borrow_mut().push(span.into_u64()));
    }
    fn exit(&self, _: &Id) {
        STACK.with(|s| s.borrow_mut().pop());
    }
    fn current_span(&self) -> Current {
        let Some(id) = STACK.with(|s| s.borrow().last().copied()) else {
            return Current::none();
        };
        match self.spans.lock().unwrap().get(&id) {
            Some(seen) => Current::new(Id::from_u64(id), seen.metadata),
            None => Current::none(),
        }
    }
}

impl Spans {
    /// The span of the last call of the function named `function` (its id and what was
    /// seen of it).
    fn last_call_of(&self, function: &str) -> Option<(u64, SpanSeen)> {
        let spans = self.spans.lock().unwrap();
        spans
            .iter()
            .filter(|(_, s)| {
                s.metadata.name() == "amorsize"
                    && s.fields
                        .get("function")
                        .is_some_and(|f| f.rsplit("::").next() == Some(function))
            })
            .max_by_key(|(id, _)| **id)
            .map(|(id, seen)| (*id, seen.clone()))
    }
}

static SPANS: OnceLock<Arc<Spans>> = OnceLock::new();

/// The recording subscriber, installed for the whole process (pool threads included).
fn spans() -> &'static Spans {
    SPANS.get_or_init(|| {
        let spans = Arc::new(Spans::default());
        tracing::subscriber::set_global_default(Arc::clone(&spans)).expect("no other subscriber");
        spans
    })
}

/// Which span each thread that ran an item was in, by thread.
static SEEN_IN: Mutex<Vec<(std::thread::ThreadId, Option<u64>)>> = Mutex::new(Vec::new());

#[amorsize::parallel(mode = "parallel")]
fn traced(x: &u64) -> u64 {
    let current = tracing::Span::current().id().map(|id| id.into_u64());
    let me = std::thread::current().id();
    let mut seen = SEEN_IN.lock().unwrap();
    if !seen.iter().any(|(thread, _)| *thread == me) {
        seen.push((me, current));
    }
    drop(seen);
    spin(*x, Duration::from_micros(200))
}

#[test]
fn each_call_runs_in_a_span_entered_on_every_thread_that_works_on_it() {
    let spans = spans();
    let job = tracing::info_span!("job");
    let items: Vec<u64> = (0..200).collect();
    let out = job.in_scope(|| par_traced(&items));
    assert_eq!(out.len(), 200);

    let job_id = job.id().expect("the job span is enabled").into_u64();
    let (call_id, call) = spans.last_call_of("traced").expect("the call has a span");
    assert_eq!(
        call.parent,
        Some(job_id),
        "the call's span is the job's child"
    );
    assert!(call.fields["function"].ends_with("traced"), "{call:?}");
    assert_eq!(call.fields["n"], "200");
    let plan = &call.fields["plan"];
    assert!(
        plan.starts_with("Parallel"),
        "a pinned parallel call: {plan}"
    );

    let seen = SEEN_IN.lock().unwrap().clone();
    for (thread, span) in &seen {
        assert_eq!(
            span,
            &Some(call_id),
            "{thread:?} ran items outside the call's span"
        );
    }
    // Helpers join only if a second thread is free while the 40 ms of work lasts.
    if seen.len() < 2 {
        eprintln!(
            "note: no pool thread helped ({} threads); only the calling thread was checked",
            rayon::current_num_threads()
        );
    }
}

/// The span each item of `sliced_traced` ran in, in order.
static SLICED_IN: Mutex<Vec<Option<u64>>> = Mutex::new(Vec::new());

// Capped to one thread: its plan is a loop, so an async call runs in slices where polled.
#[amorsize::parallel(max_threads = 1)]
fn sliced_traced(x: &u64) -> u64 {
    let current = tracing::Span::current().id().map(|id| id.into_u64());
    SLICED_IN.lock().unwrap().push(current);
    spin(*x, Duration::from_micros(5))
}

#[test]
fn an_async_call_in_slices_runs_each_slice_in_its_span() {
    let spans = spans();
    let items: Vec<u64> = (0..2_000).collect();
    assert_eq!(par_sliced_traced(&items).len(), 2_000);
    SLICED_IN.lock().unwrap().clear();
    let (out, polls) = poll_here(par_sliced_traced_async(items));
    assert_eq!(out.len(), 2_000);
    assert!(polls > 1, "one poll: the call did not run in slices");
    let (call_id, call) = spans
        .last_call_of("sliced_traced")
        .expect("the async call has a span");
    assert_eq!(call.fields["n"], "2000");
    assert_eq!(call.fields["plan"], "Serial");
    let seen = SLICED_IN.lock().unwrap().clone();
    assert_eq!(seen.len(), 2_000);
    assert!(
        seen.iter().all(|span| span == &Some(call_id)),
        "items ran outside the call's span"
    );
    // Between polls, the span is left: this thread is in none.
    assert_eq!(tracing::Span::current().id(), None);
}

#[amorsize::parallel]
fn described(x: &u64) -> u64 {
    spin(*x, Duration::from_micros(5))
}

#[test]
fn reports_serialize_to_json_with_units_in_their_names() {
    let items: Vec<u64> = (0..4_000).collect();
    for _ in 0..3 {
        assert_eq!(par_described(&items).len(), 4_000);
    }
    let report = amorsize::report();
    let json = serde_json::to_value(&report).expect("a report serializes");
    assert!(json["machine"]["threads"].as_u64().unwrap() >= 1, "{json}");
    let site = json["sites"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"].as_str().unwrap().ends_with("described"))
        .expect("the site is in the JSON");
    let per_item_ns = site["per_item_ns"].as_f64().expect("a cost in ns");
    assert!((4_000.0..1_000_000.0).contains(&per_item_ns), "{site}");
    assert_eq!(site["mode"], "auto");
    let kind = site["plan"]["kind"].as_str().expect("a plan kind");
    assert!(kind == "serial" || kind == "parallel", "{site}");
    assert!(site["cause"]["kind"].is_string(), "{site}");
    assert!(site["reason"].as_str().unwrap().len() > 10, "{site}");

    let cause = serde_json::to_value(amorsize::Cause::Pinned(amorsize::Mode::Serial)).unwrap();
    assert_eq!(
        cause,
        serde_json::json!({"kind": "pinned", "mode": "serial"})
    );
    let cause = serde_json::to_value(amorsize::Cause::Capped { max_threads: 3 }).unwrap();
    assert_eq!(
        cause,
        serde_json::json!({"kind": "capped", "max_threads": 3})
    );
    let cause = serde_json::to_value(amorsize::Cause::Overlapping { calls: 2 }).unwrap();
    assert_eq!(
        cause,
        serde_json::json!({"kind": "overlapping", "calls": 2})
    );
}

/// A long call in a child process with `AMORSIZE_PROGRESS=always`, run by the test below
/// (`--ignored`): its stderr is a pipe, so progress comes as lines.
#[test]
#[ignore = "a child process of the test below, not a test of its own"]
fn child_runs_a_long_call() {
    #[amorsize::parallel]
    fn slow_item(x: &u64) -> u64 {
        spin(*x, Duration::from_micros(300))
    }
    let items: Vec<u64> = (0..4_500).collect();
    assert_eq!(par_slow_item(&items).len(), 4_500);
}

#[test]
fn a_long_call_shows_progress_in_a_log_when_asked_to() {
    let out = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "child_runs_a_long_call",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(amorsize::PROGRESS_ENV, "always")
        .output()
        .expect("the test binary runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let lines: Vec<&str> = stderr
        .lines()
        .filter(|l| l.starts_with("amorsize: ") && l.contains("slow_item"))
        .collect();
    // 1.35 s of work: predicted past a second once its head is profiled.
    let last = lines.last().expect("progress lines");
    assert!(last.contains("4500/4500 items (100%)"), "{stderr}");
    assert!(last.ends_with("done"), "{stderr}");
}
