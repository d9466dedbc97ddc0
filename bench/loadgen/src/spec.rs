//! The run description read from JSON, and request templates compiled from it.

use serde::Deserialize;
use std::collections::HashMap;

/// How load is applied.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Each connection sends its next iteration as soon as the previous one is answered,
    /// for `warmup_s + duration_s`; only the last `duration_s` are recorded.
    Closed,
    /// Iterations start at fixed intended times (`rate` per second over all connections);
    /// latency counts from the intended start, so a stall is not hidden (coordinated omission).
    Rate,
    /// Exactly `iterations` iterations, as fast as `connections` workers allow; reports the
    /// total time.
    Count,
    /// Opens `connections` keep-alive connections, runs the steps once on each, prints
    /// `READY` and holds them open until standard input closes (or `hold_s`).
    Idle,
}

/// One run, as given on the command line (a JSON file).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Spec {
    /// `host:port` to connect to.
    pub addr: String,
    /// The `Host` header (defaults to `addr`).
    #[serde(default)]
    pub host: Option<String>,
    pub mode: Mode,
    pub connections: usize,
    #[serde(default)]
    pub duration_s: f64,
    #[serde(default)]
    pub warmup_s: f64,
    /// Iterations per second (rate mode).
    #[serde(default)]
    pub rate: f64,
    /// Number of iterations (count mode).
    #[serde(default)]
    pub iterations: u64,
    /// First value of `{n}`.
    #[serde(default)]
    pub start: u64,
    /// `{v}` is `values[n % len]`.
    #[serde(default)]
    pub values: Vec<String>,
    /// The requests of one iteration, in order.
    pub steps: Vec<StepSpec>,
    /// Count mode: report the value of this captured variable for each iteration, by `n`.
    #[serde(default)]
    pub collect: Option<String>,
    /// Idle mode: the longest time to hold the connections.
    #[serde(default = "default_hold")]
    pub hold_s: f64,
    /// Per-request socket timeout.
    #[serde(default = "default_timeout")]
    pub timeout_s: f64,
    /// Processes whose CPU time (utime+stime) is measured over the recorded window.
    #[serde(default)]
    pub watch_pids: Vec<u32>,
}

fn default_hold() -> f64 {
    60.0
}

fn default_timeout() -> f64 {
    10.0
}

/// One request of an iteration.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StepSpec {
    /// Label in the report (defaults to `METHOD path`).
    #[serde(default)]
    pub name: Option<String>,
    pub method: String,
    /// Path and query, already percent-encoded; may hold `{n}`, `{v}` and captured names.
    pub path: String,
    #[serde(default)]
    pub headers: Vec<(String, String)>,
    #[serde(default)]
    pub body: Option<String>,
    /// Variables taken from the JSON response: name → JSON pointer.
    #[serde(default)]
    pub capture: HashMap<String, String>,
    /// Statuses that count as success (default: any 2xx).
    #[serde(default)]
    pub ok: Vec<u16>,
}

/// A piece of a template.
#[derive(Debug, Clone)]
enum Part {
    Text(String),
    Var(String),
}

/// A string with `{name}` placeholders.
#[derive(Debug, Clone)]
pub struct Template(Vec<Part>);

impl Template {
    /// Splits `s` at `{name}` placeholders (names: ASCII letters, digits, `_`).
    pub fn parse(s: &str) -> Template {
        let mut parts = Vec::new();
        let mut rest = s;
        while let Some(open) = rest.find('{') {
            let after = &rest[open + 1..];
            let close = after.find('}');
            let name_ok = close.is_some_and(|c| {
                c > 0
                    && after[..c]
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'_')
            });
            match (close, name_ok) {
                (Some(c), true) => {
                    if open > 0 {
                        parts.push(Part::Text(rest[..open].to_owned()));
                    }
                    parts.push(Part::Var(after[..c].to_owned()));
                    rest = &after[c + 1..];
                }
                _ => {
                    parts.push(Part::Text(rest[..open + 1].to_owned()));
                    rest = after;
                }
            }
        }
        if !rest.is_empty() {
            parts.push(Part::Text(rest.to_owned()));
        }
        Template(parts)
    }

    /// Appends the template with variables filled in; unknown names stay as `{name}`.
    pub fn render_into(&self, out: &mut Vec<u8>, vars: &Vars<'_>) {
        for p in &self.0 {
            match p {
                Part::Text(t) => out.extend_from_slice(t.as_bytes()),
                Part::Var(name) => match vars.get(name) {
                    Some(v) => out.extend_from_slice(v.as_bytes()),
                    None => {
                        out.push(b'{');
                        out.extend_from_slice(name.as_bytes());
                        out.push(b'}');
                    }
                },
            }
        }
    }
}

