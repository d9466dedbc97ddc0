//! Latency histograms (microseconds), outcome counters, and the JSON report.

use hdrhistogram::Histogram;
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;

/// Percentiles written for the latency plot.
const CURVE: &[f64] = &[
    0.0, 10.0, 25.0, 50.0, 75.0, 90.0, 95.0, 97.5, 99.0, 99.5, 99.75, 99.9, 99.95, 99.99, 100.0,
];

/// What one worker (or the whole run, once merged) recorded.
pub struct Recorder {
    /// Latency of every recorded request (from the intended start in rate mode).
    pub latency: Histogram<u64>,
    /// Time from the actual send to the answer.
    pub service: Histogram<u64>,
    /// Per step name: latency.
    pub per_step: BTreeMap<String, Histogram<u64>>,
    pub requests: u64,
    pub ok: u64,
    /// Non-success statuses: status → count.
    pub statuses: BTreeMap<u16, u64>,
    /// Transport errors (connect, read, write, timeout, parse): message → count.
    pub io_errors: BTreeMap<String, u64>,
    /// Captures that found nothing.
    pub capture_errors: u64,
    /// Iterations started in the recorded window.
    pub iterations: u64,
    /// Iterations whose start was later than intended (rate mode).
    pub late_starts: u64,
}

fn hist() -> Histogram<u64> {
    // 1 µs .. 120 s, 3 significant digits.
    Histogram::new_with_bounds(1, 120_000_000, 3).unwrap_or_else(|_| {
        Histogram::new(3).unwrap_or_else(|e| panic!("cannot create a histogram: {e}"))
    })
}

impl Recorder {
    pub fn new() -> Recorder {
        Recorder {
            latency: hist(),
            service: hist(),
            per_step: BTreeMap::new(),
            requests: 0,
            ok: 0,
            statuses: BTreeMap::new(),
            io_errors: BTreeMap::new(),
            capture_errors: 0,
            iterations: 0,
            late_starts: 0,
        }
    }

    /// Records one answered request.
    pub fn record(&mut self, step: &str, latency_us: u64, service_us: u64, status: u16, ok: bool) {
        let l = latency_us.max(1);
        let _ = self.latency.record(l.min(120_000_000));
        let _ = self.service.record(service_us.clamp(1, 120_000_000));
        let _ = self
            .per_step
            .entry(step.to_owned())
            .or_insert_with(hist)
            .record(l.min(120_000_000));
        self.requests += 1;
        if ok {
            self.ok += 1;
        } else {
            *self.statuses.entry(status).or_default() += 1;
        }
    }

    /// Records a request that got no answer.
    pub fn record_io_error(&mut self, message: String) {
        self.requests += 1;
        *self.io_errors.entry(message).or_default() += 1;
    }

    /// Adds another recorder's counts into this one.
    pub fn merge(&mut self, other: &Recorder) {
        let _ = self.latency.add(&other.latency);
        let _ = self.service.add(&other.service);
        for (k, h) in &other.per_step {
            let _ = self.per_step.entry(k.clone()).or_insert_with(hist).add(h);
        }
        self.requests += other.requests;
        self.ok += other.ok;
        for (k, v) in &other.statuses {
            *self.statuses.entry(*k).or_default() += v;
        }
        for (k, v) in &other.io_errors {
            *self.io_errors.entry(k.clone()).or_default() += v;
        }
        self.capture_errors += other.capture_errors;
        self.iterations += other.iterations;
        self.late_starts += other.late_starts;
    }

    /// The report; `seconds` is the length of the recorded window.
    pub fn report(&self, seconds: f64) -> Value {
        let errors: u64 = self.statuses.values().sum::<u64>() + self.io_errors.values().sum::<u64>();
        let mut per_step = Map::new();
        for (k, h) in &self.per_step {
            per_step.insert(k.clone(), summary(h));
        }
        json!({
            "seconds": seconds,
            "requests": self.requests,
            "ok": self.ok,
            "errors": errors,
            "error_statuses": self.statuses.iter().map(|(k, v)| (k.to_string(), json!(v))).collect::<Map<_, _>>(),
            "io_errors": self.io_errors,
            "capture_errors": self.capture_errors,
            "iterations": self.iterations,
            "late_starts": self.late_starts,
            "throughput": if seconds > 0.0 { self.requests as f64 / seconds } else { 0.0 },
            "ok_throughput": if seconds > 0.0 { self.ok as f64 / seconds } else { 0.0 },
            "latency_ms": summary(&self.latency),
            "service_ms": summary(&self.service),
            "latency_curve_ms": curve(&self.latency),
            "service_curve_ms": curve(&self.service),
            "per_step_ms": per_step,
        })
    }
}

fn ms(us: u64) -> f64 {
    us as f64 / 1000.0
}

fn summary(h: &Histogram<u64>) -> Value {
    if h.is_empty() {
        return json!({"count": 0});
    }
    json!({
        "count": h.len(),
        "mean": h.mean() / 1000.0,
        "p50": ms(h.value_at_quantile(0.50)),
        "p90": ms(h.value_at_quantile(0.90)),
        "p99": ms(h.value_at_quantile(0.99)),
        "p999": ms(h.value_at_quantile(0.999)),
        "max": ms(h.max()),
    })
}

fn curve(h: &Histogram<u64>) -> Value {
    if h.is_empty() {
        return json!([]);
    }
    Value::Array(
        CURVE
            .iter()
            .map(|p| json!([p, ms(h.value_at_quantile(p / 100.0))]))
            .collect(),
    )
}