/// The variables of one iteration.
pub struct Vars<'a> {
    pub n: String,
    pub v: Option<&'a str>,
    pub captured: Vec<(String, String)>,
}

impl Vars<'_> {
    fn get(&self, name: &str) -> Option<&str> {
        match name {
            "n" => Some(&self.n),
            "v" => self.v,
            _ => self
                .captured
                .iter()
                .rev()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.as_str()),
        }
    }
}

/// A step ready to render.
#[derive(Debug, Clone)]
pub struct Step {
    pub name: String,
    method: String,
    path: Template,
    headers: Vec<(String, Template)>,
    body: Option<Template>,
    pub capture: Vec<(String, String)>,
    ok: Vec<u16>,
}

impl Step {
    /// Compiles a step of the spec.
    pub fn compile(s: &StepSpec) -> Step {
        Step {
            name: s
                .name
                .clone()
                .unwrap_or_else(|| format!("{} {}", s.method, s.path)),
            method: s.method.clone(),
            path: Template::parse(&s.path),
            headers: s
                .headers
                .iter()
                .map(|(k, v)| (k.clone(), Template::parse(v)))
                .collect(),
            body: s.body.as_deref().map(Template::parse),
            capture: s
                .capture
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
            ok: s.ok.clone(),
        }
    }

    /// Whether `status` counts as success.
    pub fn is_ok(&self, status: u16) -> bool {
        if self.ok.is_empty() {
            (200..300).contains(&status)
        } else {
            self.ok.contains(&status)
        }
    }

    /// The full HTTP/1.1 request bytes.
    pub fn render(&self, host: &str, vars: &Vars<'_>, out: &mut Vec<u8>) {
        out.clear();
        out.extend_from_slice(self.method.as_bytes());
        out.push(b' ');
        self.path.render_into(out, vars);
        out.extend_from_slice(b" HTTP/1.1\r\nHost: ");
        out.extend_from_slice(host.as_bytes());
        out.extend_from_slice(b"\r\n");
        for (k, v) in &self.headers {
            out.extend_from_slice(k.as_bytes());
            out.extend_from_slice(b": ");
            v.render_into(out, vars);
            out.extend_from_slice(b"\r\n");
        }
        match &self.body {
            Some(body) => {
                let mut b = Vec::new();
                body.render_into(&mut b, vars);
                out.extend_from_slice(format!("Content-Length: {}\r\n\r\n", b.len()).as_bytes());
                out.extend_from_slice(&b);
            }
            None => out.extend_from_slice(b"\r\n"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates() {
        let t = Template::parse("/a/{n}/{id}?q={v}&x={not a var}{}");
        let vars = Vars {
            n: "7".into(),
            v: Some("vv"),
            captured: vec![("id".into(), "42".into())],
        };
        let mut out = Vec::new();
        t.render_into(&mut out, &vars);
        assert_eq!(
            String::from_utf8_lossy(&out),
            "/a/7/42?q=vv&x={not a var}{}"
        );
    }

    #[test]
    fn request_bytes() {
        let s = Step::compile(&StepSpec {
            name: None,
            method: "POST".into(),
            path: "/u".into(),
            headers: vec![("X-A".into(), "b{n}".into())],
            body: Some("{\"e\":\"u{n}\"}".into()),
            capture: HashMap::new(),
            ok: vec![],
        });
        let mut out = Vec::new();
        let vars = Vars {
            n: "3".into(),
            v: None,
            captured: vec![],
        };
        s.render("h:1", &vars, &mut out);
        assert_eq!(
            String::from_utf8_lossy(&out),
            "POST /u HTTP/1.1\r\nHost: h:1\r\nX-A: b3\r\nContent-Length: 10\r\n\r\n{\"e\":\"u3\"}"
        );
    }
}
